# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Fingerprints you can see and hear
#
# Every neural vocoder leaves a trace in the spectrum of what it generates. Averaged over
# many frames, the absolute wavelet-packet coefficients of a Haar transform at level 14
# (16 384 frequency bands of about 0.67 Hz) show it: the **mean packet spectrum** of each
# generator differs from that of real LJSpeech recordings in ways specific to the
# generator, most of all at high frequencies, where speech carries little energy.
#
# This chapter computes these spectra for every folder of the data set with
# `gpwave.fingerprints`, plots them against real speech, shows the difference in dB, and
# turns each difference back into sound.

# %% [markdown]
# **The paper and this book.** What the paper claims for each of its four deliverables,
# what the paper's released detectors and this book's own build show on this data, and
# a verdict computed from the numbers (the [introduction](../intro.md) explains the
# verdicts):
#
# ```{include} ../_generated/scoreboard.md
# ```

# %% tags=["hide-input"]
import os
from pathlib import Path

import numpy as np
from IPython.display import HTML, display

from gpwave import attribution, fingerprints, hub, plots, widgets
from gpwave.config import resolve_device
from gpwave.data import frame_audio, load_audio

# %% tags=["parameters", "hide-input"]
data_dir = os.path.join(os.environ.get("GPWAVE_DATA", "data"), "wavefake-mini")
results_dir = "results"
quick = False
wavelet = "haar"
level = 14
max_frames = None  # frames per folder; None: every frame
only_use = None  # folders to include (names such as "melgan"); None: every folder
example_generator = "melgan"
fingerprint_seconds = 2.0
live_explorer = True  # the ipywidgets explorer (needs a live kernel; the book sets False)
paper_files = 8  # real and full-band MelGAN files whose first second feeds the saliency below
device = "auto"  # where models and transforms run: auto (CUDA if present), cpu, cuda

# %%
if quick:
    max_frames, only_use = 8, ["ljspeech", "melgan", "fbmelgan", "hifigan"]
out = Path(results_dir) / "fingerprints"
spectra = fingerprints.folder_spectra(
    data_dir, wavelet=wavelet, level=level, only_use=only_use, max_frames=max_frames,
    device=resolve_device(device),
)  # fmt: skip
real = fingerprints.real_spectrum(spectra)
for spectrum in spectra.values():
    spectrum.save(out / "spectra" / f"{spectrum.generator}.npz")
print(f"{len(spectra)} sources, {sum(s.n_frames for s in spectra.values())} frames of 1 s")

# %% [markdown]
# ## Real speech against one generator
#
# The mean absolute level-14 Haar coefficient per band, real recordings against the
# example generator, on a logarithmic amplitude axis; the shaded band is one standard
# deviation over frames.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Mean level-14 Haar packet spectrum of real LJSpeech frames and of one generator's frames (shaded: one standard deviation).", "name": "fig-real-vs-fake"}}
fig = plots.plot_spectra([real, spectra[example_generator]])

# %% [markdown]
# ## Every generator's difference to real speech
#
# The difference $20 \log_{10}(\bar P^{\text{fake}} / \bar P^{\text{real}})$ in dB per
# frequency band, one panel per generator. Zero means the generator matches real speech
# in that band on average.
#
# The dotted lines mark the ten (sym5, level-8) bands the paper's released sym5 detector
# is most sensitive to: its mean saliency (absolute gradient) for the fake class on the
# first second of `paper_files` real and `paper_files` full-band MelGAN files. The
# [attribution chapter](06_attribution.ipynb) computes integrated gradients and saliency
# on more frames.

# %% tags=["hide-input"]
paper = hub.resolve("paper-sym5", device=resolve_device(device))
paper_frames = []
for folder in ("A_ljspeech", "E_fbmelgan"):
    for f in sorted((Path(data_dir) / folder).glob("*.wav"))[:paper_files]:
        paper_frames.append(frame_audio(load_audio(f), paper.n_samples)[0])
saliency = attribution.attribute(
    paper, np.stack(paper_frames), "saliency", "fake", batch_size=8, max_frames=None
)
top_khz = np.sort(saliency.frequencies_khz[np.argsort(saliency.marginal("fake"))[-10:]])
print("paper-sym5, most salient bands (kHz):", ", ".join(f"{k:.2f}" for k in top_khz))

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Difference of each generator's mean level-14 Haar packet spectrum to that of real speech, in dB. Dotted: the ten bands the paper's sym5 detector is most sensitive to.", "name": "fig-difference-grid"}}
fig = plots.plot_difference_grid(spectra)
fakes = [spec for spec in spectra.values() if spec is not real]
for ax, spec in zip(fig.axes, fakes, strict=False):  # frames averaged, on every panel
    ax.set_title(f"{spec.generator} ({spec.n_frames} frames)", fontsize=9)
