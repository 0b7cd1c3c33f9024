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
# that see wide frequency context. The ablation (`dcnn_nodil`, as in the paper) drops
# that dilated block entirely and changes nothing else; the linear head then reads the
# convolutional features directly. This chapter compares the two trained models on every test folder
# and plays test frames on which the two disagree, both ways.

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
from pathlib import Path

import pandas as pd
from IPython.display import HTML, display

from gpwave import ablation, hub, models, report, train, widgets
from gpwave.config import resolve_device
from gpwave.frames import protocol_store
from gpwave.runs import Run, runs_overview

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
# EER and accuracy in % per test folder, mean over seeds, with dilation (`run`) and
# without (`ablation_run`). The CPU build trains both variants on one seed, seed 0; the
# paired difference below compares the two on that seed.

# %% tags=["hide-input"]
both = pd.concat(
    [
        report.aggregate_seeds(report.load_seed_tables(Run(results_dir, name).dir)).assign(run=name)
        for name in (run, ablation_run)
    ],
    ignore_index=True,
)
report.save_table(both, Path(results_dir) / "dilation" / "ablation")
ablation_table = both.pivot_table(
    index="generator", columns="run", values=["eer_mean", "eer_std", "accuracy_mean"], sort=False
)
from IPython.display import Markdown

from gpwave import findings

people = pd.DataFrame(
    {
        "folder": ablation_table.index,
        "EER % with": findings.pct_text(ablation_table[("eer_mean", run)]),
        "EER % without": findings.pct_text(ablation_table[("eer_mean", ablation_run)]),
        "accuracy % with": findings.pct_text(ablation_table[("accuracy_mean", run)]),
        "accuracy % without": findings.pct_text(ablation_table[("accuracy_mean", ablation_run)]),
    }
)
display(Markdown(people.to_markdown(index=False, disable_numparse=True)))

# %% [markdown]
# Did both variants learn? A comparison of two untrained networks says nothing about
# dilation, so the runs are listed first (best validation EER on the training generator;
# "not converged" above 0.2).

# %% tags=["hide-input"]
overview = runs_overview(results_dir, [run, ablation_run])
said = overview.groupby("run")["converged"].all().map({True: "converged", False: "NOT CONVERGED"})
display(Markdown(", ".join(f"`{r}` {v}" for r, v in said.items())
                 + " (the runs' overview is in [Generalization](04_generalization.ipynb))."))  # fmt: skip
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
store = protocol_store(protocol_file, data_dir, store_dir)
if quick:
    limit_test = 8
((_, protocol),) = train.read_config(protocol_file)
seen = protocol.train_generator
seeds = sorted(set(overview.loc[overview["run"] == run, "seed"])
               & set(overview.loc[overview["run"] == ablation_run, "seed"]))  # fmt: skip
pairs = {
    s: tuple(
        hub.resolve(Run(results_dir, name).seed(s).best, resolve_device(device))
        for name in (run, ablation_run)
    )
    for s in seeds
}
paired, scored = ablation.paired_ablation(
    pairs, store, seen, limit=limit_test, n_boot=100 if quick else 1000
)
paired = paired.rename(columns={"eer_a": run, "eer_b": ablation_run})
report.save_table(paired, Path(results_dir) / "dilation" / "paired_difference")
display(
    Markdown(
        pd.DataFrame(
            {
                "seed": paired["seed"],
                "frames": paired["test_frames"],
                "EER % with": findings.pct_text(paired[run]),
                "EER % without": findings.pct_text(paired[ablation_run]),
                "difference (points)": findings.pct_text(paired["difference"]),
                "95 % CI": [
                    f"{a} to {b}"
                    for a, b in zip(
                        findings.pct_text(paired["ci_low"]),
                        findings.pct_text(paired["ci_high"]),
                        strict=True,
                    )
                ],
            }
        ).to_markdown(index=False, disable_numparse=True)
    )
)

