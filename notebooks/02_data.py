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
# # What is in the data
#
# A data set for `gpwave` is a folder of letter-prefixed folders: `A_ljspeech` holds real
# recordings, every other `<LETTER>_<name>` folder the output of one generator (the
# {term}`folder codes`). This
# chapter shows what the folders hold, how files become one-second frames, how frames are
# split into train, validation and test sets **by utterance**, and what real and
# generated versions of the same sentence sound like.

# %% tags=["hide-input"]
import os

import matplotlib.pyplot as plt
from IPython.display import HTML, display

from gpwave import data, frames, train, widgets

# %% tags=["parameters", "hide-input"]
data_dir = os.path.join(os.environ.get("GPWAVE_DATA", "data"), "wavefake-mini")
results_dir = "results"
quick = False
protocol_file = "configs/mini.yaml"  # the protocol: test-only folders, split (relative to the repo)
example_utterances = ["LJ050-0029", "LJ008-0217"]
store_dir = None  # frame store; None: the one `gpwave data prepare` builds ($GPWAVE_DATA/stores)

# %% [markdown]
# ## Folders, files and durations

# %% tags=["hide-input"]
summary = data.summarize(data_dir)
display(summary.set_index("folder"))

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Seconds of audio per folder (log scale). Real speech and MelGAN dominate; most generators have a few files.", "name": "fig-seconds-per-folder"}}
fig, ax = plt.subplots(figsize=(8, 4.5))
summary.plot.barh(x="folder", y="seconds", ax=ax, logx=True, legend=False)
ax.set_xlabel("seconds of audio")
ax.invert_yaxis()
fig.tight_layout()

# %% [markdown]
# ## Frames and splits
#
# Each file is cut into non-overlapping windows of one second; a shorter tail is dropped,
# never padded with zeros (fakes are padded to multiples of 256 samples, so zeros would
# be a cue). Utterances, not frames, are assigned to splits, with one seed: all frames
# of a sentence, real or generated, land in the same split. The frames are decoded once
# into a {term}`frame store`. The protocol (the parameter
# `protocol_file`, as for `gpwave train`) trains on real speech against MelGAN and makes
# every other generator's folder test-only; the utterances of those folders are pinned
# to the test split in every folder, the real one included.

# %%
store = frames.protocol_store(protocol_file, data_dir, store_dir)
index = store.index
print(f"{len(store)} frames of {store.frame_length} samples in {store.path}")

# %% tags=["hide-input"]
frames_per_split = index.pivot_table(
    index="folder", columns="split", values="row", aggfunc="count", fill_value=0
)
display(frames_per_split)

# %% [markdown]
# Files that give no frame are reported, not silently lost:

# %% tags=["hide-input"]
print(f"{len(store.skipped)} files skipped")
display(store.skipped)

# %% [markdown]
# ## No sentence in two splits
#
# The generators `O`–`Z` and matching real clips share the utterances LJ050-0029…0033.
# A split by frame would put parts of the same sentence into training and test data, and
# a detector could recognise the sentence instead of the generator. The count of splits
# per utterance below is one for every utterance.

# %% tags=["hide-input"]
splits_per_utterance = index.groupby("utterance")["split"].nunique()
print("utterances:", len(splits_per_utterance))
print("largest number of splits one utterance appears in:", splits_per_utterance.max())
index.groupby("split")["utterance"].nunique().rename("utterances").to_frame()

# %% [markdown]
# ## Listen: one sentence, real and generated
#
# The same sentence as recorded and as re-synthesised by every generator that has it.

# %% tags=["hide-input"]
for utterance in example_utterances:
    caption = f"Sentence {utterance}: the real recording and every generator's version."
    display(HTML(widgets.audio_table(data.utterance_rows(data_dir, utterance), caption=caption)))

# %% [markdown]
# ## What we found

# %% tags=["hide-input"]
from IPython.display import Markdown

from gpwave import findings

((_, protocol),) = train.read_config(protocol_file)
found = findings.data_findings(
    summary, splits_per_utterance, protocol.train_generator, "fbmelgan", quick
)
findings.save(found, results_dir)
display(Markdown(found.markdown()))

# %% [markdown]
# ## Exercises
#
# Each exercise changes one setting of this chapter. Write down your prediction first,
# then run the code in a cell at the end of the notebook (it uses the chapter's variables,
# so run the notebook first) and compare. Each takes seconds on a laptop CPU. The
# solutions are collapsed: click **Solution** to open one.

