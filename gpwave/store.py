"""The frame store: every file of a data root decoded once into memory-mapped shards.

:func:`prepare_store` decodes every file once into memory-mapped shards (one per folder,
each with an atomic completion marker) plus an index table, so training never decodes
audio again and an interrupted prepare keeps the folders it finished (a full disk or an
interrupt leaves no partial shard). :class:`FrameStore` reads rows fast;
:func:`select_frames` picks a split's balanced rows.

Silence: all-zero frames are kept (they are valid audio and cannot produce NaN here) and
flagged in the index column ``silent`` so a caller can drop them. Files with NaN or
infinite samples are refused (reported in ``store.skipped``).

Notebook: notebooks/02_data.py
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from gpwave import data
from gpwave.constants import Split, StoreDtype, check_option
from gpwave.data import DataConfig, Source, _plan_shard, assign_splits, discover_sources
from gpwave.download import make_dir
from gpwave.errors import AudioError, DataError

log = logging.getLogger(__name__)

STORE_VERSION = 1


# --- the frame store ----------------------------------------------------------------------
def _tmp_name(path: Path, suffix: str) -> Path:
    """A temporary sibling unique across processes *and* hosts sharing a file system."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.{suffix}")


def _atomic_write(path: Path, write: Any) -> None:
    """``write(tmp)`` then rename onto ``path``; the temporary file never outlives a failure."""
    tmp = _tmp_name(path, "tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(text))


def _atomic_write_csv(path: Path, df: pd.DataFrame) -> None:
    _atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (fcntl) so concurrent prepares build each shard once.

    Where the file system refuses ``flock`` (some cluster file systems raise ENOLCK or
    EOPNOTSUPP) this warns and goes on unlocked: shards are still written atomically, so
    concurrent prepares may only duplicate work.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        yield
        return
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError as err:
            data._warn(f"{path}: file locking is not supported here ({err}); going on without it")
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _hash(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _shard_key(src: Source, cfg: DataConfig) -> str:
    files = []
    for p in src.files():
        st = p.stat()
        files.append([p.name, st.st_size, st.st_mtime_ns])
    key = {
        "version": STORE_VERSION,
        "folder": str(src.path.resolve()),
        "sample_rate": cfg.sample_rate,
        "frame_length": cfg.frame_length,
        "dtype": cfg.dtype,
        "files": files,
    }
    return _hash({**key, "upsample": True} if cfg.upsample else key)


def _shard_complete(shard: Path, key: str) -> bool:
    marker = shard / "COMPLETE.json"
    try:
        return json.loads(marker.read_text()).get("key") == key
    except (OSError, ValueError):
        return False


def _quantize(frames: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "int16":
        return np.clip(np.round(frames * 32768.0), -32768, 32767).astype(np.int16)
    return np.clip(frames, -1.0, 1.0).astype(np.float16)


def _decode_into(
    out: BinaryIO, plan: list[tuple[Path, int]], cfg: DataConfig, desc: str, progress: bool
) -> tuple[list[dict], list[dict[str, str]]]:
    """Decode file by file, appending quantised frames to ``out`` (the .npy's data part).

    Plain writes, not a writable memmap, so written pages are page cache that never
    counts against this process: memory stays at about one decoded file.
    """
    rows, skipped, pos = [], [], 0
    for f, planned in tqdm(plan, desc=desc, unit="file", disable=not progress, leave=False):
        try:
            x = data.load_audio(f, cfg.sample_rate, upsample=cfg.upsample)
            frames = data.frame_audio(x, cfg.frame_length)[:planned]
            if len(frames) == 0:
                raise AudioError(f, "shorter than one window after decoding")
        except AudioError as err:
            log.warning("skipping %s", err)
            skipped.append({"file": str(f), "problem": err.problem})
            continue
        out.write(_quantize(frames, cfg.dtype).tobytes())
        silent = ~np.any(frames != 0, axis=1)
        for j in range(len(frames)):
            rows.append(
                {
                    "name": f.name,
                    "offset": j * cfg.frame_length,
                    "utterance": data.utterance_id(f),
                    "silent": bool(silent[j]),
                }
            )
        pos += len(frames)
    return rows, skipped


def _build_shard(src: Source, cfg: DataConfig, shard: Path, key: str, progress: bool) -> None:
    """Decode one folder into ``shard`` (frames.npy, frames.csv, skipped.csv, marker)."""
    plan, skipped = _plan_shard(src, cfg)
    for s in skipped:
        log.warning("skipping %s: %s", s["file"], s["problem"])
    for stale in shard.parent.glob(f".{shard.name}.*.partial"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = _tmp_name(shard, "partial")
    tmp.mkdir(parents=True)
    try:
        _fill_shard(tmp, plan, skipped, src, cfg, key, progress)
        shutil.rmtree(shard, ignore_errors=True)
        os.replace(tmp, shard)
    except OSError:
        if _shard_complete(shard, key):  # another process finished the same shard first
            return
        raise
    finally:  # a full disk or an interrupt leaves no partial shard behind
        shutil.rmtree(tmp, ignore_errors=True)


def _fill_shard(
    tmp: Path, plan: list, skipped: list, src: Source, cfg: DataConfig, key: str, progress: bool
) -> None:
    """Write frames.npy, frames.csv, skipped.csv and the marker of a shard into ``tmp``."""
    capacity = sum(n for _, n in plan)
    dtype = np.int16 if cfg.dtype == "int16" else np.float16
    mm = np.lib.format.open_memmap(  # allocates the .npy (sparse) from header durations
        tmp / "frames.npy", mode="w+", dtype=dtype, shape=(max(capacity, 1), cfg.frame_length)
    )
    header = mm.offset
    del mm
    with open(tmp / "frames.npy", "r+b") as fh:
        fh.seek(header)
        rows, more = _decode_into(fh, plan, cfg, src.folder, progress)
    pd.DataFrame(rows, columns=["name", "offset", "utterance", "silent"]).to_csv(
        tmp / "frames.csv", index=False
    )
    pd.DataFrame(skipped + more, columns=["file", "problem"]).to_csv(
        tmp / "skipped.csv", index=False
    )
    marker = {"key": key, "folder": src.folder, "n_frames": len(rows), "files": len(plan)}
    (tmp / "COMPLETE.json").write_text(json.dumps(marker))


def _read_shard(shard: Path) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    marker = json.loads((shard / "COMPLETE.json").read_text())
    table = pd.read_csv(shard / "frames.csv", dtype={"name": str, "utterance": str})
    skipped = pd.read_csv(shard / "skipped.csv", dtype=str).fillna("")
    return table, skipped, int(marker["n_frames"])


def default_store_dir(cfg: DataConfig) -> Path:
    """Where :func:`prepare_store` keeps the store of ``cfg`` by default.

    Args:
        cfg: The data config.

    Returns:
        ``$GPWAVE_DATA/stores/<hash of root, sample rate, frame length, dtype>``.
    """
    from gpwave.download import default_data_dir

    d = cfg.to_dict()
    parts = [STORE_VERSION, d["root"], cfg.sample_rate, cfg.frame_length, cfg.dtype]
    key = _hash(parts + ["upsample"] if cfg.upsample else parts)
    return default_data_dir() / "stores" / key[:16]


#: Scale of int16 frames: ``sample * INT16_SCALE`` lies in [-1, 1) (exact in float32).
INT16_SCALE = 1.0 / 32768.0


def stored_to_float(x: Any) -> Any:
    """Frames as stored (int16 or float16) as float32 in [-1, 1]; numpy or torch, any device.

    Both conversions are exact, so frames converted on the GPU equal those converted here.

    Args:
        x: A numpy array or torch tensor of stored frames.

    Returns:
        The same kind of array, float32.
    """
    y = x.astype(np.float32) if isinstance(x, np.ndarray) else x.float()
    if str(x.dtype).endswith("int16"):
        y *= INT16_SCALE
    return y


class FrameStore:
    """Decoded frames in memory-mapped shards plus an index; read random rows fast.

    Layout of ``path``: ``store.json`` (config, shards, sample rate, frame length),
    ``index.csv`` (one row per frame: row, file, offset, label, generator, folder,
    utterance, split, silent), ``skipped.csv`` (file, problem) and
    ``shards/<folder>/{frames.npy, frames.csv, skipped.csv, COMPLETE.json}``.

    Args:
        path: The store folder.
        meta: The parsed ``store.json``.
        index: The frame index.
        skipped: Files that were reported and skipped.
    """

    def __init__(self, path: Path, meta: dict, index: pd.DataFrame, skipped: pd.DataFrame):
        self.path = Path(path)
        self.meta = meta
        self.index = index
        self.skipped = skipped
        self.sample_rate = int(meta["sample_rate"])
        self.frame_length = int(meta["frame_length"])
        self.dtype = meta["dtype"]
        self.generators: list[str] = list(meta["generators"])
        self._bases = np.array([s["base"] for s in meta["shards"]], dtype=np.int64)
        self._arrays: list[np.ndarray] | None = None

    @classmethod
    def open(cls, path: str | Path) -> FrameStore:
        """Open a prepared store (its index is that of the latest prepare).

        Args:
            path: The store folder (holding ``store.json``).

        Returns:
            The store.

        Raises:
            DataError: If the folder holds no complete store.
        """
        path = Path(path)
        try:
            meta = json.loads((path / "store.json").read_text())
            index = pd.read_csv(
                path / "index.csv",
                dtype={"file": str, "generator": str, "folder": str, "utterance": str},
            )
            skipped = pd.read_csv(path / "skipped.csv", dtype=str).fillna("")
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: not a complete frame store ({err})") from err
        index["split"] = index["split"].astype(object)
        return cls(path, meta, index, skipped)

    def _open_arrays(self) -> list[np.ndarray]:
        if self._arrays is None:
            self._arrays = [
                np.load(self.path / "shards" / s["folder"] / "frames.npy", mmap_mode="r")[
                    : s["n_frames"]
                ]
                for s in self.meta["shards"]
            ]
        return self._arrays

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_arrays"] = None  # memmaps are reopened in each DataLoader worker
        return state

    def __len__(self) -> int:
        return len(self.index)

    def read_stored(
        self, rows: Sequence[int] | np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Frames by row number, as stored (int16 or float16: half the bytes of float32).

        The training input pipeline moves these to the device and converts them there
        with :func:`stored_to_float`.

        Args:
            rows: Row numbers (any order, repeats allowed).
            out: Array to write into (e.g. shared memory), (len(rows), frame_length) of
                the store's dtype; None: a new one.

        Returns:
            Array (len(rows), frame_length) of the store's dtype.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row out of range 0..{len(self) - 1}")
        arrays = self._open_arrays()
        if out is None:
            out = np.empty((rows.size, self.frame_length), dtype=np.dtype(self.dtype))
        shard = np.searchsorted(self._bases, rows, side="right") - 1
        for k in np.unique(shard):
            sel = np.nonzero(shard == k)[0]
            local = rows[sel] - self._bases[k]
            order = np.argsort(local, kind="stable")
            out[sel[order]] = arrays[k][local[order]]
        return out

    def read(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames by row number, as float32 in [-1, 1].

        Args:
            rows: Row numbers (any order, repeats allowed).

        Returns:
            Array (len(rows), frame_length), float32.
        """
        return stored_to_float(self.read_stored(rows))

    def __repr__(self) -> str:
        return (
            f"FrameStore({self.path}, frames={len(self)}, sample_rate={self.sample_rate}, "
            f"frame_length={self.frame_length}, dtype={self.dtype})"
        )


def _assemble(
    sources: list[Source], store_dir: Path
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    tables, skipped, shards, base = [], [], [], 0
    for src in sources:
        table, skip, n = _read_shard(store_dir / "shards" / src.folder)
        table = table.iloc[:n]
        tables.append(
            pd.DataFrame(
                {
                    "row": np.arange(base, base + n, dtype=np.int64),
                    "file": [str(src.path.absolute() / name) for name in table["name"]],
                    "offset": table["offset"].to_numpy(np.int64),
                    "label": src.label,
                    "generator": src.name,
                    "folder": src.folder,
                    "utterance": table["utterance"].to_numpy(),
                    "split": "",
                    "silent": table["silent"].to_numpy(bool),
                }
            )
        )
        skipped.append(skip)
        shards.append({"folder": src.folder, "base": base, "n_frames": n})
        base += n
    index = pd.concat(tables, ignore_index=True)
    skipped_df = pd.concat(skipped, ignore_index=True)[["file", "problem"]]
    return index, skipped_df, shards


def _current_store(store_dir: Path, key: str) -> FrameStore | None:
    """The store in ``store_dir`` if its last prepare had exactly this key, else None."""
    try:
        meta = json.loads((store_dir / "store.json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("key") != key or not (store_dir / "index.csv").is_file():
        return None
    try:
        return FrameStore.open(store_dir)
    except DataError:
        return None


def prepare_store(
    cfg: DataConfig, store_dir: str | Path | None = None, progress: bool = True
) -> FrameStore:
    """Decode a data root once into a frame store, reusing every folder already done.

    Each folder becomes one shard keyed on the config and its file list (names, sizes,
    mtimes); a shard whose completion marker matches is reused, so an interrupted
    prepare resumes at the folder it stopped in and a second prepare decodes nothing.
    Files that cannot be used are logged, skipped and listed in ``store.skipped``.

    Args:
        cfg: What to read and how to cut and split it.
        store_dir: Where the store lives (default :func:`default_store_dir`).
        progress: Show tqdm progress bars.

    Returns:
        The opened store.

    Raises:
        DataError: Missing root, no usable folder, or no frame at all.
    """
    check_option(cfg.dtype, StoreDtype, "dtype")
    sources = discover_sources(cfg.root, cfg.only_use)
    store_dir = Path(store_dir) if store_dir is not None else default_store_dir(cfg)
    make_dir(store_dir / "shards", "the frame store", "GPWAVE_DATA (or --store)")
    keys = {src.folder: _shard_key(src, cfg) for src in sources}
    store_key = _hash({"config": cfg.to_dict(), "shards": keys})
    if (current := _current_store(store_dir, store_key)) is not None:
        return current  # nothing changed since the last prepare: no decoding, no rewrite
    for src in tqdm(sources, desc="folders", unit="folder", disable=not progress):
        shard, key = store_dir / "shards" / src.folder, keys[src.folder]
        with _locked(store_dir / "shards" / f".{src.folder}.lock"):
            if not _shard_complete(shard, key):
                _build_shard(src, cfg, shard, key, progress)
    index, skipped, shards = _assemble(sources, store_dir)
    if len(index) == 0:
        raise DataError(f"{cfg.root}: no file yields a single {cfg.seconds:g} s frame")
    index["split"] = assign_splits(index, cfg)
    if len(skipped):
        log.warning("%d file(s) skipped; listed in %s", len(skipped), store_dir / "skipped.csv")
    meta = {
        "version": STORE_VERSION,
        "config": cfg.to_dict(),
        "sample_rate": cfg.sample_rate,
        "frame_length": cfg.frame_length,
        "dtype": cfg.dtype,
        "generators": [s.name for s in sources],
        "shards": shards,
        "key": store_key,
    }
    _atomic_write_csv(store_dir / "index.csv", index)
    _atomic_write_csv(store_dir / "skipped.csv", skipped)
    _atomic_write_text(store_dir / "store.json", json.dumps(meta, indent=1))
    return FrameStore(store_dir, meta, index, skipped)


# --- selecting frames and loading them ----------------------------------------------------
def _names(store: FrameStore, names: str | Sequence[str]) -> list[str]:
    """Generator names for generator or folder names; unknown names are an error."""
    names = [names] if isinstance(names, str) else list(names)
    by_folder = dict(zip(store.index["folder"], store.index["generator"], strict=False))
    known = set(by_folder.values())
    out = [by_folder.get(n, n) for n in names]
    unknown = [n for n, g in zip(names, out, strict=True) if g not in known]
    if unknown:
        raise DataError(f"{store.path}: no frames of {unknown}; the store has {sorted(known)}")
    return out


def _cap(rows: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    if n is None or len(rows) <= n:
        return rows
    return rng.choice(rows, size=n, replace=False)


def select_frames(
    store: FrameStore,
    split: Split,
    generators: str | Sequence[str] | None = None,
    *,
    real: str | None = "ljspeech",
    balance: bool = True,
    limit: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Row numbers of one split: real frames and fake frames, balanced and capped, seeded.

    Like the reference's ``limit_train``/``cross_limit``: with ``balance`` the larger
    class is subsampled to the size of the smaller one, and ``limit`` caps each class.

    Notebook: notebooks/06_attribution.py

    Args:
        store: The frame store.
        split: "train", "val" or "test".
        generators: Fake generator names or folder names (None: every fake).
        real: Name of the real source to include (None: none).
        balance: Subsample so real and fake have the same number of frames.
        limit: At most this many frames per class (None: no cap).
        seed: Seed of the subsampling.

    Returns:
        Sorted row numbers (int64).

    Raises:
        DataError: A generator or real name the store does not hold.
    """
    check_option(split, Split, "split")
    idx = store.index
    in_split = (idx["split"] == split).to_numpy()
    if generators is None:
        fake_mask = (idx["label"] == 1).to_numpy()
    else:
        fake_mask = idx["generator"].isin(_names(store, generators)).to_numpy()
    fake = idx["row"].to_numpy()[in_split & fake_mask]
    real_rows = np.empty(0, dtype=np.int64)
    if real is not None:
        real_mask = (idx["generator"] == _names(store, real)[0]).to_numpy()
        real_rows = idx["row"].to_numpy()[in_split & real_mask & ~fake_mask]
    rng = np.random.default_rng(seed)
    if balance and len(fake) and len(real_rows):
        n = min(len(fake), len(real_rows))
        fake, real_rows = _cap(fake, n, rng), _cap(real_rows, n, rng)
    rows = np.concatenate([_cap(real_rows, limit, rng), _cap(fake, limit, rng)])
    return np.sort(rows).astype(np.int64)
