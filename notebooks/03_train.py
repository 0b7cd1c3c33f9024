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
# This notebook trains one detector from its parameters: real speech against one
# generator, for each seed, then evaluates every seed's best checkpoint on every test
# folder. Everything it writes lands in `results_dir/runs/<run_name>/seed_<k>/`:
# `best.pt`, `last.pt`, `config.yaml`, `metrics.json` and `generalization.csv`.
#
# The book runs it several times (DCNN on wavelet packets and on the STFT, the DCNN
# without dilation, the LCNN, GMMs on LFCC and MFCC, a linear probe); this page shows
# the DCNN on wavelet packets. The paper-scale run on a GPU node is the same notebook:
#
# ```bash
# papermill notebooks/03_train.ipynb out.ipynb -p data_dir /path/to/wavefake -p device cuda \
#     -p protocol_file configs/wavefake.yaml -p train_generator fbmelgan \
#     -p batch_size 128 -p cache_features False -y "seeds: [0, 1, 2, 3, 4]"
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
import yaml
from IPython.display import display

from gpwave import data, evaluate, models, train

# %% tags=["parameters", "hide-input"]
data_dir = os.path.join(os.environ.get("GPWAVE_DATA", "data"), "wavefake-mini")
results_dir = "results"
quick = False
protocol_file = "configs/mini.yaml"  # gpwave train config: test-only folders, split, ...
run_name = "dcnn_packets"
train_generator = "melgan"  # the paper: "fbmelgan" (full-band MelGAN) on full WaveFake
feature = "packets"  # packets | stft | lfcc | mfcc
wavelet = "sym5"
level = 8
model = "dcnn"  # dcnn | dcnn_nodil | dcnn_nodrop | lcnn | gmm | linear
epochs = 10
seeds = [0, 1, 2]
device = "cpu"  # "cuda" on a GPU node; "auto" picks CUDA when present
batch_size = 32  # ~660 mini training frames; 128 (the paper) on full WaveFake
learning_rate = 4e-4
weight_decay = 1e-3
limit_train = None  # at most this many training frames per class; None: all
limit_val = None
cache_features = True  # keep training features in memory (off for full WaveFake)
limit_test = None  # test frames per class scored after training; None: every test frame
n_boot = 1000  # bootstrap resamples of the confidence intervals
store_dir = None  # frame store; None: results_dir/store

# %%
if quick:
    epochs, seeds, limit_train, limit_val, limit_test, n_boot = 1, seeds[:1], 8, 4, 8, 20
out = Path(results_dir) / "runs" / run_name
protocol = yaml.safe_load(Path(protocol_file).read_text())
cfg = train.TrainConfig.from_dict(
    {
        **protocol,
        "data_dir": str(data_dir),
        "store_dir": str(store_dir or Path(results_dir) / "store"),
        "train_generator": train_generator,
        "feature": {"kind": feature, "wavelet": wavelet, "level": level},
        "model": model,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": learning_rate,
        "weight_decay": weight_decay,
        "seeds": list(seeds),
        "device": device,
        "limit_train": limit_train,
        "limit_val": limit_val,
        "cache_features": cache_features,
        "n_boot": n_boot,
        "eval_test": False,  # scored below, on `limit_test` frames per class
        "progress": False,
    }
)
pd.Series(cfg.to_dict()).to_frame("value")

# %% [markdown]
# ## Training, one run per seed
#
# Adam with the paper's defaults, cross entropy, real speech against the training
# generator; the checkpoint with the lowest validation EER is kept as `best.pt`.

# %%
metrics = {}
for seed in seeds:
    metrics[seed] = train.train_one(cfg, out / f"seed{seed}", seed=seed)
    m = metrics[seed]
    print(
        f"seed {seed}: {m['n_parameters']:,} parameters, {m['n_train_frames']} training frames, "
        f"best epoch {m['best']['epoch']} (validation EER {m['best']['val_eer']:.3f}), "
        f"{m['train_seconds']:.0f} s"
    )

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
# Each seed's best checkpoint scores the test frames of every folder (real frames against
# each generator's): EER from the continuous fake probability, accuracy at 0.5, 95 %
# bootstrap intervals over utterances; `pooled_unseen` pools every generator except the
# training one. The table of each seed lands in `seed<k>/test_table.csv`; below, the
# mean ± standard deviation over seeds.

# %%
store = train.protocol_store(cfg.to_dict(), data_dir, cfg.store_dir)
test_rows = data.select_frames(store, "test", balance=False, limit=limit_test)
test_frames = store.index[store.index["row"].isin(test_rows)]
tables = {}
for seed in seeds:
    detector = models.Detector.load(
        out / f"seed{seed}" / "best.pt", map_location=metrics[seed]["device"]
    )
    scores = evaluate.score_frames(detector, store, test_frames["row"].to_numpy())
    tables[seed] = evaluate.table_from_scores(
        test_frames, scores, seen=[train_generator], n_boot=n_boot, seed=seed
    )
    evaluate.save_table(tables[seed], out / f"seed{seed}" / "test_table")
summary = evaluate.aggregate_seeds(tables)
evaluate.save_table(summary, out / "test_summary")
print(f"{len(test_frames)} test frames")

# %% tags=["hide-input"]
display(summary.round(3))

# %% [markdown]
# ## Throughput
#
# Training frames per second (one-second frames, all epochs) and inference speed of the
# last seed's best checkpoint in seconds of audio per second, on this run's device. On a
# GPU node these are the numbers to compare.

# %% tags=["hide-input"]
first = metrics[seeds[0]]
speed = {
    "device": first["device"],
    "training frames/s": first["n_train_frames"] * len(first["history"]) / first["train_seconds"],
    "inference audio s/s": evaluate.inference_speed(detector, n_frames=4 if quick else 64),
}
pd.Series(speed).to_frame(run_name).to_json(out / "throughput.json")
display(pd.Series(speed).to_frame(run_name))
