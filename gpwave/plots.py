"""Figures of the fingerprint study, and everything it writes for a folder tree.

Mean packet spectra overlaid, one generator against real speech with the difference in
dB, and a grid of every generator's difference (:mod:`gpwave.fingerprints` computes
them); :func:`write_fingerprints` computes, plots and writes a whole tree's fingerprints
(``gpwave fingerprint``).

Notebook: notebooks/01_fingerprints.py
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from gpwave.constants import AxisScale, check_option
from gpwave.errors import DataError
from gpwave.fingerprints import (
    FingerprintSpectrum,
    _check_compatible,
    audible_fingerprint,
    difference_db,
    folder_spectra,
    real_spectrum,
    write_wav,
)


def _band_mask(spec: FingerprintSpectrum, freq_range: tuple[float, float] | None) -> np.ndarray:
    if freq_range is None:
        return np.ones(len(spec.frequencies), dtype=bool)
    lo, hi = freq_range
    return (spec.frequencies >= lo) & (spec.frequencies <= hi)


def plot_spectra(
    spectra: FingerprintSpectrum | Sequence[FingerprintSpectrum],
    fake: FingerprintSpectrum | None = None,
    *,
    scale: AxisScale = "log",
    freq_range: tuple[float, float] | None = None,
    show_std: bool = True,
) -> Figure:
    """Mean spectra overlaid (real first, then generators), the std as a band.

    Args:
        spectra: One spectrum (usually the real one) or a sequence of spectra with the
            same wavelet and level; the first sets the title.
        fake: One more spectrum to overlay (``plot_spectra(real, fake)``).
        scale: "log" or "linear" magnitude axis.
        freq_range: (low, high) in Hz to show (default: all bands).
        show_std: Draw mean ± std as a shaded band (on a log axis the band is
            symmetric in log: mean * (1 + std/mean) ** ±1, so it stays positive).

    Returns:
        The figure (frequency axis in kHz).

    Notebook: notebooks/01_fingerprints.py
    """
    check_option(scale, AxisScale, "scale")
    specs = [spectra] if isinstance(spectra, FingerprintSpectrum) else list(spectra)
    specs += [fake] if fake is not None else []
    first = specs[0]
    fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
    fake_colors = iter(["C3", "C1", "C2", *(f"C{k}" for k in range(4, 10))] * len(specs))
    for spec in specs:
        _check_compatible(spec, first)
        color = "C0" if spec.label == 0 else next(fake_colors)
        m = _band_mask(spec, freq_range)
        khz, mean = spec.frequencies[m] / 1e3, spec.mean[m]
        ax.plot(khz, mean, color=color, lw=0.6, label=spec.generator, rasterized=len(khz) > 2048)
        if show_std:
            high = mean + spec.std[m]
            low = mean**2 / high if scale == "log" else mean - spec.std[m]
            ax.fill_between(khz, low, high, color=color, alpha=0.15, lw=0, rasterized=True)
    ax.set(xlabel="frequency [kHz]", ylabel="mean |packet coefficient|", yscale=scale)
    ax.set_title(
        f"{first.wavelet} level {first.level}, {first.n_frames} frames of {first.generator}"
    )
    ax.legend(loc="upper right")
    return fig


def plot_comparison(
    real: FingerprintSpectrum,
    fake: FingerprintSpectrum,
    *,
    scale: AxisScale = "log",
    freq_range: tuple[float, float] | None = None,
) -> Figure:
    """Real vs one generator: overlaid spectra (top) and the difference in dB (bottom).

    Args:
        real: The real spectrum.
        fake: The generator's spectrum.
        scale: "log" or "linear" magnitude axis of the top panel.
        freq_range: (low, high) in Hz to show (default: all bands).

    Returns:
        The figure (frequency axis in kHz, shared).
    """
    check_option(scale, AxisScale, "scale")
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 5), sharex=True, height_ratios=(3, 2), layout="constrained"
    )
    m = _band_mask(real, freq_range)
    khz = real.frequencies[m] / 1e3
    for spec, color in ((real, "C0"), (fake, "C3")):
        top.plot(khz, spec.mean[m], color=color, lw=0.6, label=spec.generator, rasterized=True)
    top.set(ylabel="mean |packet coefficient|", yscale=scale)
    top.set_title(f"{real.wavelet} level {real.level}: {fake.generator} vs {real.generator}")
    top.legend(loc="upper right")
    bottom.plot(khz, difference_db(fake, real)[m], color="C3", lw=0.5, rasterized=True)
    bottom.axhline(0.0, color="k", lw=0.5)
    bottom.set(xlabel="frequency [kHz]", ylabel="difference [dB]")
    return fig


def plot_difference_grid(
    spectra: Mapping[str, FingerprintSpectrum],
    reference: str | None = None,
    *,
    freq_range: tuple[float, float] | None = None,
    ncols: int = 4,
) -> Figure:
    """A grid of every generator's difference to the reference (real) spectrum in dB.

    Args:
        spectra: Generator name -> spectrum.
        reference: Name of the reference spectrum (default: the one real spectrum).
        freq_range: (low, high) in Hz to show (default: all bands).
        ncols: Panels per row.

    Returns:
        The figure, one panel per other spectrum with shared axes (frequency in kHz).

    Raises:
        DataError: If there is no reference or nothing to compare with it.

    Notebook: notebooks/01_fingerprints.py
    """
    if reference is not None and reference not in spectra:
        raise DataError(f"no spectrum named {reference!r} among {', '.join(spectra)}")
    real = spectra[reference] if reference is not None else real_spectrum(spectra)
    fakes = [s for s in spectra.values() if s is not real]
    if not fakes:
        raise DataError(f"no spectra to compare with {real.generator}")
    ncols = min(ncols, len(fakes))
    nrows = int(np.ceil(len(fakes) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.2 * ncols, 2.2 * nrows), sharex=True, sharey=True,
        squeeze=False, layout="constrained",
    )  # fmt: skip
    for ax, spec in zip(axes.flat, fakes, strict=False):
        m = _band_mask(spec, freq_range)
        d = difference_db(spec, real)[m]
        ax.plot(spec.frequencies[m] / 1e3, d, lw=0.5, color="C3", rasterized=m.sum() > 2048)
        ax.axhline(0.0, color="k", lw=0.5)
        ax.set_title(spec.generator, fontsize=9)
    for ax in axes.flat[len(fakes) :]:
        ax.set_visible(False)
    fig.supxlabel("frequency [kHz]")
    fig.supylabel(f"level relative to {real.generator} [dB]")
    return fig


def _save_figure(fig: Figure, stem: Path) -> dict[str, str]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(stem.with_suffix(".png"), dpi=110)
    fig.savefig(stem.with_suffix(".svg"))
    plt.close(fig)
    return {"png": stem.with_suffix(".png").name, "svg": stem.with_suffix(".svg").name}


def write_fingerprints(
    data_dir: str | Path,
    out: str | Path,
    wavelet: str = "haar",
    level: int = 14,
    *,
    max_frames: int | None = None,
    device: str | torch.device | None = None,
) -> Path:
    """Compute and write the fingerprints of every folder of a data tree.

    Writes ``spectra/<generator>.npz`` (:class:`FingerprintSpectrum`),
    ``plots/<generator>.png|svg`` (real vs the generator), ``plots/differences.png|svg``
    (all generators in dB), ``audio/<generator>.wav`` (:func:`audible_fingerprint`,
    16-bit) and ``index.json`` (what was written, with frame counts and compute time).

    Args:
        data_dir: Letter-prefixed folder tree (``A_ljspeech`` real, others generators).
        out: Output folder (created).
        wavelet: PyWavelets wavelet name.
        level: Decomposition level.
        max_frames: Use at most this many frames per folder (default: all).
        device: Where to transform (default: "cuda" when available, else "cpu").

    Returns:
        ``out``; ``out / "index.json"`` lists every file.

    Raises:
        DataError: If the tree has no real folder or a folder has no frames.
    """
    out = Path(out)
    start = time.perf_counter()
    from gpwave.config import resolve_device

    device = resolve_device(device)
    spectra = folder_spectra(data_dir, wavelet, level, max_frames=max_frames, device=device)
    seconds = time.perf_counter() - start
    real = real_spectrum(spectra)
    entries = [_write_one(spec, real, out) for spec in spectra.values()]
    index = {
        "data_dir": str(data_dir), "wavelet": wavelet, "level": level,
        "sample_rate": real.sample_rate, "real": real.generator,
        "compute_seconds": round(seconds, 3), "device": str(device),
        "frames": sum(s.n_frames for s in spectra.values()), "generators": entries,
    }  # fmt: skip
    if len(spectra) > 1:
        index["differences"] = _save_figure(
            plot_difference_grid(spectra), out / "plots/differences"
        )
    (out / "index.json").write_text(json.dumps(index, indent=2))
    return out


def _write_one(spec: FingerprintSpectrum, real: FingerprintSpectrum, out: Path) -> dict[str, Any]:
    name = spec.generator
    spec.save(out / "spectra" / f"{name}.npz")
    fig = plot_spectra(real, None if spec is real else spec)
    plots = _save_figure(fig, out / "plots" / name)
    write_wav(out / "audio" / f"{name}.wav", audible_fingerprint(spec, real), spec.sample_rate)
    return {
        "generator": name, "folder": spec.folder, "label": spec.label,
        "n_frames": spec.n_frames, "spectrum": f"spectra/{name}.npz",
        "plot_png": f"plots/{plots['png']}", "plot_svg": f"plots/{plots['svg']}",
        "audio": f"audio/{name}.wav",
    }  # fmt: skip
