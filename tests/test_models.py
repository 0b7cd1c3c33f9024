import math

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture

from gpwave.errors import CheckpointError
from gpwave.models import (
    MODELS,
    Detector,
    GMMDetector,
    MaxFeatureMap,
    build_model,
    count_parameters,
    deltas,
)
from gpwave.transforms import FeatureConfig

PACKETS_1S = (1, 256, 95)  # sym5, level 8, 1 s at 22.05 kHz


def test_dcnn_parameter_count_matches_reference_checkpoints():
    n = count_parameters(build_model("dcnn", PACKETS_1S))
    print(f"DCNN parameters (256 packets x 95 steps): {n:,}")
    assert n == 239_015


def test_detector_feature_shape_for_one_second_sym5():
    det = Detector(FeatureConfig(kind="packets", wavelet="sym5", level=8), "dcnn", 22050)
    assert det.input_shape == PACKETS_1S
    assert count_parameters(det) == 239_015


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape", [(2, 256, 30)])
def test_every_model_maps_features_to_two_logits(name, shape):
    torch.manual_seed(0)
    model = build_model(name, shape).eval()
    out = model(torch.randn(3, *shape))
    assert out.shape == (3, 2)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["dcnn_nodil", "lcnn", "gmm", "linear"])
def test_small_cepstral_inputs_work_where_shapes_allow(name):
    model = build_model(name, (1, 20, 87)).eval()
    assert model(torch.randn(2, 1, 20, 87)).shape == (2, 2)


def test_dcnn_refuses_too_small_inputs_clearly():
    with pytest.raises(ValueError, match="too small"):
        build_model("dcnn", (1, 20, 87))


def test_unknown_model_name():
    with pytest.raises(ValueError, match="dcnn"):
        build_model("resnet", PACKETS_1S)


def test_ablations():
    dil = [
        m.dilation
        for m in build_model("dcnn", PACKETS_1S).modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    assert (4, 4) in dil and (2, 2) in dil
    nodil = build_model("dcnn_nodil", PACKETS_1S)
    assert all(m.dilation == (1, 1) for m in nodil.modules() if isinstance(m, torch.nn.Conv2d))
    nodrop = build_model("dcnn_nodrop", PACKETS_1S)
    assert not any(isinstance(m, torch.nn.Dropout) for m in nodrop.modules())
    assert count_parameters(nodrop) == 239_015


def test_plain_batchnorm_and_syncbn_conversion():
    model = build_model("dcnn", PACKETS_1S)
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    sync = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert not any(type(m) is torch.nn.BatchNorm2d for m in sync.modules())


def test_max_feature_map_against_manual_max():
    x = torch.randn(2, 6, 3, 3)
    ref = torch.stack([torch.max(x[:, i], x[:, i + 3]) for i in range(3)], dim=1)
    torch.testing.assert_close(MaxFeatureMap()(x), ref)


def test_deltas_against_htk_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 11))
    pad = np.pad(x, [(0, 0), (0, 0), (2, 2)], mode="edge")
    ref = sum(n * (pad[..., 2 + n : 13 + n] - pad[..., 2 - n : 13 - n]) for n in (1, 2)) / 10
    np.testing.assert_allclose(deltas(torch.as_tensor(x)).numpy(), ref, atol=1e-12)


def test_gmm_matches_sklearn_log_likelihood():
    rng = np.random.default_rng(0)
    feats = torch.as_tensor(rng.normal(size=(40, 1, 3, 12)), dtype=torch.float32)
    labels = torch.tensor([0, 1] * 20)
    feats[labels == 1] += 1.5
    gmm = GMMDetector((1, 3, 12), n_components=4, use_deltas=False)
    gmm.fit(feats, labels, seed=0)
    for cls in (0, 1):
        x = feats[labels == cls].flatten(1, 2).transpose(1, 2).reshape(-1, 3).double().numpy()
        ref = GaussianMixture(4, covariance_type="diag", random_state=0, reg_covar=1e-4).fit(x)
        ours = gmm.log_likelihood(feats[:5])[..., cls].reshape(-1)
        theirs = ref.score_samples(
            feats[:5].flatten(1, 2).transpose(1, 2).reshape(-1, 3).double().numpy()
        )
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-4, atol=1e-3)
    # logits are mean log-likelihoods: softmax gives sigmoid of the log-likelihood ratio
    z = gmm(feats)
    p = torch.softmax(z, -1)[:, 1]
    torch.testing.assert_close(p, torch.sigmoid(z[:, 1] - z[:, 0]))
    assert (p[labels == 1].mean() > 0.9) and (p[labels == 0].mean() < 0.1)


def _tone_batch(gain=1.0):
    t = torch.arange(22050) / 22050
    x = torch.stack([torch.sin(2 * math.pi * f * t) * 0.3 for f in (440, 3000, 7000)])
    return x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kind", ["packets", "stft", "lfcc"])
def test_detector_is_gain_invariant_by_design(kind):
    det = Detector(FeatureConfig(kind=kind), "linear").eval()
    x = _tone_batch()
    for db in (-6.0, 6.0):
        g = 10 ** (db / 20)
        # Equal up to float32 round-off, which the log amplifies only for a handful of
        # near-zero coefficients.
        diff = (det.features(x * g) - det.features(x)).abs()
        assert diff.quantile(0.999) < 1e-2 and diff.mean() < 1e-3
        torch.testing.assert_close(
            det.fake_probability(x * g), det.fake_probability(x), atol=1e-5, rtol=1e-4
        )


def test_without_level_norm_gain_shifts_log_features():
    det = Detector(FeatureConfig(), "linear", level_norm=False)
    x = _tone_batch()
    diff = det.features(2 * x) - det.features(x)
    torch.testing.assert_close(diff, torch.full_like(diff, math.log(2)), atol=1e-3, rtol=0)


