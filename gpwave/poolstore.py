"""A run's frames from the protocol's data folder plus a many-speaker training pool.

``gpwave train`` with ``pool`` set (e.g. ``${GPWAVE_DATA}/speakers-train``) reads the
protocol's store (the mini benchmark: real LJSpeech vs MelGAN, split by utterance) and
one frame store per tree of the pool, and treats them as one store (:class:`StoreUnion`).
The pool's rules are those of :mod:`gpwave.pool`: every file of both classes is decoded
and resampled to the run's rate by the same store code; the pool's split goes by speaker
across all trees (:func:`gpwave.pool.speaker_splits`), and its *test* speakers are never
read by training (their split is left empty: chapter 08 scores them); within a tree, the
real frames of a split are repeated to as many as the fake ones (real speech is about a
fifth of the audio), and a tree joins only with fakes of the chosen families, together with its own
real files, so that a tree's corpus, language or rate is never what separates the classes.

Notebook: notebooks/08_generalization_needs.py
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gpwave import pool as pool_mod
from gpwave.data import DataConfig
from gpwave.errors import DataError
from gpwave.store import FrameStore, default_store_dir, prepare_store

#: Split of the pool's test speakers in a union's index: no training split reads them.
HELD_OUT = ""


class StoreUnion:
    """Several frame stores read as one; rows are numbered store after store.

    The first store is the protocol's; the others are the pool's trees, whose index rows
    carry ``<tree>/`` before their generator and folder names and their speaker split.

    Args:
        stores: The stores (same sample rate, frame length and dtype).
        index: The joined index (``row`` numbered across the stores, plus ``tree``).
    """

    def __init__(self, stores: Sequence[FrameStore], index: pd.DataFrame):
        first = stores[0]
        for s in stores[1:]:
            same = (s.sample_rate, s.frame_length, s.dtype)
            if same != (first.sample_rate, first.frame_length, first.dtype):
                want = (first.sample_rate, first.frame_length, first.dtype)
                raise DataError(f"{s.path}: stored as {same}, the protocol's store as {want}")
        self.members = list(stores)
        self.index = index
        self.path = first.path
        keys = [s.meta.get("key", str(s.path)) for s in stores]  # rows depend on every member
        self.meta = {"key": hashlib.sha256(json.dumps(keys).encode()).hexdigest()}
        self.sample_rate, self.frame_length, self.dtype = (
            first.sample_rate,
            first.frame_length,
            first.dtype,
        )
        self.generators = sorted(set(index["generator"]))
        self.skipped = pd.concat([s.skipped for s in stores], ignore_index=True)
        self._bases = np.cumsum([0] + [len(s) for s in stores[:-1]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def read_stored(
        self, rows: Sequence[int] | np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Frames by row number as stored (see :meth:`gpwave.store.FrameStore.read_stored`)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row out of range 0..{len(self) - 1}")
        if out is None:
            out = np.empty((rows.size, self.frame_length), dtype=np.dtype(self.dtype))
        member = np.searchsorted(self._bases, rows, side="right") - 1
        for k in np.unique(member):
            sel = np.nonzero(member == k)[0]
            out[sel] = self.members[k].read_stored(rows[sel] - self._bases[k])
        return out

    def read(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames by row number, as float32 in [-1, 1]."""
        from gpwave.store import stored_to_float

        return stored_to_float(self.read_stored(rows))

    def __repr__(self) -> str:
        return f"StoreUnion({len(self.members)} stores, frames={len(self)})"


def _tree_config(root: Path, like: DataConfig) -> DataConfig:
    return DataConfig(root=root, sample_rate=like.sample_rate, seconds=like.seconds,
                      dtype=like.dtype, upsample=True)  # fmt: skip


def _key(path: str) -> str:
    """One spelling per file: a symlinked or relative path names the file it points to."""
    return os.path.normcase(os.path.realpath(path))


def pool_index(store: FrameStore, tree: str, table: pd.DataFrame, base: int) -> pd.DataFrame:
    """One pool tree's store index, renamed for the union and split by speaker.

    Args:
        store: The tree's frame store.
        tree: The tree's name (``umelgan``).
        table: The pool table, ``split`` and ``family`` set (:func:`gpwave.pool.speaker_splits`).
        base: Row number of the tree's first frame in the union.

    Returns:
        The index with ``tree``, ``family`` and the speaker ``split``; test speakers'
        split is :data:`HELD_OUT`.

    Raises:
        DataError: A stored file the pool table does not list.
    """
    rows = table[table["tree"] == tree]
    split = dict(zip(rows["file"].map(_key), rows["split"], strict=True))
    family = dict(zip(rows["file"].map(_key), rows["family"], strict=True))
    idx = store.index.copy()
    keys = idx["file"].map(_key)
    missing = sorted(set(keys) - set(split))
    if missing:
        raise DataError(f"{missing[0]}: stored for the pool but not in its manifest table")
    idx["split"] = keys.map(split).replace("test", HELD_OUT)
    idx["family"] = keys.map(family)
    idx["generator"] = tree + "/" + idx["generator"]
    idx["folder"] = tree + "/" + idx["folder"]
    idx["row"] = idx["row"].to_numpy(np.int64) + base
    return idx.assign(tree=tree)