fig.suptitle(f"real: {real.generator}, {real.n_frames} frames", fontsize=9)
for ax in fig.axes:
    for k in top_khz:
        ax.axvline(k, color="k", lw=0.6, ls=":", alpha=0.7)

# %% [markdown]
# ## Audible fingerprints
#
# Each generator's difference spectrum (and the real mean spectrum) is turned back into
# a short signal whose spectrum follows it (see
# `gpwave.fingerprints.audible_fingerprint` for the method), peak-normalised with
# headroom. Next to it: one second of real speech and one second of that generator.
#
# ```{warning}
# Audible fingerprints concentrate their energy where the generators deviate, often at
# high frequencies. **Listen at low volume.**
# ```

# %% tags=["hide-input"]
rows = fingerprints.fingerprint_rows(
    data_dir, spectra, out_dir=out / "audio", seconds=fingerprint_seconds
)
caption = (
    "Per generator: one second of real speech, one second of the generator and its audible "
    "fingerprint (listen at low volume)."
)
display(HTML(widgets.audio_table(rows, caption=caption)))

# %% [markdown]
# ## Explorer
#
# Pick a generator to see its spectrum against real speech and hear real speech, the
# generator and its audible fingerprint. This version is precomputed and works in the
# static book without a kernel or network.

# %% tags=["hide-input"]
display(HTML(widgets.static_explorer(spectra, audio=rows)))

# %% [markdown]
# In a live Jupyter kernel, `gpwave.widgets.explorer` offers the same with every choice
# open: generators, wavelet, level, frequency range, linear or logarithmic axes.
# `make explore` serves it as a web page with a live kernel (Voilà, at
# 127.0.0.1:8866), or run this notebook in Jupyter; the static book has no
# kernel, so the book's build skips it (parameter `live_explorer`).

# %% tags=["remove-output"]
if live_explorer:
    display(widgets.explorer(data_dir, spectra=spectra, max_frames=max_frames))

# %% [markdown]
# ## What we found
#
# Each generator's share of its absolute difference to real speech (in dB, summed over
# bands) that lies at or above 5.5 kHz, against the share a flat difference would have
# there (`gpwave.findings.high_share`); the sentences below are computed from it.

# %% tags=["hide-input"]
from IPython.display import Markdown

from gpwave import findings

band_hz = real.frequencies
shares = {
    spec.generator: findings.high_share(fingerprints.difference_db(spec, real), band_hz)
    for spec in fakes
}
found = findings.fingerprint_findings(
    shares,
    findings.uniform_share(band_hz),
    {spec.generator: spec.n_frames for spec in spectra.values()},
    quick,
)
findings.save(found, results_dir)
display(Markdown(found.markdown()))

# %% [markdown]
# ## Exercises
#
# Each exercise changes one parameter of this chapter. Write down your prediction first,
# then run the code in a cell at the end of the notebook (it uses the chapter's variables,
# so run the notebook first) and compare. Each takes seconds on a laptop CPU. The
# solutions are collapsed: click **Solution** to open one.

# %% [markdown]
# ### Exercise 1: a coarser level
#
# Compute the spectra with `level = 10` instead of 14 (the parameter `level`), on the
# same 32 frames per folder for both levels. Predict: how many bands, how wide is each,
# and will the difference curve of `example_generator` become smoother or noisier? What
# is lost?
#
# ````{admonition} Solution
# :class: dropdown
#
# Level 10 gives $2^{10} = 1024$ bands of $11025 / 1024 \approx 10.8$ Hz instead of
# 16 384 bands of about 0.67 Hz. A one-second frame of 22 050 samples has about
# $22050 / 2^{L}$ coefficients per band at level $L$: about 1.3 at level 14, about 21.5
# at level 10. Each band's mean therefore averages about 16 times more coefficients, so
# the curves are smoother: the band-to-band jitter of the difference (printed below) is
# smaller at level 10. The price is frequency resolution: a structure narrower than
# 10.8 Hz, such as a thin spectral line, is merged into one band. The broad deviations at
# high frequencies, the fingerprints, remain. How much smoother depends on the generator
# and on the frames drawn (for MelGAN the gain is small, for HiFi-GAN and full-band
# MelGAN the jitter roughly halves on the mini benchmark).
#
# ```python
# n, only = 32, ["ljspeech", example_generator]
# for lev in (14, 10):
#     s = fingerprints.folder_spectra(
#         data_dir, wavelet=wavelet, level=lev, only_use=only, max_frames=n
#     )
#     d = fingerprints.difference_db(
#         s[example_generator], fingerprints.real_spectrum(s)
#     )
#     width = (
#         s[example_generator].frequencies[1]
#         - s[example_generator].frequencies[0]
#     )
#     print(
#         f"level {lev}: {d.size} bands of {width:.2f} Hz, jitter {np.std(np.diff(d)):.2f} dB"
#     )
# fig = plots.plot_spectra(
#     [fingerprints.real_spectrum(s), s[example_generator]]
# )
# ```
# ````