# %% [markdown]
# ## Frames the dilated model gets right and the ablation gets wrong
#
# Both models (seed `seed`) score every test frame; the frames that the DCNN with
# dilation classifies correctly (fake probability on the right side of 0.5) and the DCNN
# without dilation does not are sorted by how confidently the ablation is wrong. Up to
# `max_examples` of them are written as clips under `results_dir/dilation/examples/` and
# played below, with both models' fake probabilities.

# %%
frames, a, b = scored[seed]
disagree = ablation.disagreements(a, b, frames)
examples = ablation.export_disagreements(
    disagree, store, Path(results_dir) / "dilation" / "examples", n=max_examples
)
n_frames = len(frames)
print(f"{n_frames} test frames; {len(disagree)} right with dilation and wrong without it")


# %% tags=["hide-input"]
rows = ablation.listening_rows(
    examples, store.sample_rate, {"with dilation": "score_a", "without": "score_b"}
)
caption = "Fake probability of each model (threshold 0.5); ljspeech frames are real."
if rows:
    display(HTML(widgets.audio_table(rows, caption=caption)))
else:
    print("No test frame is right with dilation and wrong without it.")

# %% [markdown]
# ## Frames the ablation gets right and the dilated model gets wrong
#
# The same, the other way round: frames that only the model *without* dilation gets
# right. Both lists together show that the two networks make different mistakes; the
# paired difference above is their net balance.

# %% tags=["hide-input"]
reverse = ablation.disagreements(b, a, frames)
print(f"{n_frames} test frames; {len(reverse)} right without dilation and wrong with it")
back = ablation.export_disagreements(
    reverse, store, Path(results_dir) / "dilation" / "examples_reverse", n=max_examples
)
rows = ablation.listening_rows(  # here the ablation is model a
    back, store.sample_rate, {"with dilation": "score_b", "without": "score_a"}
)
if rows:
    display(HTML(widgets.audio_table(rows, caption=caption)))

# %% [markdown]
# ## What we found

# %% tags=["hide-input"]
from IPython.display import Markdown

from gpwave import findings

found = findings.ablation_findings(paired[paired["seed"] == seed], overview, seen, quick)
findings.save(found, results_dir)
display(Markdown(found.markdown()))

# %% [markdown]
# ## Exercises
#
# Each exercise changes one argument of this chapter. Write down your prediction first,
# then run the code in a cell at the end of the notebook (it uses the chapter's variables,
# so run the notebook first) and compare. Each takes seconds on a laptop CPU. The
# solutions are collapsed: click **Solution** to open one.

# %% [markdown]
# ### Exercise 1: dilations and the receptive field
#
# Build an untrained DCNN for one second of sym5 level-8 packets with the default
# `dilations=(1, 2, 4)` and with `dilations=(1, 1, 1)` (an argument of
# `models.build_model`). Predict: which one has more parameters in its dilated block, and
# how many of the frequency positions that reach the dilated block can one of its outputs
# see in each case?
#
# ````{admonition} Solution
# :class: dropdown
#
# The dilated block has exactly the same number of parameters in both: dilation spaces
# the taps of a kernel apart, it does not add any. (The whole networks differ slightly,
# in the final linear layer only, because the dilated convolutions shrink their output.)
# What changes is the receptive field over frequency. After the three poolings of the
# convolution stack, 256 packets become 32 frequency positions of about 344 Hz each. The
# block's kernels 3, 5 and 7 with dilations 1, 2 and 4 span
# $1 + 2 \cdot 1 + 4 \cdot 2 + 6 \cdot 4 = 35$ positions, more than the 32 there are: one
# output sees the whole band from 0 to 11 kHz. With dilations 1, 1, 1 they span
# $1 + 2 + 4 + 6 = 13$ positions, about 4.5 kHz. The code counts the positions whose
# input changes the central output (gradients are exactly zero outside the receptive
# field). Wide frequency context at no cost in parameters lets the detector combine
# evidence from distant bands in one output. The chapter's ablation `dcnn_nodil` goes further and drops the
# dilated block altogether.
#
# ```python
# import torch
#
# shape = (1, 256, 95)  # channels, packets, time steps: 1 s, sym5, level 8
# for dil in [(1, 2, 4), (1, 1, 1)]:
#     net = models.build_model("dcnn", shape, dilations=dil).eval()
#     x = torch.randn(2, *shape).transpose(2, 3)
#     h = net.cnn(x).transpose(1, 2)  # time steps as channels
#     h = h.detach().requires_grad_()
#     out = net.dil(h)
#     out[0, :, :, out.shape[-1] // 2].sum().backward()
#     reach = int((h.grad[0].abs().sum(dim=(0, 1)) > 0).sum())
#     print(
#         f"dilations {dil}: {models.count_parameters(net.dil):,} parameters in the block, "
#         f"one output sees {reach} of {h.shape[-1]} frequency positions"
#     )
# ```
# ````

