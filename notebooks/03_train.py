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
# # Training a detector
#
# This notebook trains one detector from a protocol file (a `gpwave train` config such as
# `configs/mini.yaml`) and one mapping of overrides: real speech against one generator,
# for each seed; every seed's best checkpoint is then scored on every test folder.
# Everything it writes lands in `results_dir/runs/<run_name>/seed<k>/`: `best.pt`,
# `last.pt`, `config.yaml`, `metrics.json` and `test_table.*`. Every setting the protocol
# and the overrides leave out takes its default from `gpwave.config.TrainConfig`.
#
# The book runs it several times (the run matrix in `configs/book.yaml`: DCNN on wavelet
# packets and on the STFT, the DCNN without dilation, the LCNN, GMMs on LFCC and MFCC, a
# linear probe); this page shows the DCNN on wavelet packets. The paper-scale run on a GPU
# node is the same notebook with the paper's protocol:
#
# ```bash
# papermill notebooks/03_train.ipynb out.ipynb -p data_dir /path/to/wavefake \
#     -p protocol_file configs/wavefake.yaml -y "overrides: {device: cuda}"
# ```
#
# The protocol file matters: `configs/mini.yaml` marks every folder but real speech and
# MelGAN as test-only, which on full WaveFake would pin every LJSpeech sentence to the
# test split; `configs/wavefake.yaml` is the paper's protocol.

# %% tags=["hide-input"]
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from gpwave import book, evaluate, hub, report, runs, train

# %% tags=["parameters", "hide-input"]
data_dir = os.path.join(os.environ.get("GPWAVE_DATA", "data"), "wavefake-mini")
results_dir = "results"
quick = False  # CI: lay the `quick` overrides of configs/book.yaml over the run
protocol_file = "configs/mini.yaml"  # gpwave train config: test-only folders, split, ...
run_name = "dcnn_packets"
overrides = {}  # TrainConfig keys that differ from the protocol, e.g. {"model": "lcnn", "feature": {"kind": "lfcc"}}
store_dir = (
    None  # frame store; None: the one `gpwave data prepare` builds under $GPWAVE_DATA/stores
)
matrix = "configs/book.yaml"  # the run matrix whose `quick` overrides a quick build lays over
progress = False  # progress bars (papermill -p progress True on a long GPU run)
resume = False  # continue each seed from its last.pt (an interrupted papermill run)

# %% tags=["hide-output"]
if quick:
    overrides = {**overrides, **book.run_matrix(book.REPO / matrix)["quick"]}
here = {"data_dir": str(data_dir), **({"store_dir": str(store_dir)} if store_dir else {})}
((_, cfg),) = train.read_config(protocol_file, {"progress": progress, **overrides, **here})
run = runs.Run(results_dir, run_name)
pd.Series(cfg.to_dict()).to_frame("value")

# %% [markdown]
# ## Training, one run per seed
#
# Adam with the paper's defaults, cross entropy, real speech against the training
# generator; the checkpoint with the lowest validation EER is kept as `best.pt`, with a
# calibration of its verdicts fitted on that epoch's validation scores
# (`metrics.platt_calibration`: `gpwave detect` reports `sigmoid(a * log-odds + b)`, so
# that 0.5 sits where the validation errors on real and fake speech balance; EERs never
# use it, they rank the log-odds). Each seed is one `gpwave.train.Trainer`; its files are
# the ones `gpwave.runs.Run` names. With `cache_features` the features of the training
# and validation frames are computed once and kept on disk beside the frame store
# (`frames.cached_raw_features`), shared by every run and seed with the same frames and
# feature settings.

# %%
metrics = {}
for seed in cfg.seeds:
    metrics[seed] = train.train_one(cfg, run.seed(seed).dir, seed=seed, resume=resume)
    m = metrics[seed]
    print(
        f"seed {seed}: {m['n_parameters']:,} parameters, {m['n_train_frames']} training frames, "
        f"best epoch {m['best']['epoch']} (validation EER {m['best']['val_eer']:.3f}), "
        f"{m['train_seconds']:.0f} s"
    )
    print("  " + runs.convergence_note(m))

# %% [markdown]
# A run whose config names `publish` then publishes its first seed's best checkpoint
# with its provenance, as `gpwave train` does, so that `gpwave detect --model NAME` uses
# the model this build fitted (the build owns that name: it replaces it).

