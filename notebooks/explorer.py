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
# # Fingerprint explorer
#
# Pick generators, a wavelet and a decomposition level: the plot shows their mean
# wavelet-packet spectra against real speech, and the players play real speech, the first
# chosen generator and its audible fingerprint. Spectra of a new wavelet or level are
# computed when first chosen, from `max_frames` frames per folder of the mini benchmark
# (or of any letter-prefixed tree: `make explore EXPLORE_DATA=...`).
#
# This page needs a live kernel: `make explore` serves it with Voilà at 127.0.0.1 (the
# kernel-free twin is in the book's first chapter). Not a book chapter.

# %% tags=["hide-input"]
import os

from IPython.display import display

from gpwave import widgets

# %% tags=["parameters"]
# `make explore` passes these through the environment (Voila has no notebook parameters)
data_dir = os.environ.get("GPWAVE_EXPLORER_DATA") or os.path.join(
    os.environ.get("GPWAVE_DATA", "data"), "wavefake-mini"
)
max_frames = int(os.environ.get("GPWAVE_EXPLORER_FRAMES") or 64)  # frames per folder
wavelet = "haar"
level = 14

# %%
display(widgets.explorer(data_dir, wavelet=wavelet, level=level, max_frames=max_frames))
