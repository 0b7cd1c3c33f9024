"""One place to get a detector: a released paper model, a published model or a checkpoint.

:func:`resolve` turns a name or a path into a ready :class:`~gpwave.models.Detector`
(eval mode, on the device asked for); the CLI's ``--model`` and checkpoint arguments,
training's ``init``, evaluation, the notebooks and the benchmarks all go through it.

* A **released** model (``paper-sym5``, ``paper-stft``): the paper's checkpoint, fetched
  and md5-verified on first use (:mod:`gpwave.pretrained` converts it).
* A **published** model: any ``$GPWAVE_DATA/models/<name>.pt`` that has its provenance
  ``<name>.json`` beside it, written by :func:`publish` (``publish: NAME`` in a training
  config). What ``gpwave models`` says about it comes from that JSON alone.
* A **checkpoint** file written by :mod:`gpwave.train` (``best.pt``, ``last.pt``), loaded
  with ``torch.load(..., weights_only=True)``.

Notebook: notebooks/04_generalization.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from gpwave import pretrained
from gpwave.constants import MODEL_NAME_PATTERN
from gpwave.errors import CheckpointError, ConfigError
from gpwave.models import Detector, load_checkpoint

#: What a published model's name may look like (and not start with ``paper-``).
NAME_PATTERN = MODEL_NAME_PATTERN


def models_dir(dest: str | Path | None = None) -> Path:
    """The folder of released and published models: ``<dest or $GPWAVE_DATA>/models``.

    Args:
        dest: Data folder (default ``$GPWAVE_DATA``).

    Returns:
        The folder (it may not exist yet).
    """
    from gpwave.download import default_data_dir

    return Path(dest if dest is not None else default_data_dir()) / "models"


def check_name(name: str) -> str:
    """Refuse a name that cannot be a published model's.

    Args:
        name: The proposed name.

    Returns:
        ``name``.

    Raises:
        ConfigError: Not lower-case letters, digits, ``.``, ``_``, ``-``, or ``paper-...``.

    Example:
        >>> check_name("my-detector")
        'my-detector'
    """
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise ConfigError(f"publish={name!r}: a model name is lower-case letters, digits, "
                          "'.', '_' and '-' (at most 64)")  # fmt: skip
    if name.startswith("paper-"):
        raise ConfigError(f"publish={name!r}: paper-... names the released models")
    return name


def published_path(name: str, dest: str | Path | None = None) -> Path:
    """Where a published model lives: ``<models_dir>/<name>.pt`` (provenance: ``.json``).

    Args:
        name: The model's name (:func:`check_name`).
        dest: Data folder (default ``$GPWAVE_DATA``).

    Returns:
        The ``.pt`` path (it may not exist yet).

    Example:
        >>> published_path("my-detector", dest="/data").as_posix()
        '/data/models/my-detector.pt'
    """
    return models_dir(dest) / f"{check_name(name)}.pt"


def published_names(dest: str | Path | None = None) -> list[str]:
    """Names of the published models: every ``<name>.pt`` with a ``<name>.json`` beside it.

    Args:
        dest: Data folder (default ``$GPWAVE_DATA``).

    Returns:
        Sorted names.
    """
    folder = models_dir(dest)
    if not folder.is_dir():
        return []
    return sorted(
        p.stem
        for p in folder.glob("*.pt")
        if p.with_suffix(".json").is_file() and re.fullmatch(NAME_PATTERN, p.stem)
    )


def _unknown(name: str) -> CheckpointError:
    published = ", ".join(published_names()) or "none yet"
    return CheckpointError(
        f"{name}: not a released model ({', '.join(pretrained.PAPER_MODELS)}), a published "
        f"model in {models_dir()} ({published}) or a checkpoint file (gpwave models lists them)"
    )


def source_file(name_or_path: str | Path) -> Path:
    """The file a name or path stands for (a released one is fetched if missing).

    Args:
        name_or_path: A released name, a published name or a checkpoint path.

    Returns:
        The file (a path that is not a model's name is returned as it is).

    Raises:
        CheckpointError: A name that is no released or published model.
    """
    text = str(name_or_path)
    if text in pretrained.PAPER_MODELS:
        return pretrained.checkpoint_path(text)
    if re.fullmatch(NAME_PATTERN, text) and not text.endswith(".pt"):
        path = models_dir() / f"{text}.pt"
        if path.is_file() and path.with_suffix(".json").is_file():
            return path
    path = Path(name_or_path).expanduser()
    if path.is_file() or not re.fullmatch(NAME_PATTERN, text):
        return path  # a path: a missing one is "checkpoint not found" when loaded
    raise _unknown(text)


def resolve(
    name_or_path: str | Path | torch.nn.Module, device: str | torch.device = "cpu"
) -> Detector:
    """A ready detector (eval mode, on ``device``) from a name, a path or a detector.

    Notebook: notebooks/04_generalization.py

    Args:
        name_or_path: ``paper-sym5``/``paper-stft`` (released), a published model's name
            (:func:`published_names`), a gpwave checkpoint file, or a loaded detector
            (returned as it is, moved to ``device``).
        device: Where the detector lives.

    Returns:
        The :class:`~gpwave.models.Detector`.

    Raises:
        CheckpointError: An unknown name, a missing file, or a file that is not a usable
            checkpoint (the message names it).

    Example:
        >>> import tempfile, torch
        >>> from gpwave.models import Detector
        >>> det = Detector({"kind": "lfcc"}, "linear", n_samples=2205)
        >>> path = Path(tempfile.mkdtemp()) / "best.pt"
        >>> torch.save({"detector": det.spec(), "model": det.state_dict()}, path)
        >>> resolve(path).model_name
        'linear'
    """
    if isinstance(name_or_path, torch.nn.Module):
        return name_or_path.to(device).eval()
    if str(name_or_path) in pretrained.PAPER_MODELS:
        return pretrained.paper_detector(str(name_or_path), device=device)
    return Detector.load(source_file(name_or_path), map_location=device)


def spec(name_or_path: str | Path) -> dict[str, Any]:
    """The detector spec (:meth:`~gpwave.models.Detector.spec`) of a model, without weights.

    Args:
        name_or_path: As for :func:`resolve`.

    Returns:
        Its feature, model, n_samples, model_kwargs and level_norm.

    Raises:
        CheckpointError: An unknown name or not a gpwave checkpoint.
    """
    if str(name_or_path) in pretrained.PAPER_MODELS:
        return pretrained.architecture(str(name_or_path)).spec()
    path = source_file(name_or_path)
    try:
        return dict(load_checkpoint(path)["detector"])
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: not a gpwave checkpoint ({err})") from None


def publish(
    checkpoint: str | Path,
    name: str,
    provenance: dict[str, Any],
    overwrite: bool = False,
    dest: str | Path | None = None,
) -> Path:
    """Publish a checkpoint as ``<models_dir>/<name>.pt`` with its provenance ``.json``.

    Both files are written atomically (the JSON last: a model counts as published only
    once its provenance is there).

    Args:
        checkpoint: A gpwave checkpoint (a run's ``best.pt``).
        name: The model's name (:func:`check_name`).
        provenance: What made it (config, commit, data hash, metrics, date, command);
            ``name``, ``file`` and ``md5`` are added.
        overwrite: Replace a model already published under ``name``.
        dest: Data folder (default ``$GPWAVE_DATA``).

    Returns:
        The published ``.pt`` path.

    Raises:
        ConfigError: ``name`` is taken and ``overwrite`` is not set.
    """
    from gpwave.transfer import file_hash

    target = published_path(name, dest)
    refuse_taken(name, overwrite, dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        shutil.copyfile(checkpoint, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    prov = {"name": name, "file": target.name, "md5": file_hash(target), **provenance}
    meta = target.with_suffix(".json")
    tmp = meta.with_name(f".{meta.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(prov, indent=2, default=str) + "\n")
    os.replace(tmp, meta)
    return target


def refuse_taken(name: str, overwrite: bool, dest: str | Path | None = None) -> None:
    """Refuse to publish over an existing model unless ``overwrite`` says so.

    Args:
        name: The model's name.
        overwrite: Replacing it was asked for explicitly.
        dest: Data folder (default ``$GPWAVE_DATA``).

    Raises:
        ConfigError: The name is taken (the message says how to replace it).
    """
    target = published_path(name, dest)
    if not overwrite and (target.exists() or target.with_suffix(".json").exists()):
        raise ConfigError(
            f"publish={name!r}: {target} already exists; choose another name or pass "
            "--overwrite to replace it"
        )


def _published_row(name: str) -> dict[str, Any]:
    """The :func:`list_models` row of a published model, from its provenance JSON only."""
    meta = published_path(name).with_suffix(".json")
    try:
        prov = json.loads(meta.read_text())
    except (OSError, ValueError) as err:
        prov = {"note": f"unreadable provenance {meta.name} ({err})"}
    cfg = prov.get("config") if isinstance(prov.get("config"), dict) else {}
    val = prov.get("validation") if isinstance(prov.get("validation"), dict) else {}
    data = f"{cfg.get('real')} vs {cfg.get('train_generator')} ({cfg.get('data_dir')})"
    if cfg.get("pool"):
        families = ", ".join(cfg.get("pool_families") or []) or "all"
        data += f" + pool {cfg['pool']} (vocoder families: {families})"
    note = prov.get("note") or "; ".join(
        filter(None, [f"trained {prov.get('date', '?')}" + (
            f", best validation EER {val['val_eer']:.3f}" if "val_eer" in val else ""),
            "NOT CONVERGED" if prov.get("converged") is False else "",
            "verdicts calibrated on validation" if val.get("calibration") else "",
            prov.get("command", "")])
    )  # fmt: skip
    return {"name": name, "feature": prov.get("feature", ""), "licence": prov.get("licence", ""),
            "source": "gpwave", "commit": prov.get("git_commit", ""),
            "training_data": data if cfg else "", "mean": np.nan, "std": np.nan,
            "note": note}  # fmt: skip


def list_models() -> pd.DataFrame:
    """The named detectors :func:`resolve` knows, and where they came from.

    Returns:
        One row per model: name, feature, licence, source repository, commit, training
        data, the fitted mean/std and a note; released models first, then every published
        model (described by its own provenance JSON).
    """
    from gpwave.download import models_manifest

    manifest = models_manifest().set_index("feature")
    rows = []
    for p in pretrained.PAPER_MODELS.values():
        row = manifest.loc[p.feature]
        rows.append({
            "name": p.name, "feature": p.feature, "licence": row["licence"],
            "source": row["source_repo"], "commit": row["source_commit"],
            "training_data": pretrained.TRAINING_DATA, "mean": p.mean, "std": p.std,
            "note": p.note,
        })  # fmt: skip
    rows.extend(_published_row(name) for name in published_names())
    return pd.DataFrame(rows)