# %% tags=["remove-cell"]
# Exercise 1: the solution above, run in quick builds with a check of its result.
if quick:
    n, only = 32, ["ljspeech", example_generator]
    for lev in (14, 10):
        s = fingerprints.folder_spectra(
            data_dir, wavelet=wavelet, level=lev, only_use=only, max_frames=n
        )
        d = fingerprints.difference_db(s[example_generator], fingerprints.real_spectrum(s))
        width = s[example_generator].frequencies[1] - s[example_generator].frequencies[0]
        print(f"level {lev}: {d.size} bands of {width:.2f} Hz, jitter {np.std(np.diff(d)):.2f} dB")
    fig = plots.plot_spectra([fingerprints.real_spectrum(s), s[example_generator]])
    assert d.size == 2**10 and abs(width - 11025 / 2**10) < 0.01

# %% [markdown]
# ### Exercise 2: another wavelet
#
# Repeat the computation at level 10 with `wavelet = "sym5"` (the wavelet of the paper's
# detector) instead of `"haar"`. Predict: does the mean spectrum of real speech span
# more or fewer decibels between its loudest and its quietest band, and do the
# generator's deviations from real speech become larger or smaller?
#
# ````{admonition} Solution
# :class: dropdown
#
# With sym5 the real spectrum spans more decibels (about 41 dB with Haar and 55 dB with
# sym5 on 32 frames of the mini benchmark; the exact values depend on the frames), and
# the largest deviation of the generator grows too. The Haar filters have two taps:
# their pass bands are wide and overlap, so every band leaks energy from its neighbours,
# and the loud low-frequency speech fills the quiet high-frequency bands where the
# fingerprints live. The ten-tap sym5 filters separate the bands better, so valleys stay
# deep and the generators' deviations stand out more sharply. The fingerprints are not
# an artefact of one wavelet: the same generators deviate in both, which is why the
# detectors of this book work on sym5 packets (level 8).
#
# ```python
# only = ["ljspeech", example_generator]
# for w in ("haar", "sym5"):
#     s = fingerprints.folder_spectra(
#         data_dir, wavelet=w, level=10, only_use=only, max_frames=32
#     )
#     real10 = fingerprints.real_spectrum(s)
#     d = fingerprints.difference_db(s[example_generator], real10)
#     span = 20 * np.log10(real10.mean.max() / real10.mean.min())
#     print(
#         f"{w}: real spectrum spans {span:.0f} dB, largest |Δ| {np.abs(d).max():.1f} dB"
#     )
# ```
# ````

# %% tags=["remove-cell"]
# Exercise 2: the solution above, run in quick builds with a check of its result.
if quick:
    only = ["ljspeech", example_generator]
    for w in ("haar", "sym5"):
        s = fingerprints.folder_spectra(data_dir, wavelet=w, level=10, only_use=only, max_frames=32)
        real10 = fingerprints.real_spectrum(s)
        d = fingerprints.difference_db(s[example_generator], real10)
        span = 20 * np.log10(real10.mean.max() / real10.mean.min())
        print(f"{w}: real spectrum spans {span:.0f} dB, largest |Δ| {np.abs(d).max():.1f} dB")
    spans = {}
    for w in ("haar", "sym5"):
        s = fingerprints.folder_spectra(data_dir, wavelet=w, level=10, only_use=only, max_frames=32)
        r10 = fingerprints.real_spectrum(s)
        spans[w] = 20 * np.log10(r10.mean.max() / r10.mean.min())
    assert spans["sym5"] > spans["haar"], spans
