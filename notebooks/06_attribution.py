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
# # Which frequencies decide
#
# Integrated gradients attribute the detector's output for a frame to each coefficient of
# its (packets × time) input, relative to a baseline input (the training mean); the
# attributions of a frame sum to the difference between the output at the frame and at
# the baseline (completeness, checked below). Saliency, the absolute gradient, is shown
# for comparison. Averaged over test frames and over time, the attributions give a
# marginal over frequency: the bands the decision rests on. The study found that high
# frequencies carry the decision. The page opens with the paper's own released sym5
# model (`gpwave.pretrained.paper_detector`), then shows what the model trained in
# this book's run says.

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
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from gpwave import attribution, hub
from gpwave.config import resolve_device
from gpwave.fingerprints import mean_model_input
from gpwave.frames import protocol_store
from gpwave.runs import Run, runs_overview
from gpwave.store import select_frames

# %% tags=["parameters", "hide-input"]
data_dir = os.path.join(os.environ.get("GPWAVE_DATA", "data"), "wavefake-mini")
results_dir = "results"
quick = False
protocol_file = "configs/mini.yaml"  # the protocol: test-only folders, split (relative to the repo)
run = "dcnn_packets"
seed = 0
max_frames = 2500  # test frames to average over (the study: 2500); None: all
n_steps = 50  # integration steps of integrated gradients
batch_size = 4  # frames per attribution batch (memory grows with batch_size * n_steps)
high_khz = 5.5  # where "high frequencies" start, for the share below
paper_max_frames = 256  # test frames per class for the paper's sym5 model
paper_n_steps = 32  # its integration steps
device = "auto"  # where models and transforms run: auto (CUDA if present), cpu, cuda
store_dir = None  # frame store; None: the one `gpwave data prepare` builds ($GPWAVE_DATA/stores)

# %% [markdown]
# ## The paper's sym5 model
#
# Integrated gradients and saliency of the released sym5 DCNN, averaged over real and
# fake test frames of the mini benchmark (real LJSpeech and every fake folder, at most
# `paper_max_frames` per class), for both targets: the paper's figure of mean attribution
# per packet band. The baseline is the normalised training mean (zero). The number of
# frames and the time taken are printed below.

# %%
if quick:
    max_frames, n_steps, paper_max_frames, paper_n_steps = 2, 4, 4, 4
t0 = time.perf_counter()
paper = hub.resolve("paper-sym5", device=resolve_device(device))
store = protocol_store(protocol_file, data_dir, store_dir)
idx = store.index
paper_rows = select_frames(store, "test", balance=True, limit=paper_max_frames)
paper_results = {
    method: attribution.attribute(
        paper, store.read(paper_rows), method=method, target="both",
        n_steps=paper_n_steps, batch_size=batch_size, max_frames=None,
    )
    for method in ("integrated_gradients", "saliency")
}  # fmt: skip
paper_ig, paper_sal = paper_results["integrated_gradients"], paper_results["saliency"]
paper_seconds = time.perf_counter() - t0
print(f"paper-sym5: {paper_ig.n_frames} test frames (real and fake, balanced), "
      f"{paper_n_steps} IG steps, {paper_seconds:.0f} s")  # fmt: skip

# %% tags=["hide-input"] mystnb={"figure": {"caption": "The paper's sym5 model: share of the mean absolute attribution per packet band for the fake target, integrated gradients and saliency.", "name": "fig-paper-attribution"}}
fig = attribution.plot_marginals([paper_ig, paper_sal], target="fake")

# %% tags=["hide-input"]
paper_share = attribution.high_band_share([paper_ig, paper_sal], high_khz)
display(
    (100 * paper_share).round(1).rename_axis(f"paper-sym5: % of |attribution| above {high_khz} kHz")
)

# %% [markdown]
# ### Where the attribution meets the fingerprint
#
# The ten bands with the largest integrated-gradients attribution for the fake target,
# next to the difference of the model's mean input (log packet power) between full-band
# MelGAN, the generator it was trained against, and real speech: the fingerprint of
# [the fingerprints chapter](01_fingerprints.ipynb), at the model's own resolution.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Mean log packet power of full-band MelGAN minus real speech (the sym5 model's input, level 8), with the ten bands the paper model attributes most to (integrated gradients, fake target) marked.", "name": "fig-paper-attribution-fingerprint"}}
fb = idx[idx["folder"] == "E_fbmelgan"].head(32)["row"].to_numpy()
real = idx[idx["label"] == 0].head(32)["row"].to_numpy()
diff = mean_model_input(paper, store.read(fb)) - mean_model_input(paper, store.read(real))
top = np.argsort(paper_ig.marginal("fake"))[-10:]
fig, ax = plt.subplots(figsize=(9, 3.2))
khz = paper_ig.frequencies_khz
ax.plot(khz, diff, lw=1, color="C0", label="full-band MelGAN − real")
ax.scatter(khz[top], diff[top], color="C3", zorder=3, label="10 most attributed bands")
ax.axhline(0, color="grey", lw=0.8)
ax.set(xlabel="frequency (kHz)", ylabel="Δ mean log power")
ax.legend(fontsize=8)
fig.tight_layout()
print("most attributed bands (kHz):", ", ".join(f"{k:.2f}" for k in np.sort(khz[top])))