# %% tags=["remove-cell"]
# Exercise 1: the solution above, run in quick builds with a check of its result.
if quick:
    import torch

    shape = (1, 256, 95)  # channels, packets, time steps: 1 s, sym5, level 8
    for dil in [(1, 2, 4), (1, 1, 1)]:
        net = models.build_model("dcnn", shape, dilations=dil).eval()
        x = torch.randn(2, *shape).transpose(2, 3)
        h = net.cnn(x).transpose(1, 2)  # time steps as channels
        h = h.detach().requires_grad_()
        out = net.dil(h)
        out[0, :, :, out.shape[-1] // 2].sum().backward()
        reach = int((h.grad[0].abs().sum(dim=(0, 1)) > 0).sum())
        print(
            f"dilations {dil}: {models.count_parameters(net.dil):,} parameters in the block, "
            f"one output sees {reach} of {h.shape[-1]} frequency positions"
        )
    assert dil == (1, 1, 1) and reach < h.shape[-1], (reach, h.shape)

# %% [markdown]
# ### Exercise 2: does dilation ever hurt?
#
# The examples above are frames the model with dilation gets right and the ablation gets
# wrong. Swap the two score arrays of `scored[seed]` in `ablation.disagreements` and in
# `report.paired_table`. Predict: what does the swapped paired table show, and does the
# count of swapped disagreements tell you anything the table does not?
#
# ````{admonition} Solution
# :class: dropdown
#
# The swapped paired table is the mirror image of the chapter's: `difference` changes
# sign and the interval is mirrored ($[-\text{high}, -\text{low}]$), because the same seed
# resamples the same utterances; which model is "A" is only a sign convention. The
# counts add what the table hides: two networks trained differently make different
# mistakes, so frames can go either way, and the EER difference is the *net* balance of
# both kinds. How many frames go each way depends on the trained runs and on the seed:
# in one full-budget pair of seed-0 runs 33 of 565 test frames went the dilated model's
# way and 5 the ablation's; in the book build this page comes from, the count above is
# far smaller, and a handful of frames either way is no evidence for or against dilation.
# Listening to both lists (`ablation.export_disagreements`) is a way to hear what each
# model relies on.
#
# ```python
# frames, a, b = scored[seed]
# print(
#     f"right with dilation only: {len(ablation.disagreements(a, b, frames))}, "
#     f"right without it only: {len(ablation.disagreements(b, a, frames))}"
# )
# swapped = report.paired_table(
#     frames, b, a, seen, n_boot=100 if quick else 1000, seed=seed
# )
# display((100 * swapped.set_index("test_frames")).round(1))
# ```
# ````

# %% tags=["remove-cell"]
# Exercise 2: the solution above, run in quick builds with a check of its result.
if quick:
    frames, a, b = scored[seed]
    print(
        f"right with dilation only: {len(ablation.disagreements(a, b, frames))}, "
        f"right without it only: {len(ablation.disagreements(b, a, frames))}"
    )
    swapped = report.paired_table(frames, b, a, seen, n_boot=100 if quick else 1000, seed=seed)
    display((100 * swapped.set_index("test_frames")).round(1))
    straight = report.paired_table(frames, a, b, seen, n_boot=100 if quick else 1000, seed=seed)
    assert (swapped["difference"] + straight["difference"]).abs().max() < 1e-12
