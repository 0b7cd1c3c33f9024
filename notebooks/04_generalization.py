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
# # Generalization to unseen generators
#
# Every detector was trained on real speech against one generator (see
# [Training a detector](03_train.ipynb)) and tested on the test split of every folder: the
# training generator and all generators it never saw. Scores are continuous fake
# probabilities; the equal error rate (EER) comes from the ROC curve of those scores,
# accuracy from the threshold 0.5. Numbers are the mean ± standard deviation over seeds;
# the 95 % bootstrap intervals resample utterances. `pooled_unseen` pools every
# generator except the training one.

# %% tags=["hide-input"]
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from gpwave import evaluate

# %% tags=["parameters", "hide-input"]
data_dir = os.path.join(os.environ.get("GPWAVE_DATA", "data"), "wavefake-mini")
results_dir = "results"
quick = False
runs = {
    "dcnn_packets": "DCNN, sym5 packets",
    "dcnn_stft": "DCNN, STFT",
    "dcnn_nodil": "DCNN without dilation, packets",
    "lcnn": "LCNN, LFCC",
    "gmm_lfcc": "GMM, LFCC",
    "gmm_mfcc": "GMM, MFCC",
    "linear": "linear probe, packets",
}
train_generator = "melgan"

# %%
runs_dir = Path(results_dir) / "runs"
tables = {
    label: evaluate.aggregate_seeds(evaluate.load_seed_tables(runs_dir / run))
    for run, label in runs.items()
}
long = pd.concat([t.assign(detector=label) for label, t in tables.items()], ignore_index=True)
evaluate.save_table(long, Path(results_dir) / "generalization" / "all_detectors")
print(f"{len(tables)} detectors, seeds per detector: {sorted(set(long['n_seeds']))}")

# %% [markdown]
# ## EER per test folder and detector
#
# EER in % (mean over seeds); lower is better, 50 % is chance.

# %% tags=["hide-input"]
eer = long.pivot_table(index="generator", columns="detector", values="eer_mean", sort=False)
display((100 * eer[list(tables)]).round(1))

# %% tags=["hide-input"] mystnb={"figure": {"caption": "EER (%) per test folder and detector, mean over seeds; error bars: standard deviation over seeds. The dashed line is chance.", "name": "fig-eer-per-generator"}}
std = long.pivot_table(index="generator", columns="detector", values="eer_std", sort=False)
fig, ax = plt.subplots(figsize=(10, 4.5))
(100 * eer[list(tables)]).plot.bar(ax=ax, yerr=100 * std[list(tables)].fillna(0), width=0.85)
ax.axhline(50, color="grey", lw=0.8, ls="--")
ax.set(xlabel="", ylabel="EER (%)")
ax.legend(fontsize=8, ncols=2)
fig.tight_layout()

# %% [markdown]
# ## Seen and unseen, side by side
#
# The training generator (seen) against all other generators pooled (unseen): the gap
# between the two columns is what generalisation costs.

# %% tags=["hide-input"]
seen_unseen = long[long["generator"].isin([train_generator, evaluate.POOLED])]
overview = seen_unseen.pivot_table(
    index="detector",
    columns="generator",
    values=["eer_mean", "eer_std", "accuracy_mean"],
    sort=False,
)
display((100 * overview).round(1).reindex(list(tables)))

# %% [markdown]
# ## The DCNN on wavelet packets, with confidence intervals
#
# The table as `gpwave evaluate` and the `save_table` files (CSV, JSON, Markdown, HTML,
# LaTeX) under `results_dir/generalization/` carry it.

# %% tags=["hide-input"]
display(Markdown(evaluate.to_markdown(tables[runs["dcnn_packets"]])))