@pytest.mark.parametrize("name,kind", [("dcnn", "packets"), ("gmm", "lfcc"), ("linear", "stft")])
def test_checkpoint_round_trip_weights_only(tmp_path, name, kind):
    torch.manual_seed(0)
    det = Detector(FeatureConfig(kind=kind), name, 22050, level_norm=True)
    x = _tone_batch()
    det.normalizer.update(det.raw_features(x))
    if name == "gmm":
        det.model.means.normal_()
    det.eval()
    path = tmp_path / "best.pt"
    torch.save({"detector": det.spec(), "model": det.state_dict()}, path)
    loaded = Detector.load(path)
    assert not loaded.training
    torch.testing.assert_close(loaded(x), det(x))


def test_missing_and_corrupt_checkpoints_name_the_file(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="nope.pt"):
        Detector.load(missing)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="bad.pt"):
        Detector.load(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="other.pt"):
        Detector.load(other)


def test_dcnn_embedding_through_the_head_is_the_forward_pass():
    torch.manual_seed(0)
    model = build_model("dcnn", PACKETS_1S).eval()
    x = torch.randn(3, *PACKETS_1S)
    e = model.embed(x)
    assert e.shape == (3, model.fc.in_features)
    torch.testing.assert_close(model.fc(e), model(x), atol=1e-4, rtol=1e-4)  # fc is linear


def test_a_crafted_checkpoint_config_is_refused_before_anything_is_allocated(tmp_path):
    """Issue 21 item 8: ``n_samples=2**33`` made Detector.load allocate 34 GB."""
    import resource
    import time

    det = Detector(FeatureConfig(kind="lfcc"), "linear", 2205)
    for k, (change, match) in enumerate([
        ({"n_samples": 2**33}, "n_samples=8589934592: expected an integer from 1 to 16777216"),
        ({"n_samples": 2**33, "model": "dcnn", "feature": {"kind": "packets"}}, "n_samples="),
        ({"n_samples": 0}, "n_samples=0"),
        ({"model": "resnet"}, "model='resnet'"),
        ({"n_samples": 2**24, "feature": {"kind": "packets"}}, "16779264 numbers per frame"),
    ]):  # fmt: skip
        path = tmp_path / f"{k}.pt"
        torch.save({"detector": {**det.spec(), **change}, "model": det.state_dict()}, path)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        with pytest.raises(CheckpointError, match=match) as err:
            Detector.load(path)
        assert time.perf_counter() - t0 < 5 and "\n" not in str(err.value)
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 1_000_000  # KiB: < 1 GB


def test_every_model_says_how_it_is_fitted():
    from typing import get_args

    from gpwave.constants import Fitting

    fitting = {name: build_model(name, PACKETS_1S).fitting for name in MODELS}
    assert set(fitting.values()) <= set(get_args(Fitting))
    assert fitting["gmm"] == "closed-form" and fitting["dcnn_nodil"] == "gradient"
    assert Detector(FeatureConfig(kind="lfcc"), "gmm", 2205).fitting == "closed-form"


def test_calibration_round_trips_and_sets_the_verdict_probability(tmp_path):
    from scipy.special import expit

    torch.manual_seed(0)
    det = Detector(FeatureConfig(kind="lfcc"), "linear", 22050, calibration=[0.5, -2.0]).eval()
    x = _tone_batch()
    path = tmp_path / "best.pt"
    torch.save({"detector": det.spec(), "model": det.state_dict()}, path)
    loaded = Detector.load(path)
    assert loaded.calibration == (0.5, -2.0)
    lo = loaded.fake_log_odds(x).double().numpy()
    expected = expit(0.5 * lo - 2.0)  # by hand: sigmoid(a * log-odds + b)
    np.testing.assert_allclose(loaded.fake_probability(x).numpy(), expected, rtol=1e-5)
    plain = Detector.from_spec({**det.spec(), "calibration": None})
    plain.load_state_dict(det.state_dict())
    z = plain.eval()(x)
    torch.testing.assert_close(plain.fake_probability(x), torch.softmax(z, -1)[:, 1])
    torch.testing.assert_close(plain.fake_log_odds(x), loaded.fake_log_odds(x))  # EERs unchanged


@pytest.mark.parametrize("bad", [[0.0, 1.0], [-1.0, 0.0], [float("nan"), 0.0], [1.0], "ab"])
def test_a_checkpoint_with_an_unusable_calibration_is_refused(tmp_path, bad):
    det = Detector(FeatureConfig(kind="lfcc"), "linear", 2205)
    path = tmp_path / "c.pt"
    torch.save({"detector": {**det.spec(), "calibration": bad}, "model": det.state_dict()}, path)
    with pytest.raises(CheckpointError, match="c.pt.*calibration"):
        Detector.load(path)


def test_a_checkpoint_written_before_calibration_existed_loads_uncalibrated(tmp_path):
    det = Detector(FeatureConfig(kind="lfcc"), "linear", 2205)
    spec = {k: v for k, v in det.spec().items() if k != "calibration"}
    torch.save({"detector": spec, "model": det.state_dict()}, tmp_path / "old.pt")
    assert Detector.load(tmp_path / "old.pt").calibration is None


def test_assigning_an_unusable_calibration_to_a_detector_is_refused():
    det = Detector(FeatureConfig(kind="lfcc"), "linear", 2205)
    det.calibration = [2, -12]  # as training sets it: a list from metrics.platt_calibration
    assert det.calibration == (2.0, -12.0)
    with pytest.raises(ValueError, match="a > 0"):
        det.calibration = [-1.0, 0.0]
    assert det.calibration == (2.0, -12.0)
