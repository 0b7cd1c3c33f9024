"""Frame-store read throughput vs decoding each frame from its wav file (the reference's way).

Both read the same random batches of 128 one-second frames (like a shuffled DataLoader)
from the mini benchmark: the store with one ``FrameStore.read`` per batch, the reference
way with ``soundfile.read(file, start=offset, stop=offset + frame_length)`` per frame.

Run: ``python benchmarks/bench_store.py [--batches N] [--batch-size 128]``.
The mini benchmark is taken from ``$GPWAVE_DATA/wavefake-mini``, else ``../shared``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from gpwave import data
from gpwave.download import default_data_dir
from gpwave.store import prepare_store

REPO = Path(__file__).resolve().parents[1]


def mini_root() -> Path:
    for cand in [
        os.environ.get("GPWAVE_MINI_ROOT"),
        default_data_dir() / "wavefake-mini",
        REPO.parent / "shared" / "wavefake-mini",
    ]:
        if cand and (Path(cand) / "A_ljspeech").is_dir():
            return Path(cand)
    raise SystemExit("mini benchmark not found: run `make data` or set GPWAVE_MINI_ROOT")


def read_soundfile(files: np.ndarray, offsets: np.ndarray, n: int) -> np.ndarray:
    out = np.empty((len(files), n), dtype=np.float32)
    for k, (f, o) in enumerate(zip(files, offsets, strict=True)):
        out[k] = sf.read(f, start=int(o), stop=int(o) + n, dtype="float32")[0]
    return out


def bench(fn, batches: list[np.ndarray]) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    last = None
    for rows in batches:
        last = fn(rows)
    return time.perf_counter() - t0, last


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    root = mini_root()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        prepare_store(data.DataConfig(root), store_dir=tmp, progress=False)
        t_prepare = time.perf_counter() - t0
        t0 = time.perf_counter()
        store = prepare_store(data.DataConfig(root), store_dir=tmp, progress=False)
        t_reuse = time.perf_counter() - t0

        rng = np.random.default_rng(args.seed)
        batches = [rng.choice(len(store), args.batch_size) for _ in range(args.batches)]
        files = store.index["file"].to_numpy()
        offsets = store.index["offset"].to_numpy()
        n = store.frame_length

        def ref(rows: np.ndarray) -> np.ndarray:
            return read_soundfile(files[rows], offsets[rows], n)

        bench(store.read, batches[:2])  # warm page cache and memmaps for both
        bench(ref, batches[:2])
        t_store, x_store = bench(store.read, batches)
        t_ref, x_ref = bench(ref, batches)
        assert np.allclose(x_store, x_ref, atol=1 / 32768), "store and soundfile disagree"

    frames = args.batches * args.batch_size
    fs_store, fs_ref = frames / t_store, frames / t_ref
    print(f"mini benchmark: {root} ({len(store)} frames of {n} samples, int16 store)")
    print(f"prepare (decode once): {t_prepare:.2f} s; second prepare (reuse): {t_reuse:.3f} s")
    print(f"random batches: {args.batches} x {args.batch_size} frames")
    print(f"frame store (memmap)      : {fs_store:12,.0f} frames/s")
    print(f"soundfile.read per frame  : {fs_ref:12,.0f} frames/s")
    print(f"ratio store / soundfile   : {fs_store / fs_ref:12.1f} x")


if __name__ == "__main__":
    main()
