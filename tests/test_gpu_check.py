"""benchmarks/gpu_check.py (``make gpu-check``): it runs its checks only where CUDA is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def test_without_cuda_it_says_so_and_exits_0():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "skipped, no CUDA" in proc.stdout


def test_every_cuda_branch_is_checked():
    """The script checks the six branches the README promises (by their check functions)."""
    text = SCRIPT.read_text()
    for check in ("check_packets", "check_channels_last", "check_amp",
                  "check_torchrun_train", "check_detect_evaluate", "check_scoring"):  # fmt: skip
        assert f"def {check}(" in text and f"{check}(" in text.split("def main")[1]
    assert '"--nproc-per-node", "1"' in text and "device=cuda" in text


@pytest.mark.slow
def test_the_scoring_check_holds_on_the_cpu(mini_root, monkeypatch):
    """check_scoring's comparisons run (amp is off on the CPU, so they must hold exactly)."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import gpu_check

    out = gpu_check.check_scoring(mini_root, "cpu", limit=40)
    assert out["score_amp_max_rel_err"] == 0.0 and out["score_amp_ties"] == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_gpu_check_passes_on_this_gpu():
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          cwd=REPO, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
