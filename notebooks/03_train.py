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
# and the overrides leave out takes its default from `gpwave.train.TrainConfig`.
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

from gpwave import book, evaluate, models, train

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

# %%
if quick:
    overrides = {**overrides, **book.run_matrix()["quick"]}
here = {"data_dir": str(data_dir), **({"store_dir": str(store_dir)} if store_dir else {})}
((_, cfg),) = train.read_config(protocol_file, {**overrides, **here, "progress": False})
out = Path(results_dir) / "runs" / run_name
pd.Series(cfg.to_dict()).to_frame("value")

# %% [markdown]
# ## Training, one run per seed
#
# Adam with the paper's defaults, cross entropy, real speech against the training
# generator; the checkpoint with the lowest validation EER is kept as `best.pt`.

# %%
metrics = {}
for seed in cfg.seeds:
    metrics[seed] = train.train_one(cfg, out / f"seed{seed}", seed=seed)
    m = metrics[seed]
    print(
        f"seed {seed}: {m['n_parameters']:,} parameters, {m['n_train_frames']} training frames, "
        f"best epoch {m['best']['epoch']} (validation EER {m['best']['val_eer']:.3f}), "
        f"{m['train_seconds']:.0f} s"
    )
    print("  " + train.convergence_note(m))

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
# continuous fake probability, accuracy at 0.5, 95 % bootstrap intervals over utterances;
# `pooled_unseen` pools every generator except the training one. The table of each seed
# is `seed<k>/test_table.csv`; below, the mean ± standard deviation over seeds.

# %%
tables = evaluate.load_seed_tables(out, seeds=cfg.seeds)
summary = evaluate.aggregate_seeds(tables)
evaluate.save_table(summary, out / "test_summary")
print(f"{int(summary['n_frames'].max())} test frames in the largest row")

# %% tags=["hide-input"]
display(summary.round(3))

# %% [markdown]
# ## Throughput
#
# Training frames per second (one-second frames, all epochs) and inference speed of the
# last seed's best checkpoint in seconds of audio per second, on this run's device. On a
# GPU node these are the numbers to compare.

# %% tags=["hide-input"]
first = metrics[cfg.seeds[0]]
detector = models.Detector.load(out / f"seed{cfg.seeds[-1]}" / "best.pt")
speed = {
    "device": first["device"],
    "training frames/s": first["n_train_frames"] * len(first["history"]) / first["train_seconds"],
    "inference audio s/s": evaluate.inference_speed(detector, n_frames=4 if quick else 64),
}
pd.Series(speed).to_frame(run_name).to_json(out / "throughput.json")
display(pd.Series(speed).to_frame(run_name))