def open_union(
    main: FrameStore,
    pool_root: str | Path,
    like: DataConfig,
    seed: int = 0,
    store_root: str | Path | None = None,
    progress: bool = False,
) -> StoreUnion:
    """The protocol's store joined by one store per tree of a pool (decoded once each).

    Notebook: notebooks/08_generalization_needs.py

    Args:
        main: The protocol's store (its rows come first, their split unchanged).
        pool_root: A multi-tree set with ``MANIFEST.tsv`` (speakers-train).
        like: The protocol's data config (sample rate, frame length, dtype).
        seed: Seed of the speaker split.
        store_root: Folder for the trees' stores (default: each tree's default store).
        progress: Progress bars while decoding.

    Returns:
        The union.
    """
    pool_root = Path(pool_root)
    table = pool_mod.speaker_splits(pool_mod.pool_table(pool_root), seed=seed)
    stores, parts, base = [main], [main.index.assign(tree="", family="")], len(main)
    for tree in sorted(table["tree"].unique()):
        cfg = _tree_config(pool_root / tree, like)
        where = Path(store_root) / tree if store_root is not None else default_store_dir(cfg)
        store = prepare_store(cfg, store_dir=where, progress=progress)
        parts.append(pool_index(store, tree, table, base))
        stores.append(store)
        base += len(store)
    return StoreUnion(stores, pd.concat(parts, ignore_index=True))


def _fill(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """All of ``rows`` plus draws with replacement up to ``n`` (``n >= len(rows)``)."""
    return np.concatenate([rows, rng.choice(rows, n - len(rows), replace=True)])


def pool_rows(
    union: StoreUnion,
    split: str,
    families: Sequence[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Balanced pool rows of one split: per tree, real and chosen-family fakes alike.

    A tree without fakes of ``families`` in the split contributes nothing (not even its
    real speech); in a tree that has them, the smaller class (mostly the real speech,
    about a fifth of the audio) is repeated up to the larger one's size, so every tree
    brings as many real as fake frames and every fake frame is used. Silent frames are
    left out (silence is not evidence). ``limit`` caps each class over all trees.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        union: The union (:func:`open_union`).
        split: ``train`` or ``val``.
        families: Vocoder families of the fakes (None: every family).
        limit: At most this many frames per class (None: all).
        seed: Seed of the draws.

    Returns:
        Sorted union rows (a repeated frame appears more than once).
    """
    idx = union.index
    rng = np.random.default_rng(seed)
    real, fake = [], []
    part = idx[(idx["tree"] != "") & (idx["split"] == split) & ~idx["silent"].astype(bool)]
    for _, t in part.groupby("tree", sort=True):
        f = t[t["label"] == 1]
        if families is not None:
            f = f[f["family"].isin(families)]
        r = t[t["label"] == 0]
        n = max(len(f), len(r))
        if len(f) and len(r):
            real.append(_fill(r["row"].to_numpy(), n, rng))
            fake.append(_fill(f["row"].to_numpy(), n, rng))
    out = []
    for chunks in (real, fake):
        rows = np.concatenate(chunks) if chunks else np.empty(0, np.int64)
        if limit is not None and len(rows) > limit:
            rows = rng.choice(rows, limit, replace=False)
        out.append(rows)
    return np.sort(np.concatenate(out)).astype(np.int64)


def held_out_rows(union: StoreUnion, exclude: Sequence[str] = ()) -> np.ndarray:
    """Rows of the pool's test speakers: real and fake frames no training split reads.

    Only trees that keep fakes after ``exclude`` contribute, with their own real frames
    (as in training, the classes come from the same trees); silent frames are left out.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        union: The union (:func:`open_union`).
        exclude: Vocoder families whose fakes are left out (the training families, when
            the question is unseen vocoders).

    Returns:
        Sorted union rows.
    """
    idx = union.index
    part = idx[(idx["tree"] != "") & (idx["split"] == HELD_OUT) & ~idx["silent"].astype(bool)]
    fake = (part["label"] == 1) & ~part["family"].isin(list(exclude))
    trees = set(part.loc[fake, "tree"])
    keep = part["tree"].isin(trees) & ((part["label"] == 0) | fake)
    return np.sort(part.loc[keep, "row"].to_numpy(np.int64))
