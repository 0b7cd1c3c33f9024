"""Frames for training: the protocol's store, balanced rows, batches, loaders, normaliser.

A run reads its frames from the :mod:`gpwave.data` frame store of its protocol
(:func:`protocol_store`, the same split every notebook sees); :func:`select_rows` picks
the balanced real-vs-generator rows of a split, :func:`batch_positions` the seeded
per-epoch batches of each rank, and :class:`Frames` turns them into normalised features
on the device: cached, or read ahead by :func:`batch_loader` (a DataLoader with
``workers`` reader processes, prefetch, pinned memory on CUDA) as int16, copied without
blocking and converted there. Reading does not touch the global RNG, so any number of
workers trains bit-identically to none. :func:`augment_batch` perturbs training
waveforms deterministically from ``(seed, epoch, step)``.

Notebook: notebooks/03_train.py
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gpwave import dist
from gpwave.config import AugmentSpec, TrainConfig, load_yaml, resolve_path
from gpwave.models import Detector


def data_config(cfg: TrainConfig) -> Any:
    """The data configuration of a training config: folders, split, test-only folders.

    Args:
        cfg: A training config.

    Returns:
        The :class:`gpwave.data.DataConfig` its frame store is prepared with.
    """
    from gpwave.data import DataConfig

    return DataConfig(
        root=resolve_path(cfg.data_dir),
        sample_rate=cfg.sample_rate,
        seconds=cfg.seconds,
        only_test_folders=tuple(cfg.only_test_folders),
        split=tuple(cfg.split),
        seed=cfg.split_seed,
    )


def protocol_store(
    protocol: str | Path | dict[str, Any],
    data_dir: str | Path,
    store_dir: str | Path | None = None,
    progress: bool = False,
) -> Any:
    """Open the frame store of a protocol (a training YAML) for a data folder.

    The split and the test-only folders come from the protocol, so every notebook sees
    the frames exactly as training split them; the store is decoded once and reused.

    Notebook: notebooks/02_data.py

    Args:
        protocol: A training config file (e.g. ``configs/mini.yaml``) or its dict.
        data_dir: The letter-prefixed data folder (replaces the protocol's ``data_dir``).
        store_dir: Where the store lives (default: the protocol's, else under
            ``$GPWAVE_DATA/stores``).
        progress: Show progress bars while decoding.

    Returns:
        The :class:`gpwave.store.FrameStore`.
    """
    from gpwave.store import prepare_store

    raw = protocol if isinstance(protocol, dict) else load_yaml(Path(protocol))
    cfg = TrainConfig.from_dict({**raw, "data_dir": str(data_dir)})
    target = resolve_path(store_dir if store_dir is not None else cfg.store_dir)
    return prepare_store(data_config(cfg), store_dir=target, progress=progress)


def open_store(cfg: TrainConfig, d: dist.Dist, progress: bool) -> Any:
    """A run's frame store: the lead process prepares it (decoding once), then the rest.

    Args:
        cfg: The run's config.
        d: This process's place in the run.
        progress: Progress bars while decoding.

    Returns:
        The :class:`gpwave.store.FrameStore`.
    """
    from gpwave.store import FrameStore, default_store_dir, prepare_store

    dcfg = data_config(cfg)
    store_dir = resolve_path(cfg.store_dir) or default_store_dir(dcfg)
    from gpwave.poolstore import open_union

    def joined(store: Any, progress: bool) -> Any:  # the pool's trees, decoded by the lead
        if cfg.pool is None:
            return store
        return open_union(store, resolve_path(cfg.pool), dcfg, cfg.split_seed, progress=progress)

    if d.lead:
        store = joined(prepare_store(dcfg, store_dir=store_dir, progress=progress), progress)
    dist.barrier(d)
    if not d.lead:  # the lead has just checked and written it: open, don't list the data
        store = joined(FrameStore.open(store_dir), False)
    return store


def select_rows(cfg: TrainConfig, store: Any, split: str, limit: int | None) -> np.ndarray:
    """Balanced rows of real and the trained-against generator in one split.

    With ``cfg.pool`` the training and validation rows of the pool's trees are added
    (:func:`gpwave.poolstore.pool_rows`); test rows are the protocol's only.

    Args:
        cfg: The run's config (real, train_generator, split_seed).
        store: The frame store.
        split: ``train``, ``val`` or ``test``.
        limit: At most this many frames per class (None: all).

    Returns:
        Store rows.
    """
    from gpwave.store import select_frames

    main = getattr(store, "members", [store])[0]  # a pool's union: the protocol's store first
    rows = select_frames(
        main,
        split,
        [cfg.train_generator],
        real=cfg.real,
        balance=True,
        limit=limit,
        seed=cfg.split_seed,
    )
    if cfg.pool is None or split == "test":
        return rows
    from gpwave.poolstore import pool_rows

    extra = pool_rows(store, split, cfg.pool_families, limit, cfg.split_seed)
    return np.sort(np.concatenate([rows, extra])).astype(np.int64)


class Frames:
    """Training/validation frames: waveforms read from the store, or cached features.

    Args:
        store: The frame store.
        rows: Store rows.
        det: The detector whose features are computed.
        device: Where features are computed.
        cache: Compute every frame's features once and keep them.
    """

    def __init__(self, store: Any, rows: np.ndarray, det: Detector, device: str, cache: bool):
        self.store, self.rows, self.det, self.device = store, rows, det, device
        self.labels = torch.as_tensor(store.index["label"].to_numpy()[rows], dtype=torch.long)
        self.cache: torch.Tensor | None = None
        if cache:  # raw features from the on-disk cache (shared by runs), normalised here
            raw = cached_raw_features(det, store, rows, device)
            self.cache = torch.cat(
                [det.normalizer(raw[i : i + 64]) for i in range(0, len(rows), 64)]
            )

    def _compute(self, rows: np.ndarray) -> torch.Tensor:
        return self._features(torch.from_numpy(self.store.read(rows)).to(self.device))

    def __len__(self) -> int:
        return len(self.rows)

    def features(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised features and labels of positions ``idx``."""
        y = self.labels[idx].to(self.device)
        if self.cache is not None:
            return self.cache[torch.as_tensor(idx)], y
        return self._compute(self.rows[idx]), y

    def stream(
        self,
        batches: list[np.ndarray],
        workers: int,
        augment: Callable[[int, np.ndarray], np.ndarray] | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Features and labels of each batch of positions, in order, read ahead.

        Cached features are indexed in place; otherwise :func:`batch_loader` reads the
        stored frames in ``workers`` processes and the features are computed on the device.
        ``augment(k, waveforms)`` perturbs batch ``k``'s waveforms first (on the CPU).
        """
        if self.cache is not None:
            if augment is not None:
                raise ValueError("augmentation needs waveforms, not cached features")
            yield from (self.features(idx) for idx in batches)
            return
        loader = batch_loader(self.store, self.rows, self.labels, batches, self.device, workers)
        for k, (x, y) in enumerate(loader):
            if augment is not None:  # on the CPU as read, before the copy to the device
                from gpwave.store import stored_to_float

                x = torch.from_numpy(augment(k, stored_to_float(x.numpy())))
            x, y = to_device(x, y, self.device)
            yield self._features(x), y  # not yielded inside no_grad: the step needs grads

    @torch.no_grad()
    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.det.features(x)


#: torch dtype of each frame-store dtype (:data:`gpwave.constants.StoreDtype`).
_TORCH_DTYPES = {"int16": torch.int16, "float16": torch.float16}


class BatchReader(torch.utils.data.Dataset):
    """Batch ``k`` of a list of batches: the frames as stored (int16) and their labels.

    Args:
        store: The frame store.
        rows: Store rows of the positions the batches index.
        labels: Label of each position.
        batches: Positions of each batch (e.g. this rank's share from :func:`batch_positions`).
    """

    def __init__(self, store: Any, rows: np.ndarray, labels: torch.Tensor, batches: list):
        self.store, self.rows, self.labels, self.batches = store, rows, labels, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.batches[k]
        x = torch.empty((len(idx), self.store.frame_length), dtype=_TORCH_DTYPES[self.store.dtype])
        if torch.utils.data.get_worker_info() is not None:
            x.share_memory_()  # read straight into the memory the batch is sent in
        self.store.read_stored(self.rows[idx], out=x.numpy())
        return x, self.labels[idx]


#: Batches each loader worker reads ahead of the one the model is working on.
PREFETCH = 4


def batch_loader(
    store: Any,
    rows: np.ndarray,
    labels: torch.Tensor,
    batches: list[np.ndarray],
    device: str,
    workers: int = 0,
) -> torch.utils.data.DataLoader:
    """The training input pipeline: stored frames of each batch, in order, read ahead.

    ``workers`` processes read batches from the store's memory maps (``PREFETCH`` each
    ahead) into pinned memory on CUDA; batches stay int16 (half of float32's bytes) until
    :func:`to_device` copies and converts them on the device. The loader draws its worker
    seed from its own generator, so the global torch RNG (dropout) is the same whatever
    ``workers`` is, and the batches are those of ``batches`` in order.

    Args:
        store: The frame store.
        rows: Store rows of the positions the batches index.
        labels: Label of each position.
        batches: Positions of each batch.
        device: Where the batches go (pinned memory when it is CUDA).
        workers: Reader processes (0: read in this process).

    Returns:
        A DataLoader yielding ``(stored frames, labels)`` per batch.
    """
    return torch.utils.data.DataLoader(
        BatchReader(store, rows, labels, batches),
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.startswith("cuda"),
        prefetch_factor=PREFETCH if workers else None,
        generator=torch.Generator(),
    )


def to_device(x: torch.Tensor, y: torch.Tensor, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy a loader batch to the device without blocking, then convert it to float32 there.

    Args:
        x: Stored frames (int16 or float16), pinned on CUDA.
        y: Labels.
        device: The device.

    Returns:
        Float32 frames in [-1, 1] and labels, on the device.
    """
    from gpwave.store import stored_to_float

    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    return stored_to_float(x), y


def loader_workers(cfg: TrainConfig, device: str) -> int:
    """Reader processes of the input pipeline: ``cfg.workers``, else a default per device.

    Args:
        cfg: The run's config.
        device: The resolved device.

    Returns:
        ``cfg.workers`` if set; on CUDA up to 4, sharing the CPUs this process may use
        with the other processes on its node (``LOCAL_WORLD_SIZE``); 0 on other devices.
    """
    if cfg.workers is not None:
        return cfg.workers
    if not device.startswith("cuda"):
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    per_process = (cpus or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(4, per_process - 1))


def fit_normalizer(
    det: Detector,
    store: Any,
    rows: np.ndarray,
    device: str,
    batch: int = 64,
    workers: int = 0,
    cache: bool = False,
) -> None:
    """Fit the detector's normaliser on the raw features of ``rows``, streamed.

    Args:
        det: The detector (its ``normalizer`` is updated in place).
        store: The frame store.
        rows: Training rows.
        device: Where features are computed.
        batch: Frames per step.
        workers: Reader processes (see :func:`batch_loader`).
        cache: Take the raw features from :func:`cached_raw_features` (computed and
            stored there on a miss) instead of streaming them; the same statistics.
    """
    if cache:
        raw = cached_raw_features(det, store, rows, device, batch)
        for i in range(0, len(rows), batch):
            det.normalizer.update(raw[i : i + batch])
        return
    batches = [np.arange(i, min(i + batch, len(rows))) for i in range(0, len(rows), batch)]
    labels = torch.zeros(len(rows), dtype=torch.long)
    with torch.no_grad():
        for x, y in batch_loader(store, rows, labels, batches, device, workers):
            det.normalizer.update(det.raw_features(to_device(x, y, device)[0]))


#: Bumped when the features a detector computes change, so older cache files are not read.
FEATURE_CACHE_VERSION = 1


def feature_cache_path(det: Detector, store: Any, rows: np.ndarray, device: str) -> Path:
    """Where :func:`cached_raw_features` keeps the raw features of ``rows``.

    The file lives in the store's ``features/`` folder, named by a hash of everything the
    features depend on: the store's key (its data and preparation), the rows in order,
    the detector's feature config, ``level_norm`` and frame length, the device type, the
    torch version, the source of the feature code (:mod:`gpwave.transforms`,
    :meth:`~gpwave.models.Detector.raw_features`) and :data:`FEATURE_CACHE_VERSION`.
    Runs that differ only in model, seed or optimiser settings share the file.

    Args:
        det: The detector.
        store: The frame store.
        rows: Store rows, in order.
        device: Where the features are computed.

    Returns:
        The ``.npy`` path (it may not exist yet).
    """
    import hashlib
    import inspect
    import json

    from gpwave import models, transforms

    code = inspect.getsource(transforms) + inspect.getsource(models.Detector.raw_features)
    code += inspect.getsource(models.standardize_level)
    code_hash = hashlib.sha256(code.encode()).hexdigest()
    spec = {"version": FEATURE_CACHE_VERSION, "store": store.meta.get("key", str(store.path)),
            "feature": det.feature_config.to_dict(), "level_norm": det.level_norm,
            "n_samples": det.n_samples, "device": torch.device(device).type,
            "torch": torch.__version__, "code": code_hash}  # fmt: skip
    h = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(rows, dtype=np.int64).tobytes())
    return Path(store.path) / "features" / f"{h.hexdigest()[:24]}.npy"


def cached_raw_features(
    det: Detector, store: Any, rows: np.ndarray, device: str, chunk: int = 64
) -> torch.Tensor:
    """Un-normalised features of ``rows``: read from the on-disk cache, else computed and kept.

    The normaliser is fitted per run, so the cache holds raw features
    (:meth:`gpwave.models.Detector.raw_features`, ``chunk`` frames at a time as
    :func:`fit_normalizer` streams them: the same values to the bit). The file is
    written to a temporary name and renamed into place, so concurrent runs never read
    a partial file (two runs that miss together both compute, the last rename wins
    with the same content); a file that cannot be read or has the wrong shape is
    recomputed.

    Notebook: notebooks/03_train.py

    Args:
        det: The detector.
        store: The frame store.
        rows: Store rows, in order.
        device: Where features are computed (the result is put there).
        chunk: Frames per feature computation.

    Returns:
        Float32 features ``(len(rows), *det.input_shape)`` on ``device``.
    """
    path = feature_cache_path(det, store, rows, device)
    shape = (len(rows), *det.input_shape)
    try:
        feats = np.load(path)
        if feats.shape == shape and feats.dtype == np.float32:
            return torch.from_numpy(feats).to(device)
    except (OSError, ValueError, EOFError):
        pass  # absent or unreadable: compute it
    with torch.no_grad():
        parts = [det.raw_features(torch.from_numpy(store.read(rows[i : i + chunk])).to(device))
                 for i in range(0, len(rows), chunk)]  # fmt: skip
    out = torch.cat(parts) if parts else torch.empty(shape, device=device)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{os.urandom(4).hex()}.npy")
    try:
        np.save(tmp, out.cpu().numpy())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def batch_positions(
    n: int, batch_size: int, seed: int, epoch: int, d: dist.Dist
) -> list[np.ndarray]:
    """This rank's share of each global batch of a seeded per-epoch permutation.

    Args:
        n: Number of frames.
        batch_size: Global batch size.
        seed: The run's seed.
        epoch: Epoch index (from 0).
        d: This process's place (rank ``r`` of ``w`` takes every ``w``-th frame from ``r``).

    Returns:
        Positions of each batch; a last batch of fewer than 2 frames is dropped.

    Example:
        >>> [len(b) for b in batch_positions(10, 4, seed=0, epoch=0, d=dist.Dist())]
        [4, 4, 2]
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).numpy()
    out = []
    for i in range(0, n, batch_size):
        b = perm[i : i + batch_size]
        if len(b) >= max(2, d.world):  # BatchNorm needs 2 frames per step
            out.append(b[d.rank :: d.world])
    return out


def augment_batch(
    x: np.ndarray,
    specs: Sequence[AugmentSpec | dict[str, Any]],
    sample_rate: int,
    seed: int,
    epoch: int,
    step: int,
    rank: int = 0,
) -> np.ndarray:
    """Perturb a training batch as ``augment`` says, deterministically from (seed, epoch, step).

    For each spec in order, every frame is hit with probability ``p`` and gets a strength
    drawn uniformly from ``strengths``; the frames hit with one strength are perturbed
    together by :func:`gpwave.perturb.apply` (length kept; the noise seeded from the same
    generator). The draws depend only on ``(seed, epoch, step, rank)``.

    Args:
        x: Waveforms ``(b, n)``, float32.
        specs: ``augment`` entries (:class:`~gpwave.config.AugmentSpec`).
        sample_rate: Sample rate in Hz.
        seed: The run's seed.
        epoch: Epoch index (from 0).
        step: Step index within the epoch.
        rank: Process rank (a distributed run draws per rank).

    Returns:
        The perturbed batch (a new array), same shape.
    """
    from gpwave import perturb

    rng = np.random.default_rng([seed, epoch, step, rank])
    x = np.array(x, dtype=np.float32)
    for spec in specs:
        if isinstance(spec, dict):
            spec = AugmentSpec(spec["kind"], tuple(spec["strengths"]), spec.get("p", 1.0))
        hit = rng.random(len(x)) < spec.p
        pick = rng.integers(len(spec.strengths), size=len(x))
        noise_seed = int(rng.integers(2**31))
        for j, strength in enumerate(spec.strengths):
            m = hit & (pick == j)
            if m.any():
                x[m] = perturb.apply(x[m], sample_rate, spec.kind, strength, noise_seed + j,
                                     keep_length=True)  # fmt: skip
    return x
