"""Which packets and time steps drive a detector's decision: integrated gradients, saliency.

Attributions are computed with captum on the detector's normalised features
(channels x packets x time), i.e. on the input of its classification head, averaged over
many test frames, and reduced to (packets x time) maps per target class and to the
marginal over frequency.

Notebook: notebooks/06_attribution.py
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients, Saliency
from matplotlib.figure import Figure

from gpwave.constants import SAMPLE_RATE, AttributionMethod, AttributionTarget, check_option

#: Logit index of each target class.
TARGET_INDEX = {"real": 0, "fake": 1}


@dataclass
class AttributionResult:
    """Attributions averaged over frames, per target class.

    Attributes:
        method: "integrated_gradients" or "saliency".
        maps: Target -> mean attribution per (packet, time step), shape (F, T), summed over
            feature channels (signed for integrated gradients, |gradient| for saliency).
        abs_maps: Target -> mean absolute attribution, shape (F, T).
        frequencies: Centre frequency of each packet/bin in Hz, shape (F,).
        n_frames: Number of frames averaged.
        convergence_delta: Target -> captum's largest |convergence delta| over the frames
            (NaN for saliency).
        completeness_error: Target -> largest |sum of attributions - (f(x) - f(baseline))|
            over the frames, computed independently of captum (NaN for saliency).
        output_difference: Target -> mean of f(x) - f(baseline) (logits).
    """

    method: str
    maps: dict[str, np.ndarray]
    abs_maps: dict[str, np.ndarray]
    frequencies: np.ndarray
    n_frames: int
    convergence_delta: dict[str, float]
    completeness_error: dict[str, float]
    output_difference: dict[str, float]

    @property
    def frequencies_khz(self) -> np.ndarray:
        """Centre frequencies in kHz."""
        return self.frequencies / 1e3

    def marginal(self, target: AttributionTarget = "fake", absolute: bool = True) -> np.ndarray:
        """Attribution per frequency band: the (absolute) map averaged over time.

        Args:
            target: "real" or "fake".
            absolute: Use the mean absolute attributions (default) or the signed ones.

        Returns:
            Array (F,) aligned with :attr:`frequencies_khz`.
        """
        maps = self.abs_maps if absolute else self.maps
        return maps[target].mean(axis=1)


# --- the model side ----------------------------------------------------------------------
def high_band_share(results: Sequence[AttributionResult], above_khz: float) -> pd.DataFrame:
    """Share of the mean absolute attribution in bands at or above a frequency.

    Notebook: notebooks/06_attribution.py

    Args:
        results: Attributions (e.g. integrated gradients and saliency of one model).
        above_khz: Lower edge of the "high" bands in kHz (band centres are compared).

    Returns:
        Fractions (0..1): one column per result's method, rows ``real`` and ``fake``.
    """
    share = {}
    for res in results:
        high = res.frequencies_khz >= above_khz
        share[res.method] = {
            t: float(res.marginal(t)[high].sum() / res.marginal(t).sum()) for t in ("real", "fake")
        }
    return pd.DataFrame(share)


def _is_detector(model: Any) -> bool:
    return callable(getattr(model, "features", None)) and callable(getattr(model, "head", None))


def _feature_config(model: Any) -> Any:
    for path in ("feature_config", "cfg", "config", "extractor.cfg", "feature_extractor.cfg"):
        obj = model
        for name in path.split("."):
            obj = getattr(obj, name, None)
        if obj is not None and hasattr(obj, "kind"):
            return obj
    return None


def band_frequencies(model: Any, n_bands: int) -> np.ndarray:
    """Centre frequencies (Hz) of a model's feature rows, from its feature config.

    Args:
        model: A detector whose ``feature_config`` (or ``cfg``/``extractor.cfg``) is a
            :class:`gpwave.transforms.FeatureConfig`, or any module.
        n_bands: Number of feature rows F.

    Returns:
        Packet centres for wavelet packets, bin centres for STFT, otherwise (cepstra or no
        config) F evenly spaced band centres between 0 and the Nyquist frequency.
    """
    cfg = _feature_config(model)
    sample_rate = getattr(cfg, "sample_rate", SAMPLE_RATE)
    if cfg is not None and cfg.kind == "packets" and 2**cfg.level == n_bands:
        from gpwave.transforms import packet_frequencies

        return np.asarray(packet_frequencies(cfg.level, sample_rate, order=cfg.order), float)
    if cfg is not None and cfg.kind == "stft":
        from gpwave.transforms import stft_frequencies

        n_fft = cfg.stft_size()[0] if hasattr(cfg, "stft_size") else None
        return np.asarray(stft_frequencies(n_bands, sample_rate, n_fft), dtype=float)
    return (np.arange(n_bands) + 0.5) * sample_rate / 2 / n_bands


def _device(model: Any) -> torch.device:
    """The device of a module's parameters (inputs follow the model), else the CPU."""
    params = getattr(model, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    return first.device if first is not None else torch.device("cpu")


def _prepare(model: Any, data: torch.Tensor) -> tuple[Callable, torch.Tensor]:
    """The function to attribute and its inputs: the head on features for detectors."""
    if not _is_detector(model):
        return model, data
    if data.dim() == 2 or (data.dim() == 3 and data.shape[1] == 1):
        n = getattr(model, "n_samples", data.shape[-1])
        if data.shape[-1] != n:
            raise ValueError(f"frames have {data.shape[-1]} samples, the detector expects {n}")
        with torch.no_grad():
            data = model.features(data)
    return model.head, data


def _baseline(x: torch.Tensor, baseline: float | torch.Tensor) -> torch.Tensor:
    if isinstance(baseline, torch.Tensor):
        return baseline.to(x).expand_as(x).contiguous()
    return torch.full_like(x, float(baseline))


def _to_maps(attr: torch.Tensor) -> torch.Tensor:
    """(B, ..., F, T) -> (B, F, T), summing any channel axes."""
    b, f, t = attr.shape[0], attr.shape[-2], attr.shape[-1]
    return attr.reshape(b, -1, f, t).sum(dim=1)


# --- one batch ---------------------------------------------------------------------------
def _attribute_batch(
    fn: Callable, x: torch.Tensor, base: torch.Tensor, method: str, idx: int, n_steps: int
) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """Attributions (B, ..., F, T), captum deltas, own completeness errors, output diffs."""
    with torch.no_grad():
        diff = (fn(x)[:, idx] - fn(base)[:, idx]).double()
    if method == "saliency":
        attr = Saliency(fn).attribute(x, target=idx, abs=True)
        nan = np.full(len(x), np.nan)
        return attr.detach(), nan, nan, diff.cpu().numpy()
    attr, delta = IntegratedGradients(fn).attribute(
        x, baselines=base, target=idx, n_steps=n_steps, return_convergence_delta=True
    )
    total = attr.detach().double().reshape(len(x), -1).sum(dim=1)
    error = (total - diff).abs().cpu().numpy()
    delta = delta.detach().abs().double().cpu().numpy()
    return attr.detach(), delta, error, diff.cpu().numpy()


def attribute(
    detector_or_model: Any,
    frames_or_features: torch.Tensor | np.ndarray,
    method: AttributionMethod = "integrated_gradients",
    target: AttributionTarget = "fake",
    *,
    n_steps: int = 50,
    baseline: float | torch.Tensor = 0.0,
    batch_size: int = 32,
    max_frames: int | None = 2500,
    frequencies: np.ndarray | None = None,
) -> AttributionResult:
    """Integrated gradients or saliency of a detector, averaged over frames.

    For a :class:`gpwave.models.Detector` (anything with ``.features`` and ``.head``)
    waveforms (k, N) are first turned into its normalised features and the head is
    attributed; features (k, C, F, T) are attributed directly. Any other module is taken
    to map features (k, ..., F, T) to logits (k, 2). Batches run on the device of the
    model's parameters (move the detector to "cuda" to attribute on a GPU).

    Args:
        detector_or_model: A detector or a features -> logits module.
        frames_or_features: Waveforms (k, N) (detectors only) or features (k, ..., F, T).
        method: "integrated_gradients" (captum, Gauss-Legendre) or "saliency" (|gradient|).
        target: "real", "fake" or "both".
        n_steps: Integration steps of integrated gradients.
        baseline: Baseline in feature space: a number (0 = the training mean of
            normalised features) or a tensor broadcastable to one input.
        batch_size: Frames per batch.
        max_frames: Use at most this many frames (the study: 2500; None = all).
        frequencies: Band centres in Hz (default: from the model's feature config).

    Returns:
        The averaged maps, marginals and completeness checks.

    Notebook: notebooks/06_attribution.py
    """
    check_option(method, AttributionMethod, "method")
    check_option(target, AttributionTarget, "target")
    targets = ["real", "fake"] if target == "both" else [target]
    data = torch.as_tensor(np.asarray(frames_or_features), dtype=torch.float32)
    data = data[:max_frames] if max_frames is not None else data
    if hasattr(detector_or_model, "eval"):
        detector_or_model.eval()
    acc = {t: _accumulate(detector_or_model, data, method, t, n_steps, baseline, batch_size)
           for t in targets}  # fmt: skip
    n_bands = next(iter(acc.values()))["sum"].shape[0]
    if frequencies is None:
        frequencies = band_frequencies(detector_or_model, n_bands)
    return AttributionResult(
        method=method,
        maps={t: a["sum"] / len(data) for t, a in acc.items()},
        abs_maps={t: a["abs"] / len(data) for t, a in acc.items()},
        frequencies=np.asarray(frequencies, dtype=float),
        n_frames=len(data),
        convergence_delta={t: _nanmax(a["delta"]) for t, a in acc.items()},
        completeness_error={t: _nanmax(a["error"]) for t, a in acc.items()},
        output_difference={t: float(np.concatenate(a["diff"]).mean()) for t, a in acc.items()},
    )


def _nanmax(values: list[np.ndarray]) -> float:
    v = np.concatenate(values)
    return float("nan") if np.all(np.isnan(v)) else float(np.nanmax(v))


def _accumulate(
    model: Any,
    data: torch.Tensor,
    method: str,
    target: str,
    n_steps: int,
    baseline: float | torch.Tensor,
    batch_size: int,
) -> dict[str, Any]:
    """Sums of signed and absolute (F, T) maps plus per-frame checks over all batches."""
    acc: dict[str, Any] = {"sum": 0.0, "abs": 0.0, "delta": [], "error": [], "diff": []}
    for i in range(0, len(data), batch_size):
        fn, x = _prepare(model, data[i : i + batch_size].to(_device(model)))
        x = x.detach().requires_grad_(True)
        attr, delta, error, diff = _attribute_batch(
            fn, x, _baseline(x.detach(), baseline), method, TARGET_INDEX[target], n_steps
        )
        maps = _to_maps(attr).double()
        acc["sum"] = acc["sum"] + maps.sum(dim=0).cpu().numpy()
        acc["abs"] = acc["abs"] + _to_maps(attr.abs()).double().sum(dim=0).cpu().numpy()
        acc["delta"].append(delta)
        acc["error"].append(error)
        acc["diff"].append(diff)
    return acc


# --- plots --------------------------------------------------------------------------------
def plot_maps(result: AttributionResult, absolute: bool = False, cmap: str = "RdBu_r") -> Figure:
    """The (packets x time) attribution map of every target, frequency in kHz.

    Args:
        result: From :func:`attribute`.
        absolute: Show mean |attribution| instead of the signed mean.
        cmap: Colormap (diverging for signed maps).

    Returns:
        The figure, one panel per target.

    Notebook: notebooks/06_attribution.py
    """
    maps = result.abs_maps if absolute else result.maps
    fig, axes = plt.subplots(1, len(maps), figsize=(4.2 * len(maps), 3.4), squeeze=False,
                             layout="constrained")  # fmt: skip
    khz = result.frequencies_khz
    for ax, (target, m) in zip(axes.flat, maps.items(), strict=True):
        lim = float(np.max(np.abs(m))) or 1.0
        vmin = 0.0 if absolute or result.method == "saliency" else -lim
        im = ax.imshow(m, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=lim,
                       extent=(0, m.shape[1], khz[0], khz[-1]))  # fmt: skip
        ax.set(title=f"{result.method}: {target}", xlabel="time step", ylabel="frequency [kHz]")
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def plot_marginals(
    results: AttributionResult | Sequence[AttributionResult],
    target: AttributionTarget = "fake",
    normalize: bool = True,
) -> Figure:
    """Mean |attribution| per frequency band, one line per result (e.g. IG vs saliency).

    Args:
        results: One or more results from :func:`attribute`.
        target: "real" or "fake" (must be in every result).
        normalize: Scale each line to sum 1 so different methods can share an axis.

    Returns:
        The figure (frequency in kHz).

    Notebook: notebooks/06_attribution.py
    """
    results = [results] if isinstance(results, AttributionResult) else list(results)
    fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
    for res in results:
        m = res.marginal(target)
        ax.plot(res.frequencies_khz, m / m.sum() if normalize and m.sum() else m, label=res.method)
    ylabel = "share of |attribution|" if normalize else "mean |attribution|"
    ax.set(xlabel="frequency [kHz]", ylabel=ylabel, title=f"target: {target}")
    ax.legend()
    return fig
