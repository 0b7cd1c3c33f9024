"""Benchmark: DCNN training and inference frames/s on CPU, today's path vs each candidate.

DCNN on sym5 level-8 packets (input (1, 256, 95)), batch 32, Adam, features cached in
memory as the mini protocol trains. Every variant is a separately seeded copy of the same
model; one timed optimiser step of each variant runs per round, rounds interleaved, so a
change of load on a shared machine hits every variant alike: the ratios to ``today`` are
what count. Candidates:

* memory format: ``today`` runs the conv stack NCHW (``DCNN.memory_format =
  torch.contiguous_format``, NCHW weights: the code before this benchmark);
  ``channels_last input only`` feeds it channels-last; ``channels_last`` (``+ weights``)
  also stores the conv weights channels-last (the DCNN's default now).
* threads: the same step at 1 and at 2 torch threads (``--threads`` is the default).
* feature cache dtype: batches gathered from a float16 cache and cast to float32.
* ``torch.compile`` (inductor, C++ on CPU): its compile time is printed on its own.

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

from gpwave.models import build_model
from gpwave.transforms import FeatureConfig, FeatureExtractor

SHAPE = (1, 256, 95)
CL, NCHW = torch.channels_last, torch.contiguous_format


class Variant:
    """One model + optimiser + input path; ``step()`` is one timed optimiser step."""

    def __init__(self, name: str, fmt: torch.memory_format, threads: int, **kw: bool):
        torch.manual_seed(0)
        self.name, self.threads = name, threads
        self.model = build_model("dcnn", SHAPE)
        self.model.memory_format = fmt
        self.model.to(memory_format=CL if kw.get("weights_cl") else NCHW)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=4e-4, weight_decay=1e-3)
        self.net: Callable = self.model
        self.half = kw.get("half_cache", False)
        self.compile_s = None
        if kw.get("compile"):
            self.net = torch.compile(self.model)
        self.times: list[float] = []

    def step(self, cache: dict[torch.dtype, torch.Tensor], idx: torch.Tensor, y: torch.Tensor):
        """Gather a batch from the feature cache, forward, backward, Adam step; timed."""
        torch.set_num_threads(self.threads)
        start = time.perf_counter()
        x = cache[torch.float16 if self.half else torch.float32][idx].float()
        loss = F.cross_entropy(self.net(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return time.perf_counter() - start


def train_variants(threads: int, compile_: bool) -> list[Variant]:
    """Today's path first, then the candidates."""
    other = 1 if threads != 1 else 2
    kept = {"weights_cl": True}
    out = [
        Variant("today (NCHW, fp32 cache)", NCHW, threads),
        Variant("channels_last input only", CL, threads),
        Variant("channels_last input + weights", CL, threads, **kept),
        Variant("channels_last, fp16 cache", CL, threads, half_cache=True, **kept),
        Variant("today", NCHW, other),
        Variant("channels_last", CL, other, **kept),
    ]
    if compile_:
        out.append(Variant("channels_last + torch.compile", CL, threads, compile=True, **kept))
        out.append(Variant("channels_last + torch.compile", CL, other, compile=True, **kept))
    return out


def bench_training(args: argparse.Namespace) -> None:
    """Interleaved training steps of every variant; prints median frames/s and ratios."""
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(256, *SHAPE, generator=gen)
    cache = {torch.float32: feats, torch.float16: feats.half()}
    variants = train_variants(args.threads, args.compile)
    for v in variants:  # warm-up; compilation happens here
        idx = torch.randint(0, len(feats), (args.batch,), generator=gen)
        y = torch.randint(0, 2, (args.batch,), generator=gen)
        start = time.perf_counter()
        v.step(cache, idx, y)
        if v.net is not v.model:
            v.compile_s = time.perf_counter() - start
    for _ in range(args.rounds):
        idx = torch.randint(0, len(feats), (args.batch,), generator=gen)
        y = torch.randint(0, 2, (args.batch,), generator=gen)
        for v in variants:
            v.times.append(v.step(cache, idx, y))
    base = statistics.median(variants[0].times)
    print(f"\nTraining step, batch {args.batch}, median of {args.rounds} interleaved rounds")
    print(f"{'variant':<36} {'threads':>7} {'frames/s':>9} {'vs today':>9}")
    for v in variants:
        t = statistics.median(v.times)
        extra = f"   (compile + first step {v.compile_s:.1f} s)" if v.compile_s else ""
        print(f"{v.name:<36} {v.threads:>7} {args.batch / t:9.2f} {base / t:8.2f}x{extra}")
    lookup(cache, args.batch)


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
