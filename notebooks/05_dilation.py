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
# Did both variants learn? A comparison of two untrained networks says nothing about
# dilation, so the runs are listed first (best validation EER on the training generator;
# "not converged" above 0.2).

# %% tags=["hide-input"]
overview = train.runs_overview(runs_dir, [run, ablation_run])
display(overview.drop(columns="reason"))
for _, r in overview[~overview["converged"]].iterrows():
    print(f"NOT CONVERGED: {r['run']} seed {r['seed']}: {r['reason']}")

# %% [markdown]
# ## The paired difference
#
# Both variants of the same seed score the same test frames, so their EERs can be
# compared pairwise: EER(with dilation) − EER(without), with a 95 % bootstrap interval
# that resamples utterances once for both models (a negative difference favours
# dilation). An interval that contains 0 means this test set cannot tell the two apart.

# %%
store = train.protocol_store(protocol_file, data_dir, store_dir)
if quick:
    limit_test = 8
((_, protocol),) = train.read_config(protocol_file)
seen = protocol.train_generator
seeds = sorted(set(overview.loc[overview["run"] == run, "seed"])
               & set(overview.loc[overview["run"] == ablation_run, "seed"]))  # fmt: skip
paired, scored = [], {}
for s in seeds:
    dets = [
        models.Detector.load(runs_dir / name / f"seed{s}" / "best.pt", resolve_device(device))
        for name in (run, ablation_run)
    ]
    frames, a = evaluate.split_scores(dets[0], store, "test", limit=limit_test, seed=s)
    _, b = evaluate.split_scores(dets[1], store, "test", limit=limit_test, seed=s)
    scored[s] = (frames, a, b)
    table = evaluate.paired_table(frames, a, b, seen, n_boot=100 if quick else 1000, seed=s)
    paired.append(table.assign(seed=s))
paired = pd.concat(paired, ignore_index=True).rename(columns={"eer_a": run, "eer_b": ablation_run})
evaluate.save_table(paired, Path(results_dir) / "dilation" / "paired_difference")
display((100 * paired.set_index(["seed", "test_frames"])).round(1))

# %% [markdown]
# ## Frames the dilated model gets right and the ablation gets wrong
#
# Both models (seed `seed`) score every test frame; the frames that the DCNN with
# dilation classifies correctly at 0.5 and the DCNN without dilation does not are sorted
# by how confidently the ablation is wrong. Up to `max_examples` of them are written as
# clips under `results_dir/dilation/examples/` and played below, with both models' fake
# probabilities.

# %%
frames, a, b = scored[seed]
disagree = evaluate.disagreements(a, b, frames)
examples = evaluate.export_disagreements(
    disagree, store, Path(results_dir) / "dilation" / "examples", n=max_examples
)
n_frames = len(frames)
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
