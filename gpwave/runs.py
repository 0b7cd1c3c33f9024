"""Run folders: their layout, lock, checkpoints, provenance and convergence notes.

A training run writes one folder per seed (``<run>/seed<k>/``): ``last.pt`` (resume
state), ``best.pt`` (the kept checkpoint), ``config.yaml``, ``metrics.json`` and
``test_table.{csv,json,md,html,tex}``. :class:`Run` names those paths, so training, the
notebooks and the CLI never type them by hand. A run holds its folder with a file lock
(:func:`own_folder`); every file is written atomically (a temporary name, then a
rename), and a write that fails (a full disk) leaves no temporary file behind.

Notebook: notebooks/03_train.py
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from gpwave import hub, report
from gpwave.config import TrainConfig
from gpwave.errors import CheckpointError, ConfigError, DataError
from gpwave.models import Detector, load_checkpoint


class SeedRun:
    """The files of one seed of a run (``<run>/seed<k>``).

    Args:
        folder: The seed's folder.

    Example:
        >>> s = Run("results", "dcnn_packets").seed(0)
        >>> s.best.as_posix(), s.metrics.name
        ('results/runs/dcnn_packets/seed0/best.pt', 'metrics.json')
    """

    def __init__(self, folder: str | Path):
        self.dir = Path(folder)
        self.best = self.dir / "best.pt"
        self.last = self.dir / "last.pt"
        self.metrics = self.dir / "metrics.json"
        self.config = self.dir / "config.yaml"
        self.test_table = self.dir / "test_table"

    def read_metrics(self) -> dict[str, Any]:
        """The seed's ``metrics.json``.

        Raises:
            DataError: Not trained yet (no ``metrics.json``).
        """
        if not self.metrics.is_file():
            raise DataError(f"{self.metrics}: missing; train this run first")
        return json.loads(self.metrics.read_text())

    def __repr__(self) -> str:
        return f"SeedRun({str(self.dir)!r})"


class Run:
    """A training run's folder and its seeds: ``Run(results_dir, name).seed(k).best``.

    ``Run(results_dir, name)`` is the book's layout, ``<results_dir>/runs/<name>``;
    :meth:`folder` takes any folder (``gpwave train --out``'s ``<out>/<grid point>``).

    Args:
        results_dir: The results folder.
        name: The run's name (a key of ``configs/book.yaml``'s ``runs``).

    Example:
        >>> run = Run.folder("out/dcnn")
        >>> run.seed(2).last.as_posix()
        'out/dcnn/seed2/last.pt'
    """

    def __init__(self, results_dir: str | Path, name: str):
        self.dir = Path(results_dir) / "runs" / name
        self.name = name

    @classmethod
    def folder(cls, path: str | Path) -> Run:
        """The run whose seeds are ``<path>/seed<k>``."""
        run = cls.__new__(cls)
        run.dir, run.name = Path(path), Path(path).name
        return run

    def seed(self, k: int) -> SeedRun:
        """The files of seed ``k``."""
        return SeedRun(self.dir / f"seed{k}")

    def seeds(self) -> list[int]:
        """The seeds that have a ``metrics.json``, ascending."""
        found = (p.parent.name[4:] for p in self.dir.glob("seed*/metrics.json"))
        return sorted(int(k) for k in found if k.isdigit())

    def __repr__(self) -> str:
        return f"Run.folder({str(self.dir)!r})"


CHECKPOINT_FORMAT = "gpwave-checkpoint/1"


class ConvergenceWarning(UserWarning):
    """A training run ended with its best validation EER above ``converged_eer``."""


LOCK_NAME = ".gpwave.lock"


OWNER_NAME = ".gpwave.owner"


@contextlib.contextmanager
def own_folder(folder: str | Path, lead: bool = True) -> Iterator[Path]:
    """Hold an exclusive lock on a run folder for the duration of a run.

    The lock is an OS file lock (:mod:`filelock`), so it dies with its process: after a
    crash or ``kill -9`` the next run (or ``--resume``) gets it at once. The holder
    writes its pid, host and start time next to the lock, so a second run into the
    same folder fails immediately with a message naming the holder.

    Args:
        folder: The folder (created if missing).
        lead: Only the lead process of a distributed run takes the lock.

    Yields:
        The folder.

    Raises:
        ConfigError: Another run holds the folder.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not lead:
        yield folder
        return
    lock, owner = FileLock(folder / LOCK_NAME, timeout=0), folder / OWNER_NAME
    try:
        lock.acquire()
    except Timeout:
        holder = owner.read_text().strip() if owner.is_file() else "another process"
        raise ConfigError(
            f"{folder}: already in use by another gpwave run ({holder}); wait for it to "
            "finish or choose another --out"
        ) from None
    try:
        host, pid = socket.gethostname(), os.getpid()
        write_text(owner, f"pid {pid} on {host}, since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        yield folder
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def tmp_name(path: Path) -> Path:
    """A temporary name next to ``path`` that no other process or call can share."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


@contextlib.contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """Write ``path`` through a temporary name, renamed into place when the body succeeds.

    A failed write (a full disk: ``ENOSPC``) removes the temporary file, keeps the old
    ``path`` as it was and is one :class:`~gpwave.errors.DataError` line naming the file.

    Args:
        path: The file to write.

    Yields:
        The temporary path to write to.

    Raises:
        DataError: The write failed with an OS error.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "note.txt"
        >>> with atomic(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text(), [p.name for p in target.parent.iterdir()]
        ('done', ['note.txt'])
    """
    tmp = tmp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        why = "the disk is full" if err.errno == errno.ENOSPC else (err.strerror or str(err))
        raise DataError(f"{path}: could not be written ({why}); the previous file, if "
                        "any, is kept") from None  # fmt: skip
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically (see :func:`atomic`)."""
    with atomic(path) as tmp:
        tmp.write_text(text)


def save(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` a checkpoint atomically (see :func:`atomic`)."""
    with atomic(path) as tmp:
        torch.save(obj, tmp)


def checkpoint(det: Detector, cfg: TrainConfig, seed: int, state: dict[str, Any]) -> dict:
    """A checkpoint of a run's detector, config, seed and training state (CPU tensors)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "detector": det.spec(),
        "model": {k: v.detach().cpu() for k, v in det.state_dict().items()},
        "config": cfg.to_dict(),
        "seed": seed,
        "train_generator": cfg.train_generator,
        **state,
    }


def restore(path: Path, det: Detector, opt: Any, scaler: Any, device: str) -> dict[str, Any]:
    """Load a ``last.pt`` into the detector, optimiser and grad scaler; return it."""
    ckpt = load_checkpoint(path, map_location=device)
    written = dict(ckpt.get("detector") or {})
    calibration = written.pop("calibration", None)  # fitted by the run, not configured
    if written != {k: v for k, v in det.spec().items() if k != "calibration"}:
        raise CheckpointError(f"{path}: was written by a different detector config; cannot resume")
    det.load_state_dict(ckpt["model"])
    det.calibration = calibration  # checked by the detector
    if opt is not None and "optimizer" in ckpt:
        opt.load_state_dict(ckpt["optimizer"])
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    return ckpt


#: Files whose presence means a run folder already holds a run.
RUN_FILES = ("last.pt", "best.pt", "metrics.json")


def check_out(out: Path, run_dirs: Sequence[Path], resume: bool, overwrite: bool) -> None:
    """Refuse to train into ``out`` over an earlier run, or to resume where nothing ran.

    Args:
        out: The ``--out`` folder.
        run_dirs: The run folders this config would write.
        resume: ``--resume`` was given.
        overwrite: ``--overwrite`` was given.

    Raises:
        ConfigError: Runs exist and neither flag is set (the old files are kept), or
            ``resume`` is set but no run folder holds a ``last.pt``.
    """
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other; choose one")
    if resume:
        if not any((d / "last.pt").is_file() for d in run_dirs):
            raise ConfigError(f"{out}: --resume, but no run of this config has a last.pt "
                              "there; check --out, or drop --resume to start afresh")  # fmt: skip
        return
    taken = [d for d in run_dirs if any((d / f).exists() for f in RUN_FILES)]
    if taken and not overwrite:
        raise ConfigError(
            f"{out}: already holds a run ({taken[0]}); nothing was changed. Continue it "
            "with --resume, choose a new --out, or replace it with --overwrite"
        )


def git_commit() -> str:
    """The git commit of the gpwave checkout (``unknown`` outside a repository).

    Returns:
        The commit hash, with ``+dirty`` if the work tree has changes.
    """
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty.strip() else "")


def data_manifest_hash(store: Any, rows: np.ndarray | None = None) -> str:
    """SHA-256 of the frames a run used: folder, file name, offset, split and label.

    Args:
        store: The frame store.
        rows: Rows to hash (None: all).

    Returns:
        Hex digest (independent of where the data root lives).
    """
    idx = store.index if rows is None else store.index.iloc[np.asarray(rows)]
    names = idx["file"].map(lambda f: Path(f).name)
    cols = [idx["folder"], names, idx["offset"].astype(str), idx["split"], idx["label"].astype(str)]
    text = "\n".join("\t".join(map(str, t)) for t in zip(*cols, strict=True))
    return hashlib.sha256(text.encode()).hexdigest()


def command_line(path: Any, out: str | Path, overrides: dict[str, Any] | None = None) -> str:
    """The ``gpwave train`` command line that reproduces a run (for provenance).

    Notebook: notebooks/03_train.py
    """
    sets = " ".join(f"--set {k}={v}" for k, v in (overrides or {}).items())
    src = path if not isinstance(path, dict) else "<config dict>"
    return f"gpwave train {src} --out {out}" + (f" {sets}" if sets else "")


def provenance(cfg: TrainConfig, metrics: dict[str, Any], command: str) -> dict[str, Any]:
    """What :func:`gpwave.hub.publish` records of a run beside its published checkpoint.

    The full resolved config, git commit, data manifest hash, the init checkpoint's md5,
    the best validation metrics (and the test table's pooled row, if scored),
    convergence, the UTC date and the command that reproduces the model.

    Args:
        cfg: The run's config.
        metrics: The run's metrics (:func:`train_one`'s result).
        command: The command line that reproduces it.

    Returns:
        The provenance dict (JSON-safe).
    """
    from datetime import UTC, datetime

    from gpwave import pretrained
    from gpwave.transfer import file_hash

    init_file = hub.source_file(cfg.init) if cfg.init is not None else None
    released = cfg.init in pretrained.PAPER_MODELS
    return {
        "feature": metrics["feature"].get("kind"),
        "feature_config": metrics["feature"],
        "licence": f"{pretrained.LICENCE} (from init {cfg.init})" if released else "",
        "config": cfg.to_dict(),
        "seed": metrics["seed"],
        "git_commit": metrics["git_commit"],
        "data_manifest_hash": metrics["data_manifest_hash"],
        "init": cfg.init,
        "init_md5": file_hash(init_file) if init_file is not None else None,
        "validation": metrics["best"],
        "test_pooled": [r for r in metrics.get("test", []) if r["generator"] == report.POOLED],
        "converged": metrics["converged"],
        "convergence": metrics["convergence"],
        "steps": metrics["steps"],
        "train_seconds": metrics["train_seconds"],
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
    }


def summary(cfg: TrainConfig, run_dir: Path, seed: int, m: dict[str, Any]) -> dict[str, Any]:
    """One line of ``gpwave train``'s output: where a run is and how it did."""
    pooled = [r["eer"] for r in m.get("test", []) if r["generator"] == report.POOLED]
    return {
        "run": str(run_dir),
        "seed": seed,
        "model": cfg.model,
        "feature": m["feature"]["kind"],
        "best_epoch": m["best"]["epoch"],
        "val_eer": m["best"]["val_eer"],
        "pooled_test_eer": pooled[0] if pooled else None,
        "converged": m["converged"],
        "train_seconds": m["train_seconds"],
    }


def convergence(best: dict[str, Any], converged_eer: float) -> dict[str, Any]:
    """Did a run learn? Judged on its kept checkpoint's validation EER (seen generator).

    Args:
        best: The run's ``best`` entry (``val_eer``, ``val_loss``, ``epoch``).
        converged_eer: Largest best validation EER counted as converged (chance: 0.5).

    Returns:
        ``{"converged": bool, "reason": str}``.
    """
    eer, loss = best.get("val_eer"), best.get("val_loss")
    if eer is None or eer != eer:
        return {"converged": False, "reason": "no validation EER was measured"}
    text = f"best validation EER {eer:.3f} (epoch {best.get('epoch')}, loss {loss:.3f})"
    if eer > converged_eer:
        near = abs(eer - 0.5) <= 0.15
        chance = " - near chance (EER 0.5, loss ln 2 = 0.693)" if near else ""
        return {"converged": False, "reason": f"{text} > converged_eer {converged_eer}{chance}"}
    return {"converged": True, "reason": f"{text} <= converged_eer {converged_eer}"}


def convergence_check(
    best: dict[str, Any], cfg: TrainConfig, out_dir: Path, lead: bool
) -> dict[str, Any]:
    """``converged`` and ``convergence`` (the reason) for the metrics; warns if not."""
    check = convergence(best, cfg.converged_eer)
    if not check["converged"] and lead:
        warnings.warn(
            f"{out_dir}: NOT CONVERGED - {check['reason']}; its test scores measure an "
            "untrained detector",
            ConvergenceWarning,
            stacklevel=3,
        )
    return {"converged": check["converged"], "convergence": check["reason"]}


def convergence_note(metrics: dict[str, Any]) -> str:
    """One line on how long a run trained and whether it converged (for notebooks, logs).

    Notebook: notebooks/03_train.py

    Args:
        metrics: A run's metrics (``train_one``'s return value or ``metrics.json``).

    Returns:
        ``"seed 0: converged - best validation EER ... (210 steps, 10 epochs, stopped:
        epochs)"``, or the same starting ``NOT CONVERGED`` when it did not.
    """
    head = "converged" if metrics.get("converged") else "NOT CONVERGED"
    return (
        f"seed {metrics.get('seed')}: {head} - {metrics.get('convergence')} "
        f"({metrics.get('steps')} steps, {len(metrics.get('history', []))} epochs, "
        f"stopped: {metrics.get('stopped')})"
    )


def runs_overview(results_dir: str | Path, runs: Sequence[str]) -> pd.DataFrame:
    """What each seed of some training runs trained on, for how long, and if it converged.

    The first output of every chapter that reads trained runs, so a reader sees at once
    whether its numbers come from detectors that learned.

    Notebook: notebooks/04_generalization.py

    Args:
        results_dir: The results folder (runs in ``<results_dir>/runs``, see :class:`Run`).
        runs: Run names.

    Returns:
        One row per run and seed: model, feature, training frames, optimiser steps,
        epochs, training seconds, best validation EER, converged (bool) and the reason.

    Raises:
        DataError: A run with no ``metrics.json`` (not trained yet).
    """
    rows = []
    for run in runs:
        r = Run(results_dir, run)
        if not r.seeds():
            raise DataError(f"{r.dir}: no seed*/metrics.json; train {run} first")
        for k in r.seeds():
            m = r.seed(k).read_metrics()
            rows.append(
                {
                    "run": run,
                    "seed": m.get("seed"),
                    "model": m.get("model"),
                    "feature": (m.get("feature") or {}).get("kind"),
                    "train_frames": m.get("n_train_frames"),
                    "steps": m.get("steps"),
                    "epochs": len(m.get("history", [])),
                    "train_seconds": round(float(m.get("train_seconds") or 0.0)),
                    "best_val_eer": (m.get("best") or {}).get("val_eer"),
                    "converged": bool(m.get("converged")),
                    "reason": m.get("convergence", ""),
                }
            )
    return pd.DataFrame(rows)
