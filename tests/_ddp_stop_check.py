"""Run under torchrun (2 CPU processes): ranks that would judge validation differently.

argv: a training config (YAML), an output folder. ``train._validate`` is replaced so that
rank 0's validation EER improves every epoch while rank 1's gets worse: a rank deciding
early stopping from its own numbers would stop after two epochs while the other goes on
(and waits for it forever). Each rank writes the epochs it trained to ``rank<r>.json``.
"""

import json
import sys
from pathlib import Path

import torch.distributed as tdist

from gpwave import train

((_, cfg),) = train.read_config(sys.argv[1])
out = Path(sys.argv[2])
calls = {"n": 0}


def _validate(model, frames, batch=64, workers=0):
    calls["n"] += 1
    rank = tdist.get_rank()
    eer = 0.4 - 0.1 * calls["n"] if rank == 0 else 0.1 * calls["n"]
    return {"val_loss": eer, "val_acc": 1 - eer, "val_eer": eer}


train._validate = _validate
epochs = []
train.train_one(cfg, out / "seed0", seed=0, callback=lambda e, m: epochs.append(e))
(out / f"rank{tdist.get_rank()}.json").write_text(json.dumps(epochs))
tdist.destroy_process_group()
