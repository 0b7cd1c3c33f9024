"""Benchmark: gpwave's batched wavelet packets vs ptwt's node-by-node WaveletPacket.

The reference implementation builds ``ptwt.WaveletPacket(x, wavelet, mode="reflect",
maxlevel=L)`` and stacks ``[wp[node] for node in level-L paths in frequency order]``: one
dictionary entry and one convolution call per node. gpwave filters all nodes of a level in
one strided step. Both are timed in the same run on the same input, repeats interleaved,
and checked to agree.

Run: ``.venv/bin/python benchmarks/bench_transforms.py [--threads N] [--repeats R]``
(level 14 uses 3 repeats: ptwt needs seconds per call for its 32767 nodes).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version

import ptwt
import pywt
import torch

from gpwave.transforms import FeatureConfig, FeatureExtractor

SR = 22050
EPS = 1e-12


def ptwt_packets(x: torch.Tensor, wavelet: str, level: int) -> torch.Tensor:
    """The reference's way: node-by-node extraction from ptwt's WaveletPacket dict."""
    wp = ptwt.WaveletPacket(x, pywt.Wavelet(wavelet), mode="reflect", maxlevel=level)
    return torch.stack([wp[node] for node in wp.get_level(level, "freq")], dim=1)


def ptwt_features(x: torch.Tensor, wavelet: str, level: int) -> torch.Tensor:
    """Log-magnitude packet features (B, 1, F, T) computed the reference's way."""
    return torch.log(ptwt_packets(x, wavelet, level).abs() + EPS).unsqueeze(1)


def _time(fn: Callable[[], torch.Tensor], sync: bool) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = fn()
    if sync:
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def compare(name: str, ours, ref, repeats: int, sync: bool = False) -> None:
    """Time interleaved repeats, check the outputs agree, print medians and the ratio."""
    with torch.no_grad():
        ours()  # warm-up; the reference needs none (no caches, no compilation)
        t_ours, t_ref = [], []
        for _ in range(repeats):
            t, a = _time(ours, sync)
            t_ours.append(t)
            t, b = _time(ref, sync)
            t_ref.append(t)
    diff = float((a - b).abs().max())
    m_ours, m_ref = statistics.median(t_ours), statistics.median(t_ref)
    print(
        f"{name:<44} gpwave {m_ours * 1e3:9.1f} ms   ptwt node-by-node {m_ref * 1e3:9.1f} ms"
        f"   speed-up x{m_ref / m_ours:6.2f}   max|diff| {diff:.1e}   shape {tuple(a.shape)}"
    )


def run(device: str, repeats: int, batch: int) -> None:
    """Level-8 sym5 features and level-14 haar packets for ``batch`` 1 s frames."""
    gen = torch.Generator().manual_seed(0)
    x = (0.1 * torch.randn(batch, SR, generator=gen)).to(device)
    sync = device == "cuda"
    sym5 = FeatureExtractor(FeatureConfig(wavelet="sym5", level=8, eps=EPS)).to(device)
    compare(
        f"sym5 level 8 log features, {batch} x 1 s, {device}",
        lambda: sym5(x),
        lambda: ptwt_features(x, "sym5", 8),
        repeats,
        sync,
    )
    haar = FeatureExtractor(FeatureConfig(wavelet="haar", level=14, eps=EPS)).to(device)
    compare(
        f"haar level 14 log features, {batch} x 1 s, {device}",
        lambda: haar(x),
        lambda: ptwt_features(x, "haar", 14),
        3,
        sync,
    )


def main() -> None:
    """Parse options, print the setup, run CPU (and CUDA when present)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: robust on a shared CPU)",
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (median)")
    parser.add_argument("--batch", type=int, default=64, help="frames of 1 s at 22.05 kHz")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, ptwt {version('ptwt')}, pywt {pywt.__version__}, "
        f"{torch.get_num_threads()} CPU thread(s), median of {args.repeats} repeats"
    )
    run("cpu", args.repeats, args.batch)
    if torch.cuda.is_available():
        print(f"CUDA: {torch.cuda.get_device_name()}")
        run("cuda", args.repeats, args.batch)


if __name__ == "__main__":
    main()
