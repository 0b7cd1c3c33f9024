"""Benchmark: ONNX Runtime (Python, CPU) against torch, frames/s for each exported detector.

Each released detector is exported with :func:`gpwave.export.export_detector` (the graph
the book's "Try it" page runs in the browser) and scored on the same batch of random
1 s frames by torch (:meth:`gpwave.models.Detector.fake_log_odds`, the path
``gpwave detect`` takes) and by ONNX Runtime's CPU provider, with the same number of
threads. The median of ``--repeats`` timed runs after one warm-up is printed, with the
largest log-odds difference between the two on that batch.

Run: ``python benchmarks/bench_onnx.py [--frames 64] [--threads 2] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import torch

from gpwave import export
from gpwave.pretrained import PAPER_MODELS


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_model(name: str, frames: np.ndarray, out: Path, threads: int, repeats: int) -> dict:
    path = export.export_detector(name, out)
    det = export._load(name)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = torch.as_tensor(frames)
    t_torch = timed(lambda: det.fake_log_odds(x), repeats)
    t_ort = timed(lambda: sess.run(["log_odds"], {"frames": frames}), repeats)
    diff = np.abs(sess.run(["log_odds"], {"frames": frames})[0] - det.fake_log_odds(x).numpy())
    n = len(frames)
    return {
        "model": name,
        "torch frames/s": round(n / t_torch, 1),
        "onnxruntime frames/s": round(n / t_ort, 1),
        "onnxruntime / torch": round(t_torch / t_ort, 2),
        "max |log-odds diff|": float(f"{diff.max():.2g}"),
        "onnx MB": round(path.stat().st_size / 2**20, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=64, help="1 s frames per batch")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads of both")
    p.add_argument("--repeats", type=int, default=3, help="timed runs (median)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    frames = (np.random.default_rng(0).standard_normal((args.frames, 22050)) * 0.1).astype(
        np.float32
    )
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench_model(n, frames, Path(tmp), args.threads, args.repeats) for n in PAPER_MODELS]
    print(f"{args.frames} random 1 s frames at 22,050 Hz, {args.threads} threads, CPU, "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}")  # fmt: skip
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
