"""Benchmark: DCNN training and inference frames/s on CPU, today's step vs each candidate.

DCNN on sym5 level-8 packets (input (1, 256, 95)), batch 32, Adam, features cached in
memory as the mini protocol trains. Every variant is a separately seeded copy of the same
model; one timed optimiser step of each variant runs per round, rounds interleaved, so a
change of load on a shared machine hits every variant alike: the ratios to ``today`` are
what count. Variants:

* ``today``: the default step (channels-last conv stack, float32).
* ``bf16``: the same step under bfloat16 autocast (``precision: bf16``, oneDNN's bf16
  convolutions on AVX-512 BF16; :func:`gpwave.fitting.step_autocast`).
* ``NCHW``: the conv stack in the contiguous format (the code before channels-last).
* threads: ``today`` and ``bf16`` at 1 and at 2 torch threads (``--threads`` is the default).
* ``torch.compile`` (inductor, C++ on CPU) of both: its compile time (first step) is
  printed on its own; inductor keeps compiled code in its on-disk cache
  (``/tmp/torchinductor_$USER``), so run the benchmark twice to see what a second
  process pays.

Each row also gives the step's achieved GFLOP/s (FLOPs of forward + backward counted by
``torch.utils.flop_counter.FlopCounterMode``) next to the machine's practical peak: the
GFLOP/s of a 2048 x 2048 matmul in float32 and in bfloat16 at the same threads.

Inference: frames/s of ``model.eval()`` under ``torch.inference_mode`` at several batch
sizes, both memory formats. Features: gpwave's batched packets vs ptwt's WaveletPacket
(``benchmarks/bench_transforms.py``), log-magnitude of 32 frames of 1 s.

Run: ``python benchmarks/bench_train.py [--rounds R] [--threads N] [--no-compile]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from bench_transforms import EPS, SR, ptwt_features
from torch.utils.flop_counter import FlopCounterMode

from gpwave.fitting import step_autocast
from gpwave.models import build_model
from gpwave.transforms import FeatureConfig, FeatureExtractor

SHAPE = (1, 256, 95)
CL, NCHW = torch.channels_last, torch.contiguous_format


class Variant:
    """One model + optimiser + step precision; ``step()`` is one timed optimiser step."""

    def __init__(self, name: str, fmt: torch.memory_format, threads: int, **kw: bool):
        torch.manual_seed(0)
        self.name, self.threads = name, threads
        self.model = build_model("dcnn", SHAPE)
        self.model.memory_format = fmt
        self.model.to(memory_format=fmt)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=4e-4, weight_decay=1e-3)
        self.net: Callable = torch.compile(self.model) if kw.get("compile") else self.model
        self.precision = "bf16" if kw.get("bf16") else "fp32"
        self.compile_s: float | None = None
        self.times: list[float] = []

    def step(self, feats: torch.Tensor, idx: torch.Tensor, y: torch.Tensor) -> float:
        """Gather a batch from the feature cache, forward, backward, Adam step; timed."""
        torch.set_num_threads(self.threads)
        start = time.perf_counter()
        with step_autocast("cpu", amp=True, precision=self.precision):
            loss = F.cross_entropy(self.net(feats[idx]).float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return time.perf_counter() - start


def train_variants(threads: int, compile_: bool) -> list[Variant]:
    """Today's step first, then the candidates."""
    other = 1 if threads != 1 else 2
    out = [
        Variant("today (channels_last, fp32)", CL, threads),
        Variant("bf16 autocast", CL, threads, bf16=True),
        Variant("NCHW, fp32", NCHW, threads),
        Variant("NCHW, bf16 autocast", NCHW, threads, bf16=True),
        Variant("today", CL, other),
        Variant("bf16 autocast", CL, other, bf16=True),
    ]
    if compile_:
        out.append(Variant("torch.compile, fp32", CL, threads, compile=True))
        out.append(Variant("torch.compile + bf16", CL, threads, compile=True, bf16=True))
    return out


