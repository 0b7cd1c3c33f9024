"""Benchmark: the training input pipeline's frames/s beside the model step's: which bounds?

Input pipeline: :func:`gpwave.frames.batch_loader` over a copy of the mini benchmark's frame
store (int16), every frame once per pass in a shuffled order, batches of ``--batch-size``,
each moved and converted by :func:`gpwave.frames.to_device` to a device-ready float32
batch (the CPU here: on CUDA the copy is a pinned, non-blocking transfer). It runs with 0
and 2 reader processes, with a cold page cache (``posix_fadvise(DONTNEED)`` on the copy's
shard files before the pass; a pass includes starting its workers, as each epoch does)
and a warm one (the median of ``--repeats`` runs of ``--passes`` passes each in one loader,
after a full read: a full-scale epoch is thousands of batches, so worker start-up, which
dominates one pass over this small store, is amortised there).

Model step: one DCNN optimiser step (Adam) on batches of 32 frames on the CPU, with the
sym5 level-8 packet features computed in the step (the non-cached path a full-scale run
takes) and on features computed beforehand (the cached path of the mini protocol).

The pipeline bounds training where its frames/s are below the model step's. On a GPU node
the model step is far faster than on a CPU: compare the step measured there with this
pipeline's rows (reading and converting do not depend on the GPU).

Run: ``python benchmarks/bench_pipeline.py [--threads 1] [--steps 10] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from bench_store import mini_root

from gpwave import dist, frames
from gpwave.models import Detector
from gpwave.store import FrameStore
from gpwave.transforms import FeatureConfig

REPO = Path(__file__).resolve().parents[1]


def drop_cache(store: FrameStore) -> bool:
    """Evict the store's shard files from the page cache; False where the OS cannot."""
    if not hasattr(os, "posix_fadvise"):
        return False
    store._arrays = None  # unmap: mapped pages are not evicted
    for f in (store.path / "shards").glob("*/frames.npy"):
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return True


def pipeline_pass(
    store: FrameStore, batch_size: int, workers: int, seed: int, passes: int = 1
) -> float:
    """Frames/s of shuffled passes over every frame: store -> float32 batch on the device."""
    rows = np.arange(len(store))
    labels = torch.as_tensor(store.index["label"].to_numpy().copy())
    batches = [
        b
        for e in range(passes)
        for b in frames.batch_positions(len(rows), batch_size, seed, e, dist.Dist())
    ]
    start = time.perf_counter()
    n = 0
    for x, y in frames.batch_loader(store, rows, labels, batches, "cpu", workers):
        xf, _ = frames.to_device(x, y, "cpu")
        n += len(xf)
    return n / (time.perf_counter() - start)


def startup_seconds(store: FrameStore, batch_size: int, workers: int) -> float:
    """Seconds from creating a loader to its first batch (worker start-up, once per epoch)."""
    labels = torch.as_tensor(store.index["label"].to_numpy().copy())
    start = time.perf_counter()
    batches = [np.arange(batch_size)]
    next(iter(frames.batch_loader(store, np.arange(len(store)), labels, batches, "cpu", workers)))
    return time.perf_counter() - start


def model_steps(store: FrameStore, steps: int, batch: int = 32) -> tuple[float, float]:
    """Frames/s of DCNN optimiser steps: features in the step, and on cached features."""
    torch.manual_seed(0)
    fcfg = FeatureConfig.from_dict({"sample_rate": store.sample_rate})
    det = Detector(fcfg, "dcnn", store.frame_length)
    opt = torch.optim.Adam(det.model.parameters(), lr=4e-4)
    x = torch.from_numpy(store.read(np.arange(batch)))
    y = torch.as_tensor(store.index["label"].to_numpy()[:batch].copy())
    with torch.no_grad():
        cached = det.features(x)

    def step(with_features: bool) -> float:
        start = time.perf_counter()
        if with_features:
            with torch.no_grad():
                f = det.features(x)
        else:
            f = cached
        loss = F.cross_entropy(det.model(f), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - start

    step(True), step(False)  # warm-up
    times = {w: [step(w) for _ in range(steps)] for w in (True, False)}
    return batch / statistics.median(times[True]), batch / statistics.median(times[False])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=128, help="pipeline batch (train default)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the model step")
    p.add_argument("--steps", type=int, default=10, help="timed model steps per variant")
    p.add_argument("--repeats", type=int, default=3, help="warm pipeline runs (median)")
    p.add_argument("--passes", type=int, default=8, help="passes over the store per warm run")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # reader processes: no thread pools

    src = frames.protocol_store(REPO / "configs" / "mini.yaml", mini_root())
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(src.path, Path(tmp) / "store")
        store = FrameStore.open(Path(tmp) / "store")
        rows: dict[str, float] = {}
        can_drop = True
        for workers in (0, 2):
            can_drop = drop_cache(store)
            rows[f"{workers} workers, cold cache"] = pipeline_pass(
                store, args.batch_size, workers, seed=1
            )
            pipeline_pass(store, args.batch_size, workers, seed=2)  # warm the cache
            rows[f"{workers} workers, warm cache"] = statistics.median(
                pipeline_pass(store, args.batch_size, workers, 3 + k, args.passes)
                for k in range(args.repeats)
            )
        startup = {w: startup_seconds(store, args.batch_size, w) for w in (0, 2)}
        in_step, cached = model_steps(store, args.steps)
        mb = sum(f.stat().st_size for f in (store.path / "shards").glob("*/frames.npy")) / 1e6

    print(f"store: copy of {src.path} ({len(src)} frames of {src.frame_length} int16, {mb:.0f} MB)")
    if not can_drop:
        print("(no posix_fadvise here: the 'cold' rows ran on a warm cache)")
    print(f"{'what':<56}{'frames/s':>12}")
    for name, fps in rows.items():
        print(f"{'input pipeline, ' + name + f', batch {args.batch_size}':<56}{fps:12,.0f}")
    print(
        f"time to the first batch (warm): 0 workers {startup[0]:.3f} s, 2 workers "
        f"{startup[2]:.3f} s (start-up; a cold row's single pass includes it once)"
    )
    print(f"{'DCNN step, packets in the step, batch 32, CPU':<56}{in_step:12,.0f}")
    print(f"{'DCNN step, cached features, batch 32, CPU':<56}{cached:12,.0f}")
    slowest = min(rows.values())
    for name, step in (("features in the step", in_step), ("cached features", cached)):
        bound = "the input pipeline" if slowest < step else "the model step"
        print(
            f"CPU, {name}: {bound} bounds training "
            f"(slowest pipeline row {slowest:,.0f} vs step {step:,.0f} frames/s)"
        )
    print(
        "On a GPU node compare these pipeline rows with the step measured there: a row "
        "below it means a starved GPU (more workers, a warm cache)."
    )


if __name__ == "__main__":
    main()
