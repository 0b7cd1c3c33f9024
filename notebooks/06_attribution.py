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
# Integrated gradients attribute the detector's output for a frame to each input
# coefficient of its (packets × time) input, relative to a baseline input; the
# attributions of a frame sum to the difference between the output at the frame and at
# the baseline (completeness, checked below). Saliency, the absolute gradient, is shown
# for comparison. Averaged over test frames and summed over time, the attributions give a
# marginal over frequency: the bands the decision rests on. The study found that high
# frequencies carry the decision; this page shows what the model trained in this run
# says.

# %% tags=["hide-input"]
import os
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import display

from gpwave import attribution, data, models

plt.ioff()

# %% tags=["parameters"]
data_dir = os.path.join(os.environ.get("GPWAVE_DATA", "data"), "wavefake-mini")
results_dir = "results"
quick = False
run = "dcnn_packets"
seed = 0
max_frames = None  # test frames to average over; None: all
n_steps = 50  # integration steps of integrated gradients

# %%
if quick:
    max_frames, n_steps = 8, 8
ckpt = Path(results_dir) / "runs" / run / f"seed_{seed}" / "best.pt"
detector = models.Detector.load(ckpt)
store = data.prepare_store(data.DataConfig(root=data_dir), progress=False)
rows = data.select_frames(store, "test", limit=max_frames)
frames = torch.from_numpy(store.read(rows))
results = {
    method: attribution.attribute(detector, frames, method=method, target="fake", n_steps=n_steps)
    for method in ("integrated_gradients", "saliency")
}
ig = results["integrated_gradients"]
print(f"{len(rows)} test frames; completeness delta of integrated gradients: {ig.delta:.2e}")

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Mean attribution maps (packets \u00d7 time) for the fake class: integrated gradients (left) and saliency (right).", "name": "fig-attribution-maps"}}
fig = attribution.plot_maps(results)
display(fig)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Marginal attribution over frequency (kHz): where the decision rests.", "name": "fig-attribution-marginal"}}
fig = attribution.plot_marginals(results)
display(fig)
