"""The EER bootstrap of every table: the old loop of resamples vs the vectorised one.

The loop draws one resample of whole utterances at a time and computes its EER
(:func:`gpwave.metrics.group_bootstrap`, what ``eer_ci`` did before); the vectorised
version (:func:`gpwave.metrics.bootstrap_eers`) weighs the frames of every resample at
once, with numpy on the CPU and torch on CUDA where there is one. Both draw the same
resamples and, on the CPU, give the same EERs bit for bit (checked here too).

Run: ``python benchmarks/bench_bootstrap.py [--frames 3000] [--boot 1000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gpwave import metrics


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--per-utterance", type=int, default=6, help="frames per utterance")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, args.frames)
    s = rng.normal(1.5 * y, 1.0)
    groups = np.arange(args.frames) // args.per_utterance
    loop = metrics.group_bootstrap(y, groups, lambda i: metrics.eer(y[i], s[i]), args.boot)
    assert (np.asarray(loop) == metrics.bootstrap_eers(y, [s], groups, args.boot)[0]).all()
    t_loop = best_of(
        lambda: metrics.group_bootstrap(y, groups, lambda i: metrics.eer(y[i], s[i]), args.boot)
    )
    t_vec = best_of(lambda: metrics.bootstrap_eers(y, [s], groups, args.boot))
    line = (
        f"EER bootstrap, {args.frames} frames, {args.boot} resamples: "
        f"loop {t_loop * 1e3:.0f} ms, vectorised (numpy, CPU) {t_vec * 1e3:.0f} ms "
        f"({t_loop / t_vec:.1f}x)"
    )
    if torch.cuda.is_available():
        metrics.bootstrap_eers(y, [s], groups, args.boot, device="cuda")  # warm-up
        t_gpu = best_of(lambda: metrics.bootstrap_eers(y, [s], groups, args.boot, device="cuda"))
        line += f", torch on {torch.cuda.get_device_name(0)} {t_gpu * 1e3:.0f} ms"
    print(line)


if __name__ == "__main__":
    main()