# %% [markdown]
# ## The self-trained model

# %%
detector = hub.resolve(Run(results_dir, run).seed(seed).best, resolve_device(device))
rows = select_frames(store, "test", balance=False, limit=max_frames)
frames = store.read(rows)
results = {
    method: attribution.attribute(
        detector,
        frames,
        method=method,
        target="both",
        n_steps=n_steps,
        batch_size=batch_size,
        max_frames=None,
    )
    for method in ("integrated_gradients", "saliency")
}
ig, sal = results["integrated_gradients"], results["saliency"]
print(f"{ig.n_frames} test frames ({len(rows)} selected), model {run}, seed {seed}")

# %% [markdown]
# ## Completeness
#
# The largest absolute difference, over frames, between the sum of a frame's integrated
# gradients and the change of the logit from the baseline to the frame, next to the mean
# change itself.

# %% tags=["hide-input"]
display(
    pd.DataFrame(
        {
            "mean logit change": ig.output_difference,
            "largest completeness error": ig.completeness_error,
            "captum convergence delta": ig.convergence_delta,
        }
    )
)

# %% [markdown]
# ## Attribution maps

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Integrated gradients averaged over test frames, per input coefficient (packets \u00d7 time), for the real and the fake class.", "name": "fig-ig-maps"}}
fig = attribution.plot_maps(ig)
for cax in fig.axes:  # label the colour bars
    if getattr(cax, "_colorbar", None) is not None:
        cax._colorbar.set_label("mean attribution (signed)")

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Saliency (absolute gradient) averaged over test frames, for the real and the fake class.", "name": "fig-saliency-maps"}}
fig = attribution.plot_maps(sal, absolute=True, cmap="viridis")
for cax in fig.axes:  # label the colour bars
    if getattr(cax, "_colorbar", None) is not None:
        cax._colorbar.set_label("mean |gradient|")

# %% [markdown]
# ## Marginals over frequency

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Share of the mean absolute attribution per frequency band (kHz) for the fake class: integrated gradients and saliency.", "name": "fig-attribution-marginal"}}
fig = attribution.plot_marginals([ig, sal], target="fake")

# %% tags=["hide-input"]
share = attribution.high_band_share([ig, sal], high_khz)
display((100 * share).round(1).rename_axis(f"% of |attribution| above {high_khz} kHz"))

# %% [markdown]
# ## What we found
#
# How much of each model's integrated-gradients attribution for the fake target lies at
# or above `high_khz`, on the same frames as above, attributed one at a time, with a 95 % bootstrap interval over frames, against
# the share a flat attribution would put there (the fraction of bands above the cut).

# %% tags=["hide-input"]
from IPython.display import Markdown

from gpwave import findings

paper_pf, paper_hz = findings.per_frame_marginals(paper, store.read(paper_rows), paper_n_steps)
own_pf, own_hz = findings.per_frame_marginals(detector, frames, n_steps)
cut = 1000 * high_khz
own_converged = bool(runs_overview(results_dir, [run])["converged"].all())
found = findings.attribution_findings(
    findings.share_interval(paper_pf, paper_hz, cut),
    findings.share_interval(own_pf, own_hz, cut),
    findings.uniform_share(own_hz, cut),
    own_converged,
    np.sort(khz[top]),
    quick,
)
findings.save(found, results_dir)
display(Markdown(found.markdown()))

# %% [markdown]
# ## Exercises
#
# Each exercise changes one argument of `attribution.attribute`. Write down your
# prediction first, then run the code in a cell at the end of the notebook (it uses the
# chapter's variables, so run the notebook first) and compare. Each attributes a few
# frames with the paper's sym5 model: about a minute on a laptop CPU. The solutions are
# collapsed: click **Solution** to open one.

