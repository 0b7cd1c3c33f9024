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
# papermill notebooks/03_train.ipynb out.ipynb -p data_dir /path/to/wavefake -p device cuda
# ```

# %% tags=["hide-input"]
import json
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display

from gpwave import data, evaluate, models, train

plt.ioff()

# %% tags=["parameters"]
data_dir = os.path.join(os.environ.get("GPWAVE_DATA", "data"), "wavefake-mini")
results_dir = "results"
quick = False
run_name = "dcnn_packets"
train_generator = "melgan"  # the paper: "fbmelgan" (full-band MelGAN) on full WaveFake
feature = "packets"  # packets | stft | lfcc | mfcc
wavelet = "sym5"
level = 8
model = "dcnn"  # dcnn | dcnn_nodil | dcnn_nodrop | lcnn | gmm | linear
epochs = 10
seeds = [0, 1, 2]
device = "cpu"  # "cuda" on a GPU node; "auto" picks CUDA when present
batch_size = 128
learning_rate = 4e-4
weight_decay = 1e-3
limit_train = None  # cap on training frames per class; None: all
num_workers = 0

# %%
if quick:
    epochs, seeds, limit_train = 1, seeds[:1], 64
out = Path(results_dir) / "runs" / run_name
cfg = train.TrainConfig(
    data_dir=str(data_dir),
    train_generators=[train_generator],
    feature=feature,
    wavelet=wavelet,
    level=level,
    model=model,
    epochs=epochs,
    batch_size=batch_size,
    learning_rate=learning_rate,
    weight_decay=weight_decay,
    limit_train=limit_train,
    device=device,
    num_workers=num_workers,
)
display(cfg)

# %% [markdown]
# ## Training, one run per seed

# %%
metrics = {}
for seed in seeds:
    start = time.perf_counter()
    metrics[seed] = train.train_one(cfg, out / f"seed_{seed}", seed=seed)
    print(f"seed {seed}: {time.perf_counter() - start:.0f} s")

# %% tags=["hide-input"]
history = pd.concat(
    [pd.DataFrame(m["history"]).assign(seed=s) for s, m in metrics.items()], ignore_index=True
)
display(history)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Training loss and validation EER per epoch, one line per seed.", "name": "fig-training-curves"}}
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for seed, h in history.groupby("seed"):
    axes[0].plot(h["epoch"], h["train_loss"], marker="o", label=f"seed {seed}")
    axes[1].plot(h["epoch"], 100 * h["val_eer"], marker="o", label=f"seed {seed}")
axes[0].set(xlabel="epoch", ylabel="training loss")
axes[1].set(xlabel="epoch", ylabel="validation EER (%)")
axes[1].legend()
fig.tight_layout()
display(fig)

# %% [markdown]
# ## Evaluation on every test folder
#
# Each seed's best checkpoint scores the test frames of every folder: EER from the
# continuous fake probability, accuracy at 0.5, 95 % bootstrap intervals over utterances.

# %%
tables = []
for seed in seeds:
    ckpt = out / f"seed_{seed}" / "best.pt"
    table = evaluate.evaluate_checkpoint(ckpt, data_dir)
    table.to_csv(out / f"seed_{seed}" / "generalization.csv", index=False)
    tables.append(table)
summary = evaluate.aggregate_seeds(tables)
summary.to_csv(out / "generalization.csv", index=False)
display(summary)

# %% [markdown]
# ## Throughput
#
# Frames per second of inference with the best checkpoint of the first seed on this
# run's device (on a GPU node this is the number to compare).

# %%
detector = models.Detector.load(out / f"seed_{seeds[0]}" / "best.pt", map_location=device)
store = data.FrameStore.open(Path(metrics[seeds[0]]["store"]))
rows = data.select_frames(store, "test", limit=64 if quick else 1024)
frames = torch.from_numpy(store.read(rows)).to(device)
with torch.no_grad():
    detector.fake_probability(frames[:8])
    start = time.perf_counter()
    detector.fake_probability(frames)
    seconds = time.perf_counter() - start
throughput = {
    "run": run_name,
    "device": device,
    "frames": len(rows),
    "frames_per_s": len(rows) / seconds,
}
(out / "throughput.json").write_text(json.dumps(throughput))
display(throughput)
