"""A tiny separable WaveFake-shaped tree for detector tests: fakes carry a tone fingerprint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from _signals import chirp, noise, tone, write_wav

FINGERPRINTS = {"A_ljspeech": None, "B_melgan": 7000.0, "C_hifigan": 9500.0}


def make_detector_tree(root: Path, n_utts: int = 16, seconds: float = 1.0) -> Path:
    """Real: chirp + noise; each generator adds its own faint tone (its fingerprint).

    C_hifigan re-synthesises other utterances (LJ002-*) than A and B share (LJ001-*).
    """
    for k, (folder, hz) in enumerate(FINGERPRINTS.items()):
        for j in range(n_utts if k < 2 else 6):
            x = 0.5 * chirp(150 + 40 * j, 3000, seconds) + noise(seconds, seed=1000 * k + j)
            if hz is not None:
                x = x + tone(hz, seconds, amp=0.05)
            name = (
                f"LJ00{1 if k < 2 else 2}-{j:04d}"
                + ("" if folder.startswith("A_") else "_gen")
                + ".wav"
            )
            write_wav(root / folder / name, np.clip(x, -1, 1))
    return root


def base_config(root: Path, store: Path, **kw) -> dict:
    cfg = {
        "data_dir": str(root),
        "store_dir": str(store),
        "seconds": 0.25,
        "split": [0.5, 0.25, 0.25],
        "model": "linear",
        "epochs": 3,
        "batch_size": 16,
        "lr": 0.01,
        "progress": False,
        "n_boot": 50,
        "only_test_folders": ["C_hifigan"],
    }
    cfg.update(kw)
    return cfg


class MeanDetector(torch.nn.Module):
    """A toy detector: the fake log-odds is ``sign`` times the frame's mean sample."""

    def __init__(self, sign: float = 1.0):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.sign = sign

    def fake_log_odds(self, x):
        return self.sign * x.mean(-1)
