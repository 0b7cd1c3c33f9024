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
# # What dilation buys
#
# The DCNN ends in three dilated convolution blocks over frequency (dilations 1, 2 and 4)
# that see wide frequency context. The ablation replaces them by undilated blocks and
# changes nothing else. This chapter compares the two trained models on every test folder
# and lets you listen to the frames the full model gets right and the ablation gets
# wrong.

# %% tags=["hide-input"]
import os
from pathlib import Path

import pandas as pd
from IPython.display import HTML, display

from gpwave import attribution, evaluate, models, widgets

# %% tags=["parameters"]
data_dir = os.path.join(os.environ.get("GPWAVE_DATA", "data"), "wavefake-mini")
results_dir = "results"
quick = False
run = "dcnn_packets"
ablation_run = "dcnn_nodil"
seed = 0
max_examples = 10

# %% [markdown]
# ## The ablation table
#
# EER and accuracy per test folder, mean ± standard deviation over seeds, with and
# without dilation.

# %% tags=["hide-input"]
runs_dir = Path(results_dir) / "runs"
both = {
    name: evaluate.aggregate_seeds(
        [pd.read_csv(p) for p in sorted((runs_dir / name).glob("seed_*/generalization.csv"))]
    )
    for name in (run, ablation_run)
}
ablation = pd.concat(
    {
        name: t.set_index("generator")[["eer_mean", "eer_std", "accuracy_mean"]]
        for name, t in both.items()
    },
    axis=1,
)
(100 * ablation).round(1)

# %% [markdown]
# ## Frames the dilated model gets right and the ablation gets wrong
#
# On the test split, the frames that the DCNN with dilation classifies correctly and the
# DCNN without dilation does not, up to the parameter `max_examples`, with both models'
# fake probabilities. The clips are written to `results_dir` as well.

# %%
with_dilation = models.Detector.load(runs_dir / run / f"seed_{seed}" / "best.pt")
without = models.Detector.load(runs_dir / ablation_run / f"seed_{seed}" / "best.pt")
examples = attribution.disagreements(
    with_dilation,
    without,
    data_dir,
    limit=max_examples,
    out_dir=Path(results_dir) / "dilation" / "examples",
)
display(examples.drop(columns=["audio"], errors="ignore"))

# %% tags=["hide-input"]
if len(examples):
    display(HTML(widgets.audio_table(examples.to_dict(orient="records"))))
else:
    print("No test frame is right with dilation and wrong without it.")
