"""gpwave.plots: the fingerprint figures (hand-computed curves) and a tree's written outputs."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from _signals import SR
from matplotlib.figure import Figure

from gpwave import fingerprints as fp
from gpwave import plots
from gpwave.errors import DataError


def _spectrum(mean: np.ndarray, generator: str = "g", label: int = 1) -> fp.FingerprintSpectrum:
    level = int(np.log2(len(mean)))
    freqs = (np.arange(len(mean)) + 0.5) * SR / 2 / len(mean)
    return fp.FingerprintSpectrum(
        generator, mean, 0.1 * mean, 10, freqs, "haar", level, label=label, folder=f"X_{generator}"
    )


def test_plots_return_figures_with_khz_axes():
    spectra = {"ljspeech": _spectrum(np.linspace(1, 2, 64), "ljspeech", 0)}
    for name in ("melgan", "hifigan", "pwg"):
        spectra[name] = _spectrum(np.linspace(1, 3, 64), name)
    fig = plots.plot_spectra(spectra["ljspeech"], spectra["melgan"], freq_range=(1000, 5000))
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_xlabel() == "frequency [kHz]" and fig.axes[0].get_yscale() == "log"
    assert fig.axes[0].get_lines()[0].get_xdata().max() <= 5.0
    grid = plots.plot_difference_grid(spectra, ncols=2)
    assert sum(ax.get_visible() for ax in grid.axes) == 3
    three = plots.plot_spectra(list(spectra.values())[:3], scale="linear")
    assert [ln.get_label() for ln in three.axes[0].get_lines()] == ["ljspeech", "melgan", "hifigan"]
    four = plots.plot_spectra(list(spectra.values())).axes[0].get_lines()
    colors = [ln.get_color() for ln in four]
    assert len(set(colors)) == 4, f"every spectrum needs its own colour: {colors}"
    vs_melgan = plots.plot_difference_grid(spectra, reference="melgan")
    assert {ax.get_title() for ax in vs_melgan.axes if ax.get_visible()} == {
        "ljspeech", "hifigan", "pwg",
    }  # fmt: skip
    with pytest.raises(DataError, match="wavenet"):
        plots.plot_difference_grid(spectra, reference="wavenet")
    with pytest.raises(ValueError, match="scale"):
        plots.plot_spectra(spectra["ljspeech"], scale="db")
    comp = plots.plot_comparison(spectra["ljspeech"], spectra["melgan"])
    top, bottom = comp.axes
    expected_db = 20 * np.log10(np.linspace(1, 3, 64) / np.linspace(1, 2, 64))
    np.testing.assert_allclose(bottom.get_lines()[0].get_ydata(), expected_db, atol=1e-9)
    assert bottom.get_xlabel() == "frequency [kHz]" and top.get_yscale() == "log"


@pytest.mark.slow
def test_level14_haar_fingerprints_of_the_mini_benchmark(mini_root, tmp_path):
    start = time.perf_counter()
    out = plots.write_fingerprints(mini_root, tmp_path / "fp", "haar", 14)
    total = time.perf_counter() - start
    index = json.loads((out / "index.json").read_text())
    print(f"level-14 haar: spectra {index['compute_seconds']:.1f} s, with outputs {total:.1f} s")
    assert len(index["generators"]) == 21
    spectra = {g["generator"]: fp.FingerprintSpectrum.load(out / g["spectrum"])
               for g in index["generators"]}  # fmt: skip
    assert spectra["ljspeech"].mean.shape == (2**14,)
    assert sum(s.n_frames for s in spectra.values()) > 1000