# %% [markdown]
# ### Exercise 1: integration steps and completeness
#
# Attribute four frames with integrated gradients for `n_steps` 4, 16 and 32. Predict:
# how do the completeness error (sum of the attributions minus the change of the logit)
# and the change of the logit itself depend on `n_steps`?
#
# ````{admonition} Solution
# :class: dropdown
#
# The change of the logit from the baseline to the frames does not depend on `n_steps`
# at all: it is two forward passes. The completeness error shrinks as `n_steps` grows.
# Integrated gradients is a path integral of the gradient from the baseline to the
# frame; `n_steps` is the number of points of its Gauss–Legendre quadrature, and the
# attributions add up to the logit change only as far as the quadrature is exact. In our
# run the error falls from about 5 with four steps, a sizeable part of a logit change of
# about −28, to about 0.1 with 16 steps, and then only slowly (about 0.09 with 32): the
# network's kinks (PReLU, max pooling) make the integrand only piecewise smooth, which
# slows every quadrature down. The values depend on the frames. The cost grows linearly
# with `n_steps`: choose the smallest number of steps whose completeness error is small
# against the logit change, and check the table *Completeness* before reading the maps.
#
# ```python
# few = store.read(paper_rows[:4])
# for steps in (4, 16, 32):
#     r = attribution.attribute(
#         paper,
#         few,
#         "integrated_gradients",
#         "fake",
#         n_steps=steps,
#         batch_size=batch_size,
#         max_frames=None,
#     )
#     print(
#         f"n_steps {steps:>2}: completeness error {r.completeness_error['fake']:.3f}, "
#         f"logit change {r.output_difference['fake']:.2f}"
#     )
# ```
# ````

# %% tags=["remove-cell"]
# Exercise 1: the solution above, run in quick builds with a check of its result.
if quick:
    few = store.read(paper_rows[:4])
    for steps in (4, 16, 32):
        r = attribution.attribute(
            paper,
            few,
            "integrated_gradients",
            "fake",
            n_steps=steps,
            batch_size=batch_size,
            max_frames=None,
        )
        print(
            f"n_steps {steps:>2}: completeness error {r.completeness_error['fake']:.3f}, "
            f"logit change {r.output_difference['fake']:.2f}"
        )
    r4 = attribution.attribute(
        paper,
        few,
        "integrated_gradients",
        "fake",
        n_steps=4,
        batch_size=batch_size,
        max_frames=None,
    )
    assert r.completeness_error["fake"] < r4.completeness_error["fake"]

# %% [markdown]
# ### Exercise 2: attribution noise between frames
#
# Compute the saliency of the paper's model on two disjoint sets of eight test frames
# (four real and four fake in each). Predict: will the two sets agree on the ten most
# salient frequency bands, and on the share of the saliency above `high_khz`?
#
# ````{admonition} Solution
# :class: dropdown
#
# They largely agree: most of the ten bands are shared (7 to 10 of 10 in our draws) and
# the share above 5.5 kHz differs by a few percentage points (about 60–65 % in both).
# Single frames are noisy, but the sensitivity of a trained model is a property of the
# model, concentrated in a few high-frequency bands, and averaging over frames brings it
# out quickly. Which bands fall just inside or outside the top ten depends on the frames
# drawn, so read the marginal's shape and the high-frequency share rather than a single
# band.
#
# ```python
# rows8 = select_frames(store, "test", balance=True, limit=8)  # 8 + 8
# tops = []
# for name, half in (("even", rows8[::2]), ("odd", rows8[1::2])):
#     r = attribution.attribute(
#         paper,
#         store.read(half),
#         "saliency",
#         "both",
#         batch_size=batch_size,
#         max_frames=None,
#     )
#     tops.append(set(np.argsort(r.marginal("fake"))[-10:]))
#     above = attribution.high_band_share([r], high_khz).loc["fake"].iloc[0]
#     print(
#         f"{name} frames: {100 * above:.1f} % of the saliency above {high_khz} kHz"
#     )
# print(f"{len(tops[0] & tops[1])} of the ten most salient bands shared")
# ```
# ````

# %% tags=["remove-cell"]
# Exercise 2: the solution above, run in quick builds with a check of its result.
if quick:
    rows8 = select_frames(store, "test", balance=True, limit=8)  # 8 + 8
    tops = []
    for name, half in (("even", rows8[::2]), ("odd", rows8[1::2])):
        r = attribution.attribute(
            paper,
            store.read(half),
            "saliency",
            "both",
            batch_size=batch_size,
            max_frames=None,
        )
        tops.append(set(np.argsort(r.marginal("fake"))[-10:]))
        above = attribution.high_band_share([r], high_khz).loc["fake"].iloc[0]
        print(f"{name} frames: {100 * above:.1f} % of the saliency above {high_khz} kHz")
    print(f"{len(tops[0] & tops[1])} of the ten most salient bands shared")
    assert 0 <= len(tops[0] & tops[1]) <= 10 and 0 <= above <= 1
