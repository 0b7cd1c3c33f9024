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
# and plays the test frames that the full model gets right and the ablation gets wrong.

# %% tags=["hide-input"]
import os
from pathlib import Path

import pandas as pd
from IPython.display import HTML, display

from gpwave import evaluate, models, train, widgets
from gpwave.config import resolve_device

# %% tags=["parameters", "hide-input"]
data_dir = os.path.join(os.environ.get("GPWAVE_DATA", "data"), "wavefake-mini")
results_dir = "results"
quick = False
protocol_file = "configs/mini.yaml"  # the protocol: test-only folders, split (relative to the repo)
run = "dcnn_packets"
ablation_run = "dcnn_nodil"
seed = 0
max_examples = 10
limit_test = None  # test frames per folder to compare (as in training's table); None: all
device = "auto"  # where both models score the test frames: auto (CUDA if present), cpu, cuda
store_dir = None  # frame store; None: the one `gpwave data prepare` builds ($GPWAVE_DATA/stores)

# %% [markdown]
# ## The ablation table
#
# EER and accuracy in % per test folder, mean ± standard deviation over seeds, with and
# without dilation.

# %% tags=["hide-input"]
runs_dir = Path(results_dir) / "runs"
both = pd.concat(
    [
        evaluate.aggregate_seeds(evaluate.load_seed_tables(runs_dir / name)).assign(run=name)
        for name in (run, ablation_run)
    ],
    ignore_index=True,
)
evaluate.save_table(both, Path(results_dir) / "dilation" / "ablation")
ablation = both.pivot_table(
    index="generator", columns="run", values=["eer_mean", "eer_std", "accuracy_mean"], sort=False
)
display((100 * ablation).round(1))

# %% [markdown]
# ## Frames the dilated model gets right and the ablation gets wrong
#
# Both models (seed `seed`) score every test frame; the frames that the DCNN with
# dilation classifies correctly at 0.5 and the DCNN without dilation does not are sorted
# by how confidently the ablation is wrong. Up to `max_examples` of them are written as
# clips under `results_dir/dilation/examples/` and played below, with both models' fake
# probabilities.

# %%
store = train.protocol_store(protocol_file, data_dir, store_dir)
if quick:
    limit_test = 8
detectors = [
    models.Detector.load(runs_dir / name / f"seed{seed}" / "best.pt", resolve_device(device))
    for name in (run, ablation_run)
]
disagree = evaluate.compare_detectors(*detectors, store, limit=limit_test, seed=seed)
examples = evaluate.export_disagreements(
    disagree, store, Path(results_dir) / "dilation" / "examples", n=max_examples
)
n_frames = len(evaluate.split_frames(store, "test", limit=limit_test, seed=seed))
print(f"{n_frames} test frames; {len(disagree)} right with dilation and wrong without it")

# %% tags=["hide-input"]
rows = [
    {
        "generator": r.generator,
        "file": Path(r.file).name,
        "second": r.offset / store.sample_rate,
        "with dilation": r.score_a,
        "without": r.score_b,
        "audio": r.clip,
    }
    for r in examples.itertuples()
]
caption = "Fake probability of each model (threshold 0.5); ljspeech frames are real."
if rows:
    display(HTML(widgets.audio_table(rows, caption=caption)))
else:
    print("No test frame is right with dilation and wrong without it.")