# %%
if cfg.publish:
    first = cfg.seeds[0]
    command = runs.command_line(protocol_file, run.dir, overrides)
    prov = runs.provenance(cfg, metrics[first], command)
    published = hub.publish(run.seed(first).best, cfg.publish, prov, overwrite=True)
    print(f"published {cfg.publish}: {published}")

# %% tags=["hide-input"]
history = pd.concat(
    [pd.DataFrame(m["history"]).assign(seed=s) for s, m in metrics.items()], ignore_index=True
)
display(history.round(4))

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Training loss and validation EER per epoch, one line per seed.", "name": "fig-training-curves"}}
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for seed, h in history.groupby("seed"):
    axes[0].plot(h["epoch"], h["train_loss"], marker="o", label=f"seed {seed}")
    axes[1].plot(h["epoch"], 100 * h["val_eer"], marker="o", label=f"seed {seed}")
axes[0].set(xlabel="epoch", ylabel="training loss")
axes[1].set(xlabel="epoch", ylabel="validation EER (%)")
axes[1].legend()
fig.tight_layout()

# %% [markdown]
# ## Evaluation on every test folder
#
# Training ends by scoring each seed's best checkpoint on the test frames of every folder
# (at most `limit_test` per folder; real frames against each generator's): EER from the
# continuous fake log-odds (which, unlike the probability, never saturate and tie: see
# [Method](../method.md)), accuracy at log-odds 0 (probability 0.5), 95 % bootstrap
# intervals over utterances; `pooled_unseen` pools every generator except the training
# one. In a distributed run every process scores its share of the test frames
# (`evaluate.training_test_table`). The table of each seed is `seed<k>/test_table.csv`; below, the mean ± standard
# deviation over seeds.

# %%
summary = None  # a run with eval_test off is scored by the chapter that reads it
if cfg.eval_test:
    tables = report.load_seed_tables(run.dir, seeds=cfg.seeds)
    summary = report.aggregate_seeds(tables)
    report.save_table(summary, run.dir / "test_summary")
    print(f"{int(summary['n_frames'].max())} test frames in the largest row")
else:
    print("eval_test is off: this run's test frames are scored by the chapter that reads it")

# %% tags=["hide-input"]
from IPython.display import Markdown

from gpwave import findings

if summary is not None:
    people = pd.DataFrame(
        {
            "folder": summary["generator"],
            "frames": summary["n_frames"],
            "EER % (95 % CI)": findings.eer_with_ci(summary, "eer_mean"),
            "accuracy %": findings.pct_text(summary["accuracy_mean"]),
        }
    )
    display(Markdown(people.to_markdown(index=False, disable_numparse=True)))

# %% [markdown]
# ## Throughput
#
# Training frames per second (one-second frames, all epochs) and inference speed of the
# last seed's best checkpoint in seconds of audio per second, on this run's device. On a
# GPU node these are the numbers to compare. `gpwave.hub.resolve` gives the checkpoint back
# as a `Detector` (waveforms in, logits out) through `Detector.load`, which reads it with
# `weights_only=True` and checks its settings before building anything.

# %% tags=["hide-input"]
first = metrics[cfg.seeds[0]]
detector = hub.resolve(run.seed(cfg.seeds[-1]).best, device=first["device"])
speed = {
    "device": first["device"],
    "training frames/s": first["n_train_frames"] * len(first["history"]) / first["train_seconds"],
    "inference audio s/s": evaluate.inference_speed(detector, n_frames=4 if quick else 64),
}
pd.Series(speed).to_frame(run_name).to_json(run.dir / "throughput.json")
display(pd.Series(speed).to_frame(run_name))

# %% [markdown]
# ## What we found

# %% tags=["hide-input"]
from IPython.display import Markdown

from gpwave import findings

found = findings.training_findings(metrics, summary, cfg.train_generator, run_name, quick)
findings.save(found, results_dir)
display(Markdown(found.markdown()))

# %% [markdown]
# ## Exercises
#
# Each exercise changes one override of this chapter's run. Write down your prediction
# first, then run the code in a cell at the end of the notebook (it uses the chapter's
# variables, so run the notebook first) and compare. Each trains one seed of the DCNN on
# the mini benchmark for a few dozen steps: a few minutes on a laptop CPU. The runs
# land in `results_dir/exercises/`. The solutions are collapsed: click **Solution** to
# open one.

