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
# frequencies carry the decision; this page shows what the model trained in this run
# says.

# %% tags=["hide-input"]
import os
from pathlib import Path

import pandas as pd
from IPython.display import display

from gpwave import attribution, data, models, train

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

# %%
if quick:
    max_frames, n_steps = 2, 4
detector = models.Detector.load(Path(results_dir) / "runs" / run / f"seed{seed}" / "best.pt")
store = train.protocol_store(protocol_file, data_dir, Path(results_dir) / "store")
rows = data.select_frames(store, "test", balance=False, limit=max_frames)
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

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Saliency (absolute gradient) averaged over test frames, for the real and the fake class.", "name": "fig-saliency-maps"}}
fig = attribution.plot_maps(sal, absolute=True, cmap="viridis")

# %% [markdown]
# ## Marginals over frequency

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Share of the mean absolute attribution per frequency band (kHz) for the fake class: integrated gradients and saliency.", "name": "fig-attribution-marginal"}}
fig = attribution.plot_marginals([ig, sal], target="fake")

# %% tags=["hide-input"]
share = {
    res.method: {
        target: float(
            res.marginal(target)[res.frequencies_khz >= high_khz].sum() / res.marginal(target).sum()
        )
        for target in ("real", "fake")
    }
    for res in (ig, sal)
}
display(
    (100 * pd.DataFrame(share)).round(1).rename_axis(f"% of |attribution| above {high_khz} kHz")
)