def step_flops(batch: int) -> int:
    """FLOPs of one forward + backward of the DCNN on a batch (FlopCounterMode)."""
    torch.manual_seed(0)
    model = build_model("dcnn", SHAPE)
    x, y = torch.randn(batch, *SHAPE), torch.zeros(batch, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


def matmul_peak(threads: int, dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """GFLOP/s of an n x n matmul: the practical peak of the CPU's math units."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    ts = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(ts) / 1e9


def bench_training(args: argparse.Namespace) -> None:
    """Interleaved training steps of every variant; prints frames/s, ratios and GFLOP/s."""
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(256, *SHAPE, generator=gen)
    variants = train_variants(args.threads, args.compile)
    for v in variants:  # warm-up; compilation happens here
        idx = torch.randint(0, len(feats), (args.batch,), generator=gen)
        y = torch.randint(0, 2, (args.batch,), generator=gen)
        start = time.perf_counter()
        v.step(feats, idx, y)
        if v.net is not v.model:
            v.compile_s = time.perf_counter() - start
    for _ in range(args.rounds):
        idx = torch.randint(0, len(feats), (args.batch,), generator=gen)
        y = torch.randint(0, 2, (args.batch,), generator=gen)
        for v in variants:
            v.times.append(v.step(feats, idx, y))
    flops = step_flops(args.batch)
    base = statistics.median(variants[0].times)
    print(f"\nTraining step, batch {args.batch}, median of {args.rounds} interleaved rounds; "
          f"{flops / 1e9:.1f} GFLOP per step (forward + backward)")  # fmt: skip
    print(f"{'variant':<30} {'threads':>7} {'frames/s':>9} {'vs today':>9} {'GFLOP/s':>8}")
    for v in variants:
        t = statistics.median(v.times)
        extra = f"   (compile + first step {v.compile_s:.1f} s)" if v.compile_s else ""
        print(f"{v.name:<30} {v.threads:>7} {args.batch / t:9.2f} {base / t:8.2f}x "
              f"{flops / t / 1e9:8.1f}{extra}")  # fmt: skip
    for threads in sorted({args.threads, 1 if args.threads != 1 else 2}):
        fp32, bf16 = (matmul_peak(threads, d) for d in (torch.float32, torch.bfloat16))
        print(f"peak ({threads} thread(s), 2048^2 matmul): float32 {fp32:.0f} GFLOP/s, "
              f"bfloat16 {bf16:.0f} GFLOP/s")  # fmt: skip
    lookup({torch.float32: feats, torch.float16: feats.half()}, args.batch)


def lookup(cache: dict[torch.dtype, torch.Tensor], batch: int) -> None:
    """Cost of gathering one batch from a float32 vs a float16 cache, and cache size."""
    idx = torch.randperm(len(cache[torch.float32]))[:batch]
    for dtype, c in cache.items():
        ts = []
        for _ in range(20):
            start = time.perf_counter()
            c[idx].float()
            ts.append(time.perf_counter() - start)
        mb = c[0].numel() * c.element_size() / 2**20 * 1000
        print(f"gather {batch} from {dtype} cache: {statistics.median(ts) * 1e3:.2f} ms, "
              f"{mb:.0f} MB per 1000 frames")  # fmt: skip


def bench_inference(args: argparse.Namespace) -> None:
    """Eval-mode frames/s at several batch sizes, NCHW vs channels_last, interleaved."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model("dcnn", SHAPE).eval()
    x = torch.randn(max(args.eval_batches), *SHAPE)
    print(f"\nInference (eval, inference_mode), median of {args.rounds} rounds")
    print(f"{'batch':>5} {'NCHW frames/s':>14} {'channels_last':>14} {'ratio':>6}")
    for b in args.eval_batches:
        times: dict[torch.memory_format, list[float]] = {NCHW: [], CL: []}
        with torch.inference_mode():
            for fmt in times:  # warm-up
                model.memory_format = fmt
                model.to(memory_format=fmt)(x[:b])
            for _ in range(max(2, args.rounds // 2)):
                for fmt, ts in times.items():
                    model.memory_format = fmt
                    model.to(memory_format=fmt)
                    start = time.perf_counter()
                    model(x[:b])
                    ts.append(time.perf_counter() - start)
        f_nchw, f_cl = (b / statistics.median(times[f]) for f in (NCHW, CL))
        print(f"{b:>5} {f_nchw:14.2f} {f_cl:14.2f} {f_cl / f_nchw:5.2f}x")


def bench_features(args: argparse.Namespace) -> None:
    """Packet-feature frames/s: gpwave's batched transform vs ptwt's node by node."""
    torch.set_num_threads(args.threads)
    x = 0.1 * torch.randn(args.batch, SR, generator=torch.Generator().manual_seed(0))
    ours = FeatureExtractor(FeatureConfig(wavelet="sym5", level=8, eps=EPS))
    t: dict[str, list[float]] = {"gpwave": [], "ptwt": []}
    fns = {"gpwave": lambda: ours(x), "ptwt": lambda: ptwt_features(x, "sym5", 8)}
    with torch.no_grad():
        for fn in fns.values():
            fn()
        for _ in range(args.rounds):
            for k, fn in fns.items():
                start = time.perf_counter()
                fn()
                t[k].append(time.perf_counter() - start)
    fps = {k: args.batch / statistics.median(v) for k, v in t.items()}
    print(f"\nsym5 level-8 log packet features, {args.batch} x 1 s: gpwave {fps['gpwave']:.1f} "
          f"frames/s, ptwt WaveletPacket {fps['ptwt']:.1f} frames/s, "
          f"ratio {fps['gpwave'] / fps['ptwt']:.2f}x")  # fmt: skip


def main() -> None:
    """Parse options, print the setup and the load, run the three benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=torch.get_num_threads(), help="default: torch's"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (median)")
    parser.add_argument("--batch", type=int, default=32, help="training batch (frames)")
    parser.add_argument("--eval-batches", type=int, nargs="+", default=[32, 64, 256])
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {args.threads} thread(s) by default, "
          f"load average {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")  # fmt: skip
    bench_training(args)
    bench_inference(args)
    bench_features(args)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
