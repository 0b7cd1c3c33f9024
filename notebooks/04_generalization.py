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
# [Training a detector](03_train.ipynb)) and is tested here on every folder: the training
# generator and all generators it never saw. Scores are continuous fake probabilities;
# the equal error rate (EER) comes from the ROC curve of those scores, accuracy from the
# threshold 0.5. Numbers are the mean ± standard deviation over seeds, with the 95 %
# bootstrap interval (over utterances) of the pooled seeds.

# %% tags=["hide-input"]
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from gpwave import evaluate

plt.ioff()

# %% tags=["parameters"]
data_dir = os.path.join(os.environ.get("GPWAVE_DATA", "data"), "wavefake-mini")
results_dir = "results"
quick = False
runs = {
    "dcnn_packets": "DCNN, sym5 packets",
    "dcnn_stft": "DCNN, STFT",
    "lcnn": "LCNN, sym5 packets",
    "gmm_lfcc": "GMM, LFCC",
    "gmm_mfcc": "GMM, MFCC",
    "linear": "linear probe, mean packet spectrum",
}
train_generator = "melgan"

# %%
tables = {
    label: evaluate.aggregate_seeds(
        [
            pd.read_csv(p)
            for p in sorted((Path(results_dir) / "runs" / run).glob("seed_*/generalization.csv"))
        ]
    )
    for run, label in runs.items()
}
long = pd.concat([t.assign(detector=label) for label, t in tables.items()], ignore_index=True)
long.to_csv(Path(results_dir) / "generalization_all.csv", index=False)

# %% [markdown]
# ## EER per generator and detector

# %% tags=["hide-input"]
eer = long.pivot_table(index="generator", columns="detector", values="eer_mean", sort=False)
eer = (100 * eer).round(1)
display(eer)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "EER (%) per test folder and detector, mean over seeds; the error bars are the standard deviation over seeds. Lower is better; 50 % is chance.", "name": "fig-eer-per-generator"}}
fig, ax = plt.subplots(figsize=(10, 5))
err = (
    100 * long.pivot_table(index="generator", columns="detector", values="eer_std", sort=False)
).reindex_like(eer)
eer.plot.bar(ax=ax, yerr=err.fillna(0), width=0.8)
ax.set_ylabel("EER (%)")
ax.axhline(50, color="grey", lw=0.8, ls="--")
ax.legend(fontsize=8, ncols=2)
fig.tight_layout()
display(fig)

# %% [markdown]
# ## Mean over the unseen generators
#
# The training generator is left out of this mean: it is the number that says how well a
# detector generalises.

# %% tags=["hide-input"]
unseen = long[long["generator"] != train_generator]
overview = unseen.groupby("detector", sort=False)[["eer_mean", "accuracy_mean"]].mean()
overview = (
    (100 * overview)
    .round(1)
    .rename(columns={"eer_mean": "mean EER (%)", "accuracy_mean": "mean accuracy (%)"})
)
display(overview)

# %% [markdown]
# ## Full table with confidence intervals
#
# The same numbers as a Markdown table, as `gpwave evaluate` prints them, for the DCNN on
# wavelet packets.

# %% tags=["hide-input"]
display(Markdown(evaluate.to_markdown(tables[runs["dcnn_packets"]])))
