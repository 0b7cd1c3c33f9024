"""Integrated gradients and saliency: closed forms on linear models, completeness, plots."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _signals import SR, chirp, noise
from matplotlib.figure import Figure
from torch import nn

from gpwave import attribution as attr

C, F, T = 2, 8, 5


class Linear(nn.Module):
    """logits = W flatten(x) + b: integrated gradients is (x - baseline) * W[target]."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(C * F * T, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class Smooth(nn.Module):
    """A small non-linear model (softplus), for completeness with a finite step count."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(C * F * T, 16), nn.Softplus(), nn.Linear(16, 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _features(k: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(k, C, F, T, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("baseline", [0.0, 0.5])
def test_integrated_gradients_of_a_linear_model_has_the_closed_form(baseline):
    model, x = Linear(), _features()
    res = attr.attribute(model, x, target="both", baseline=baseline, n_steps=8, batch_size=4)
    w = model.fc.weight.detach().reshape(2, C, F, T)
    for target, idx in (("real", 0), ("fake", 1)):
        per_frame = ((x - baseline) * w[idx]).sum(dim=1)  # (k, F, T), channels summed
        np.testing.assert_allclose(res.maps[target], per_frame.mean(0).numpy(), atol=1e-5)
        expected = ((x - baseline) * w[idx]).abs().sum(1).mean(0).numpy()
        np.testing.assert_allclose(res.abs_maps[target], expected, atol=1e-5)
        assert res.completeness_error[target] < 1e-4
        assert res.convergence_delta[target] < 1e-4
        diff = ((x - baseline) * w[idx]).flatten(1).sum(1).mean().item()
        assert res.output_difference[target] == pytest.approx(diff, abs=1e-4)
    assert res.n_frames == 6 and res.maps["fake"].shape == (F, T)


def test_saliency_of_a_linear_model_is_the_absolute_weight():
    model, x = Linear(), _features()
    res = attr.attribute(model, x, method="saliency", target="fake")
    w = model.fc.weight.detach().reshape(2, C, F, T)[1]
    np.testing.assert_allclose(res.abs_maps["fake"], w.abs().sum(0).numpy(), atol=1e-6)
    assert np.isnan(res.completeness_error["fake"]) and np.isnan(res.convergence_delta["fake"])
    assert list(res.maps) == ["fake"]


def test_completeness_of_a_nonlinear_model():
    model, x = Smooth(), _features(5, seed=2)
    res = attr.attribute(model, x, target="both", n_steps=64)
    for target, idx in (("real", 0), ("fake", 1)):
        # independent check: sum of attributions per frame vs f(x) - f(0)
        with torch.no_grad():
            diff = (model(x)[:, idx] - model(torch.zeros_like(x))[:, idx]).abs().max().item()
        assert res.completeness_error[target] < 1e-3 * max(diff, 1.0)
        assert res.convergence_delta[target] < 1e-3 * max(diff, 1.0)


def test_marginal_frequencies_and_max_frames():
    model, x = Linear(), _features(10)
    res = attr.attribute(model, x, max_frames=4)
    assert res.n_frames == 4
    np.testing.assert_allclose(res.marginal("fake"), res.abs_maps["fake"].mean(axis=1))
    np.testing.assert_allclose(res.frequencies_khz, (np.arange(F) + 0.5) * SR / 2 / F / 1e3)
    given = np.arange(F) * 100.0
    assert np.array_equal(attr.attribute(model, x, frequencies=given).frequencies, given)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="method"):
        attr.attribute(Linear(), _features(), method="occlusion")
    with pytest.raises(ValueError, match="target"):
        attr.attribute(Linear(), _features(), target="melgan")


def test_plots_return_figures():
    model, x = Linear(), _features()
    ig = attr.attribute(model, x, target="both")
    sal = attr.attribute(model, x, method="saliency")
    maps = attr.plot_maps(ig)
    assert isinstance(maps, Figure) and len([a for a in maps.axes if a.get_images()]) == 2
    marg = attr.plot_marginals([ig, sal])
    assert marg.axes[0].get_xlabel() == "frequency [kHz]" and len(marg.axes[0].get_lines()) == 2


def _detector(level: int = 4):
    models = pytest.importorskip("gpwave.models")
    from gpwave.transforms import FeatureConfig, packet_frequencies

    cfg = FeatureConfig(kind="packets", wavelet="haar", level=level)
    det = models.Detector(cfg, model="linear", n_samples=2048)
    waves = torch.stack(
        [torch.from_numpy(chirp(seconds=2048 / SR)), torch.from_numpy(noise(2048 / SR))]
    )
    with torch.no_grad():
        det.normalizer.update(det.raw_features(waves))
    return det, waves, packet_frequencies(level, SR)


def test_a_detector_is_attributed_on_its_normalised_features():
    det, waves, freqs = _detector()
    res = attr.attribute(det, waves, target="fake", n_steps=16)
    t = det.input_shape[-1]
    assert res.maps["fake"].shape == (16, t)
    np.testing.assert_allclose(res.frequencies, freqs)
    assert res.completeness_error["fake"] < 1e-4  # the probe is linear in its features
    with torch.no_grad():
        feats = det.features(waves)
        diff = (det.head(feats)[:, 1] - det.head(torch.zeros_like(feats))[:, 1]).mean().item()
    assert res.output_difference["fake"] == pytest.approx(diff, abs=1e-5)
    same = attr.attribute(det, feats, target="fake", n_steps=16)  # features in, same result
    np.testing.assert_allclose(same.maps["fake"], res.maps["fake"], atol=1e-6)
    with pytest.raises(ValueError, match="expects 2048"):
        attr.attribute(det, waves[:, :1024])


@pytest.mark.slow
def test_a_dcnn_detector_has_matching_captum_and_independent_completeness():
    models = pytest.importorskip("gpwave.models")
    from gpwave.transforms import FeatureConfig

    det = models.Detector(FeatureConfig(), model="dcnn", n_samples=SR // 2)
    waves = torch.stack([torch.from_numpy(chirp(seconds=0.5)), torch.from_numpy(noise(0.5))])
    with torch.no_grad():
        det.normalizer.update(det.raw_features(waves))
    res = attr.attribute(det, waves, target="both", n_steps=4, baseline=-1.0)
    for target in ("real", "fake"):  # |sum attr - (f(x) - f(b))|: captum's and ours agree
        assert res.completeness_error[target] == pytest.approx(
            res.convergence_delta[target], rel=1e-3, abs=1e-6
        )
    assert res.maps["fake"].shape == det.input_shape[1:]


def test_high_band_share_is_the_fraction_of_mean_absolute_attribution_above_a_frequency():
    from gpwave.attribution import AttributionResult, high_band_share

    freqs = np.array([1000.0, 3000.0, 6000.0, 9000.0])
    fake = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0], [4.0, 4.0]])  # 6 of 8 at >= 5.5 kHz
    real = np.ones((4, 2))  # 2 of 4
    res = AttributionResult(
        "saliency", {"real": real, "fake": fake}, {"real": real, "fake": fake}, freqs, 3,
        {}, {}, {},
    )  # fmt: skip
    share = high_band_share([res], above_khz=5.5)
    assert share.loc["fake", "saliency"] == pytest.approx(6 / 8)
    assert share.loc["real", "saliency"] == pytest.approx(0.5)
