"""The paper's released detectors: key mapping, preprocessing, pinned scores, the fit.

The pinned scores were computed once by an independent path written here: PyWavelets
packets / a numpy STFT, the registry's global mean and std, and a plain functional torch
forward of the checkpoint's own tensors under their own names (no gpwave code).
Tests that need the checkpoints skip when ``../shared/reference-models`` is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pywt
import soundfile as sf
import torch
import torch.nn.functional as F

from gpwave import config, pretrained
from gpwave.metrics import eer

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "reference-models"
FILES = {
    "A": "A_ljspeech/LJ001-0011.wav",
    "B": "B_melgan/LJ002-0176_gen.wav",
    "E": "E_fbmelgan/LJ001-0001_gen.wav",
    "U": "U_wavenet/LJ050-0029_gen.wav",
}
#: fake-minus-real logit of the first 1 s frame of each file, by the independent path.
PINNED = {
    "paper-sym5": {"A": 0.764451, "B": -1.352281, "E": 11.123095, "U": -20.503149},
    "paper-stft": {"A": 7.014395, "B": 18.513069, "E": 17.569571, "U": 10.229239},
}


@pytest.fixture(scope="module")
def mirror() -> Path:
    if not (MIRROR / "MANIFEST.tsv").is_file():
        pytest.skip("../shared/reference-models is not next to this checkout")
    return MIRROR


def _checkpoint(mirror: Path, name: str) -> Path:
    feature = pretrained.PAPER_MODELS[name].feature
    return next(mirror.glob(f"model_{feature}_*.pt"))


def _frame(root: Path, key: str) -> np.ndarray:
    x, rate = sf.read(str(root / FILES[key]), dtype="float64")
    assert rate == 22050
    return x[:22050]


# --- the independent path ---------------------------------------------------------------
def _pywt_packets(x: np.ndarray) -> np.ndarray:
    wp = pywt.WaveletPacket(x, "sym5", mode="reflect", maxlevel=8)
    c = np.stack([n.data for n in wp.get_level(8, order="freq")])  # (256, T)
    return np.log(c**2 + 1e-12)


def _numpy_stft(x: np.ndarray, n_fft: int = 511, hop: int = 220) -> np.ndarray:
    pad = np.pad(x, n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    starts = np.arange(0, len(pad) - n_fft + 1, hop)
    frames = np.stack([pad[s : s + n_fft] * window for s in starts])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (T, n_fft // 2 + 1)
    return np.log(power.T + 1e-12)


def _reference_forward(state: dict, x: torch.Tensor) -> torch.Tensor:
    """The released DCNN, layer by layer from its own key names (eval mode)."""
    s = {k.replace("module.", ""): v.double() for k, v in state.items()}

    def conv(z, i, padding, dilation=1, prefix="cnn"):
        w, b = s[f"{prefix}.{i}.weight"], s[f"{prefix}.{i}.bias"]
        z = F.conv2d(z, w, b, padding=padding, dilation=dilation)
        return F.prelu(z, s[f"{prefix}.{i + 1}.weight"])

    def bn(z, i, prefix="cnn", affine=False):
        p = f"{prefix}.{i}"
        w, b = (s[p + ".weight"], s[p + ".bias"]) if affine else (None, None)
        return F.batch_norm(z, s[p + ".running_mean"], s[p + ".running_var"], w, b, eps=1e-5)

    z = x.transpose(2, 3)  # (B, 1, T, F)
    z = bn(F.max_pool2d(conv(z, 0, 2), 2), 3)
    z = bn(conv(z, 4, 0), 6)
    z = bn(F.max_pool2d(conv(z, 7, 1), 2), 10)
    z = bn(conv(z, 11, 1), 13)
    z = bn(conv(z, 14, 1), 16)
    z = F.max_pool2d(conv(z, 17, 1), 2).transpose(1, 2)
    for i, (pad, dil) in zip((0, 3, 6), ((1, 1), (2, 2), (2, 4)), strict=True):
        z = conv(bn(z, i, "dil_conv", affine=True), i + 1, pad, dil, "dil_conv")
    logits = F.linear(z.flatten(2), s["fc.1.weight"], s["fc.1.bias"]).mean(1)
    return logits[:, 1] - logits[:, 0]


def _independent_scores(mirror: Path, mini_root: Path, name: str) -> dict[str, float]:
    spec = pretrained.PAPER_MODELS[name]
    state = torch.load(_checkpoint(mirror, name), map_location="cpu", weights_only=True)
    feats = _pywt_packets if spec.config["kind"] == "packets" else _numpy_stft
    x = np.stack([feats(_frame(mini_root, k)) for k in FILES])[:, None]
    x = torch.as_tensor((x - spec.mean) / spec.std)
    with torch.no_grad():
        d = _reference_forward(state["MODEL_STATE"], x)
    return dict(zip(FILES, d.tolist(), strict=True))


# --- tests ----------------------------------------------------------------------------
def test_convert_state_maps_reference_keys():
    t = torch.zeros(1)
    state = {
        "module.module.cnn.0.weight": t,
        "module.module.dil_conv.3.running_mean": t,
        "module.module.fc.1.weight": t,
        "module.module.fc.1.bias": t,
    }
    assert set(pretrained.convert_state(state)) == {
        "cnn.0.weight", "dil.3.running_mean", "fc.weight", "fc.bias"
    }  # fmt: skip


def test_unknown_or_unrecovered_name_is_refused():
    with pytest.raises(ValueError, match="paper-sym5"):
        pretrained.paper_detector("sym5")
    with pytest.raises(pretrained.CheckpointError, match="could not be recovered.*paper-sym5"):
        pretrained.paper_detector("paper-coif4")


def test_list_models_names_licence_and_commit(tmp_path, monkeypatch):
    from gpwave import hub

    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path))
    table = hub.list_models()
    assert list(table["name"]) == ["paper-sym5", "paper-stft"]
    assert (table["licence"] == "EUPL-1.2").all()
    assert (table["commit"] == pretrained.REFERENCE_COMMIT).all()


@pytest.mark.parametrize("name", list(PINNED))
def test_every_tensor_maps_one_to_one(mirror, name):
    state = torch.load(_checkpoint(mirror, name), map_location="cpu", weights_only=True)
    det = pretrained.paper_detector(name, _checkpoint(mirror, name))
    ours = det.model.state_dict()
    theirs = pretrained.convert_state(state["MODEL_STATE"])
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert sum(v.numel() for k, v in det.model.named_parameters()) == 239_015


@pytest.mark.parametrize("name", list(PINNED))
def test_scores_match_the_independent_path(mirror, mini_root, name):
    expected = _independent_scores(mirror, mini_root, name)
    if any(v is None for v in PINNED[name].values()):
        pytest.fail(f"pin these: {expected}")
    np.testing.assert_allclose(list(expected.values()), list(PINNED[name].values()), atol=1e-3)
    det = pretrained.paper_detector(name, _checkpoint(mirror, name))
    x = torch.as_tensor(np.stack([_frame(mini_root, k) for k in FILES]), dtype=torch.float32)
    with torch.no_grad():
        logits = det(x).double()
    ours = (logits[:, 1] - logits[:, 0]).numpy()
    np.testing.assert_allclose(ours, list(PINNED[name].values()), rtol=2e-3, atol=2e-3)


def _mini_frames(mini_root: Path, n: int = 12) -> tuple[torch.Tensor, np.ndarray]:
    frames, labels = [], []
    for folder, label in (("A_ljspeech", 0), ("E_fbmelgan", 1)):
        for f in sorted((mini_root / folder).glob("*.wav")):
            x, _ = sf.read(str(f), dtype="float32")
            frames += [x[i : i + 22050] for i in range(0, len(x) - 22049, 22050)]
            labels += [label] * (len(x) // 22050)
            if labels.count(label) >= n:
                break
    keep = np.r_[np.nonzero(np.array(labels) == 0)[0][:n], np.nonzero(np.array(labels) == 1)[0][:n]]
    return torch.as_tensor(np.stack(frames)[keep]), np.array(labels)[keep]


@pytest.mark.parametrize("name", list(PINNED))
def test_registry_mean_std_reproduce_first_batchnorm(mirror, mini_root, name):
    det = pretrained.paper_detector(name, _checkpoint(mirror, name))
    x, _ = _mini_frames(mini_root)
    _, bn = pretrained._first_batchnorm(det.model)
    with torch.no_grad():
        mu, var = pretrained.first_bn_statistics(det, det.raw_features(x), *_mean_std(name))
    # 12 + 12 frames: within 5 % of the running std and 10 % of the running variance
    assert ((mu - bn.running_mean) / bn.running_var.sqrt()).abs().median() < 0.05
    assert ((var - bn.running_var) / bn.running_var).abs().median() < 0.10
    # a wrong normalisation does not: shift the mean by one std
    mu, _ = pretrained.first_bn_statistics(det, det.raw_features(x), *_mean_std(name, 1.0))
    assert ((mu - bn.running_mean) / bn.running_var.sqrt()).abs().median() > 0.1


def _mean_std(name: str, shift: float = 0.0) -> tuple[float, float]:
    spec = pretrained.PAPER_MODELS[name]
    return spec.mean + shift * spec.std, spec.std


@pytest.mark.parametrize("name", list(PINNED))
def test_eer_is_stable_under_small_perturbations(mirror, mini_root, name):
    x, y = _mini_frames(mini_root)
    spec = pretrained.PAPER_MODELS[name]
    for dm, ds in ((0, 1), (0.25, 1), (-0.25, 1), (0, 1.05), (0, 0.95)):
        det = pretrained.paper_detector(
            name, _checkpoint(mirror, name), mean=spec.mean + dm, std=spec.std * ds
        )
        assert eer(y, det.fake_probability(x).numpy()) <= 0.05, (dm, ds)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PINNED))
def test_fit_recovers_the_registry_constants(mirror, mini_root, name):
    det = pretrained.paper_detector(name, _checkpoint(mirror, name))
    x, _ = _mini_frames(mini_root, 32)
    with torch.no_grad():
        fit = pretrained.fit_global_normalization(det, det.raw_features(x))
    spec = pretrained.PAPER_MODELS[name]
    assert abs(fit.mean - spec.mean) < 0.15 and abs(fit.std - spec.std) < 0.1
    assert fit.mean_residual < 0.03 and fit.var_residual < 0.05


def test_globalize_normalization_is_the_mean_and_std_of_all_features():
    from gpwave.models import Detector

    det = Detector({"kind": "packets", "level": 2, "sample_rate": 8000}, "linear", 800)
    feats = torch.randn(5, *det.input_shape[:2], 7, dtype=torch.float64) * 3 + torch.arange(
        det.input_shape[1], dtype=torch.float64)[None, None, :, None]  # fmt: skip
    det.normalizer.update(feats[:2]).update(feats[2:])
    pretrained.globalize_normalization(det)
    ref = feats.numpy()
    np.testing.assert_allclose(det.normalizer.mean.numpy(), ref.mean(), rtol=1e-10)
    np.testing.assert_allclose(det.normalizer.std.numpy(), ref.std(), rtol=1e-10)


def test_init_from_paper_sym5_starts_from_its_logits(mirror, mini_root):
    from gpwave import train

    cfg = config.TrainConfig.from_dict({"init": "paper-sym5", "level_norm": False})
    paper = pretrained.paper_detector("paper-sym5", _checkpoint(mirror, "paper-sym5"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pretrained, "checkpoint_path", lambda name: _checkpoint(mirror, name))
        det, fit = train.initial_detector(cfg, 22050)
        relevelled, refit = train.initial_detector(config.TrainConfig(init="paper-sym5"), 22050)
    assert fit is None and refit == "global" and relevelled.level_norm
    assert relevelled.normalizer.count == 0  # reset: refitted on the training frames
    x = torch.from_numpy(np.stack([_frame(mini_root, k) for k in "AE"])).float()
    with torch.no_grad():
        z = det.eval()(x)
    torch.testing.assert_close(z, paper(x).detach())
    got = (z[:, 1] - z[:, 0]).numpy()
    np.testing.assert_allclose(got, [PINNED["paper-sym5"][k] for k in "AE"], rtol=1e-3, atol=1e-3)