# %% [markdown]
# ### Exercise 1: a ten times smaller learning rate
#
# Train the same detector for 20 optimiser steps twice: with the default learning rate
# (`lr` 4e-4) and with `lr` 4e-5 (both as `overrides`). Predict: after the same number of
# steps, which run has the lower training loss and which the lower validation EER? Will
# both converge?
#
# ````{admonition} Solution
# :class: dropdown
#
# With `lr` 4e-5 each Adam step moves the weights about ten times less, so after the
# same 20 steps its training loss is usually higher and its validation EER higher than
# with 4e-4: the smaller step size needs more steps to learn the same thing, and the
# 4e-5 run stays close to where it started (EER near 0.5, loss near
# $\ln 2 \approx 0.693$). Whether either run has converged after 20 steps is what the
# convergence note prints; the book gives the chapter's run more steps
# (`configs/book.yaml`), and the training output above prints the best validation EER
# it reached. The exact losses and EERs depend on the seed, the frames and the machine's
# arithmetic, so compare the two runs, not the numbers. This is why the book fixes a
# budget in steps (`max_steps`) *and* checks convergence before it prints a table of
# test EERs.
#
# ```python
# for lr in (4e-4, 4e-5):
#     ((_, c),) = train.read_config(
#         protocol_file,
#         {
#             **overrides,
#             **here,
#             "progress": False,
#             "lr": lr,
#             "max_steps": 20,
#             "patience": None,
#             "eval_test": False,
#         },
#     )
#     m = train.train_one(
#         c, Path(results_dir) / "exercises" / f"lr{lr:g}", seed=0
#     )
#     print(f"lr {lr:g}:", runs.convergence_note(m))
#     display(
#         pd.DataFrame(m["history"])[
#             ["epoch", "train_loss", "val_eer"]
#         ].round(3)
#     )
# ```
# ````

# %% tags=["remove-cell"]
# Exercise 1: the solution above, run in quick builds (the chapter's run) with a check.
if quick and run_name == book.run_matrix()["chapter_run"]:
    for lr in (4e-4, 4e-5):
        ((_, c),) = train.read_config(
            protocol_file,
            {
                **overrides,
                **here,
                "progress": False,
                "lr": lr,
                "max_steps": 20,
                "patience": None,
                "eval_test": False,
            },
        )
        m = train.train_one(c, Path(results_dir) / "exercises" / f"lr{lr:g}", seed=0)
        print(f"lr {lr:g}:", runs.convergence_note(m))
        display(pd.DataFrame(m["history"])[["epoch", "train_loss", "val_eer"]].round(3))
    assert m["steps"] <= 20 and 0 <= m["best"]["val_eer"] <= 1, m["steps"]

# %% [markdown]
# ### Exercise 2: stop after five steps
#
# Train with `max_steps` 5 instead of the book's budget. Predict: what will the
# convergence check print, and what would the test table of this detector be worth?
#
# ````{admonition} Solution
# :class: dropdown
#
# The check prints `NOT CONVERGED`: five steps of 32 frames barely move the weights from
# their random start, so the detector's fake probability hardly depends on its input. Its
# validation EER stays near chance (0.5) and its validation loss near $\ln 2 \approx
# 0.693$, the cross entropy of a coin flip. A test table of this detector would measure
# nothing: on a few test frames some EERs can land far from 50 % by chance. That is why
# every chapter that reads trained runs lists first whether they converged, and marks a
# detector with an unconverged seed in every table.
#
# ```python
# ((_, c),) = train.read_config(
#     protocol_file,
#     {
#         **overrides,
#         **here,
#         "progress": False,
#         "max_steps": 5,
#         "eval_test": False,
#     },
# )
# m = train.train_one(c, Path(results_dir) / "exercises" / "steps5", seed=0)
# print(runs.convergence_note(m))
# ```
# ````

# %% tags=["remove-cell"]
# Exercise 2: the solution above, run in quick builds (the chapter's run) with a check.
if quick and run_name == book.run_matrix()["chapter_run"]:
    ((_, c),) = train.read_config(
        protocol_file,
        {
            **overrides,
            **here,
            "progress": False,
            "max_steps": 5,
            "eval_test": False,
        },
    )
    m = train.train_one(c, Path(results_dir) / "exercises" / "steps5", seed=0)
    print(runs.convergence_note(m))
    assert m["steps"] <= 5, m["steps"]
