"""Run under torchrun (gloo, CPU): the test table of a run, scored by every rank.

argv: a training config (YAML), the output folder. Each rank builds the detector from
its own seed (rank 1's weights differ), so the table equals one process's only if the
lead's weights are broadcast; scoring batches are 8 frames, so both ranks score several.
Writes ``table.csv`` (lead) and ``scores<rank>.npy`` (every rank's gathered scores).
"""

import sys
from pathlib import Path

import numpy as np
import torch

from gpwave import config, dist, evaluate, frames
from gpwave.models import Detector

cfg = config.TrainConfig.from_dict(config.load_yaml(Path(sys.argv[1])))
out = Path(sys.argv[2])
d = dist.setup("cpu")
store = frames.open_store(cfg, d, progress=False)
torch.manual_seed(d.rank)
det = Detector(cfg.feature_config, cfg.model, cfg.n_samples).eval()
evaluate.BATCH_SIZE["cpu"] = 8
table = evaluate.training_test_table(det, store, cfg, 0, "cpu", d)
_, scores = evaluate.split_scores(det, store, "test", cfg.test_generators, 0,
                                  limit=cfg.limit_test, d=d)  # fmt: skip
np.save(out / f"scores{d.rank}.npy", scores)
if d.lead:
    table.to_csv(out / "table.csv", index=False)
else:
    assert table is None
dist.teardown()