# %% [markdown]
# ### Exercise 1: another split seed
#
# Split the same frames with `split_seed = 1` instead of 0 (a key of the protocol, as
# `gpwave train configs/mini.yaml --set split_seed=1` would set it). Predict: which counts of the table
# *Frames and splits* change, which stay the same, and can an utterance now land in two
# splits?
#
# ````{admonition} Solution
# :class: dropdown
#
# The train, validation and test counts of `ljspeech` and `melgan` change: the split is a
# seeded hash of the utterance id (`gpwave.data.split_of`), so another seed draws another
# 80/10/10 set of *utterances*, and each frame follows its utterance. The frame counts
# are not exactly 80/10/10, because utterances differ in length, and they differ from
# seed to seed. The test-only folders stay entirely in test, and so do the real frames of
# the utterances they share (pinned by the protocol, whatever the seed). No utterance is
# in two splits with any seed: the largest count printed below is 1.
#
# ```python
# ((_, cfg1),) = train.read_config(
#     protocol_file, {"split_seed": 1, "data_dir": str(data_dir)}
# )
# by_seed1 = index.assign(
#     split=data.assign_splits(index, frames.data_config(cfg1))
# )
# display(
#     by_seed1.pivot_table(
#         index="folder",
#         columns="split",
#         values="row",
#         aggfunc="count",
#         fill_value=0,
#     )
# )
# print(
#     "most splits per utterance:",
#     by_seed1.groupby("utterance")["split"].nunique().max(),
# )
# ```
# ````

# %% tags=["remove-cell"]
# Exercise 1: the solution above, run in quick builds with a check of its result.
if quick:
    ((_, cfg1),) = train.read_config(protocol_file, {"split_seed": 1, "data_dir": str(data_dir)})
    by_seed1 = index.assign(split=data.assign_splits(index, frames.data_config(cfg1)))
    display(
        by_seed1.pivot_table(
            index="folder",
            columns="split",
            values="row",
            aggfunc="count",
            fill_value=0,
        )
    )
    print(
        "most splits per utterance:",
        by_seed1.groupby("utterance")["split"].nunique().max(),
    )
    assert by_seed1.groupby("utterance")["split"].nunique().max() == 1

# %% [markdown]
# ### Exercise 2: what a split by frame would leak
#
# Assign every *frame* to train, validation or test at random (80/10/10), as the
# reference implementation did, instead of every utterance. Predict: what share of the
# utterances would have frames in more than one split?
#
# ````{admonition} Solution
# :class: dropdown
#
# Most of them. An utterance yields several frames (one per second, in the real folder
# and in every generator's folder that re-synthesised it), and each frame draws its split
# independently, so only utterances with one or two frames have a fair chance to stay in
# one split. The exact share depends on the random draw and the data set; on the mini
# benchmark it is well over half. A detector tested on such a split has heard the test
# sentences in training (other seconds, or the real version of a fake one) and can
# recognise the sentence rather than the generator. This is why gpwave splits by
# utterance, and why the chapter on generalization calls the EERs of the released
# models, trained on a split by frame, an optimistic bound.
#
# ```python
# import numpy as np
#
# rng = np.random.default_rng(0)
# random_split = rng.choice(
#     ["train", "val", "test"], size=len(index), p=[0.8, 0.1, 0.1]
# )
# n_splits = (
#     index.assign(split=random_split).groupby("utterance")["split"].nunique()
# )
# print(
#     n_splits.value_counts()
#     .sort_index()
#     .rename("utterances by number of splits")
# )
# print(
#     f"in more than one split: {(n_splits > 1).mean():.0%} of {len(n_splits)} utterances"
# )
# ```
# ````

# %% tags=["remove-cell"]
# Exercise 2: the solution above, run in quick builds with a check of its result.
if quick:
    import numpy as np

    rng = np.random.default_rng(0)
    random_split = rng.choice(["train", "val", "test"], size=len(index), p=[0.8, 0.1, 0.1])
    n_splits = index.assign(split=random_split).groupby("utterance")["split"].nunique()
    print(n_splits.value_counts().sort_index().rename("utterances by number of splits"))
    print(f"in more than one split: {(n_splits > 1).mean():.0%} of {len(n_splits)} utterances")
    assert (n_splits > 1).mean() > 0.5, (n_splits > 1).mean()
