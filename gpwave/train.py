"""Training: real vs one generator, seeded, checkpointed every epoch, resumable, DDP.

One run trains a :class:`gpwave.models.Detector` on the frames of one real source and one
generator (frames from :mod:`gpwave.data`, features computed on the device inside the
detector), validates every epoch, keeps the best checkpoint by validation EER, and at
the end scores the test split of every generator. A YAML config whose list-valued keys
are expanded to their cartesian product describes a grid of runs (like the reference's
grid search); each run x seed writes ``last.pt``, ``best.pt``, ``config.yaml``,
``metrics.json`` and ``test_table.{csv,json,md,html,tex}`` into its own folder.

Configuration: :class:`TrainConfig` is the one source of defaults (protocol files such
as ``configs/mini.yaml`` set only what differs); it is a validated dataclass (why, see
:mod:`gpwave.config`), so every type and range is checked when a config is read, before
any data work, and a mistake is one :class:`~gpwave.errors.ConfigError` line naming the
key, the value and what is allowed. A run owns its folder: a file lock refuses a second
run into it at once, naming the holder; ``--resume`` refuses settings outside
:data:`RESUMABLE` that differ from the checkpoint's and applies those inside it.

Reproducibility: weights are initialised from ``seed``; the shuffling and dropout of
epoch ``e`` are seeded from ``(seed, e)`` alone, so a run resumed after epoch k ends with
the same weights as an uninterrupted one (on the CPU; CUDA kernels may not be
bit-deterministic). Under ``torchrun`` the model is wrapped in DistributedDataParallel
(NCCL on GPU, gloo on CPU) with SyncBatchNorm; every step's global batch is the same set
of frames as in a single-process run, split across ranks.

Fine-tuning and augmentation: ``init`` starts a run from a released or published model
or a checkpoint (:func:`initial_detector`), ``augment`` perturbs the training waveforms
of both classes on the fly with :mod:`gpwave.perturb` (:func:`augment_batch`, drawn from
``(seed, epoch, step)`` so resumed runs stay identical), ``freeze`` keeps parameters
fixed, and ``publish`` copies the best checkpoint with its provenance to
``$GPWAVE_DATA/models`` as a named model (:func:`publish`).

Input pipeline: without cached features, each rank's batches are read from the frame
store by :func:`batch_loader` (a DataLoader with ``workers`` reader processes, prefetch,
pinned memory on CUDA) as int16, copied to the device without blocking and converted to
float there; the batch losses stay on the device until the epoch ends. Reading does not
touch the global RNG, so any number of workers trains bit-identically to none.
``benchmarks/bench_pipeline.py`` sets its frames/s beside the model step's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import re
import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from tqdm.auto import tqdm

from gpwave import evaluate, hub
from gpwave.config import check_fields, check_keys, load_yaml, parse_scalar, resolve_device
from gpwave.constants import ModelName
from gpwave.errors import CheckpointError, ConfigError, DataError
from gpwave.hub import NAME_PATTERN
from gpwave.models import (
    Detector,
    count_parameters,
    load_checkpoint,
    log_odds,
    sync_batchnorm,
)

CHECKPOINT_FORMAT = "gpwave-checkpoint/1"


class ConvergenceWarning(UserWarning):
    """A training run ended with its best validation EER above ``converged_eer``."""


@dataclass
class TrainConfig:
    """Everything one training run needs; YAML keys are these field names.

    Notebook: notebooks/03_train.py

    Attributes:
        data_dir: Root of letter-prefixed folders.
        store_dir: Frame-store folder (None: the data module's default under $GPWAVE_DATA).
        sample_rate: Sample rate in Hz.
        seconds: Frame length in seconds.
        real: Name of the real source.
        train_generator: The one generator trained against (paper: fbmelgan; mini: melgan).
        test_generators: Generators scored at the end (None: every one).
        only_test_folders: Folders whose frames all go to the test split.
        split: Utterance fractions for train, val, test.
        split_seed: Seed of the utterance split and of class balancing.
        limit_train: At most this many training frames per class (None: all).
        limit_val: At most this many validation frames per class.
        limit_test: At most this many test frames per folder in the final table.
        feature: :class:`gpwave.transforms.FeatureConfig` fields (kind, wavelet, level...).
        model: Model name (:data:`gpwave.constants.ModelName`).
        model_kwargs: Passed to the model's constructor.
        level_norm: Scale each frame to unit RMS before the features (gain invariance).
        epochs: Training epochs.
        batch_size: Frames per optimiser step (global, over all ranks).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        seeds: One run per seed.
        device: "auto" (CUDA if present), "cpu", "cuda" or "cuda:N".
        amp: Mixed precision (float16 autocast + GradScaler) on CUDA; ignored on CPU.
        cache_features: Compute features of the training frames once and keep them in
            memory (fast on CPU for small sets; off for full WaveFake).
        eval_test: Score the test split of every generator at the end.
        n_boot: Bootstrap resamples of the test table's CIs.
        threads: torch CPU threads (None: torch's default).
        progress: Progress bars.
        max_steps: Training budget in optimiser steps (None: ``epochs`` full epochs). When
            set, ``epochs`` is not a limit: training runs until this many steps (the last
            epoch may be partial; it is validated and checkpointed like the others).
        patience: Stop after this many validations (one per epoch) without improvement
            of the seen generator's validation EER (ties: loss) (None: never stop early).
        min_delta: An improvement must lower the validation EER, or at equal or lower
            EER the validation loss, by more than this.
        converged_eer: A run whose best validation EER exceeds this (chance: 0.5) is
            flagged ``"converged": false`` in ``metrics.json`` and warned about
            (:class:`ConvergenceWarning`): its test table is not evidence of anything.
        workers: Processes that read training batches from the frame store ahead of the
            model (:func:`batch_loader`; 0: read in the training process). None: up to 4
            per process on CUDA (within the CPUs this process may use), 0 on the CPU,
            where reading is a small share of a step and workers would steal its cores.
        init: Start from these weights instead of a random initialisation: a released or
            published model name (``paper-sym5``; see ``gpwave models``)
            or a gpwave checkpoint file. Feature, model and model_kwargs come from it (a
            conflicting ``feature``/``model``/``model_kwargs`` is refused). Its normaliser
            is kept if ``level_norm`` matches the model's; otherwise it is refitted on the
            training frames as this config preprocesses them (for a paper model: one
            global mean/std, as the reference normalises, so the first layer sees inputs
            scaled as in its training).
        augment: Perturbations applied on the fly to the training waveforms of both
            classes (:mod:`gpwave.perturb`), each a mapping ``{kind, strengths, p}``:
            every frame gets the kind with probability ``p`` (default 1) at a strength
            drawn uniformly from ``strengths``; specs apply in order, independently.
            Draws come from ``(seed, epoch, step)`` alone (:func:`augment_batch`), so a
            resumed run is identical. With ``cache_features`` only the validation
            features are cached (augmentation needs the waveforms).
        freeze: Parameter-name prefixes of the model (e.g. ``cnn``) kept fixed: no
            gradient, and their BatchNorm/dropout stay in eval mode.
        freeze_batchnorm: Keep every BatchNorm layer's running statistics as they start
            (eval mode) while training; every weight still trains. For fine-tuning
            an ``init`` model on a small augmented set, whose batch statistics would
            otherwise replace the released ones within a few dozen steps.
        distill: Weight ``w`` of a consistency loss towards the ``init`` model: each step
            minimises ``(1 - w) * CE + w * KL(teacher || student)``, where the teacher
            is the init model's softmax on the *clean* training frame (computed once
            before training) and the student sees the augmented frame. It teaches
            invariance to the perturbations while keeping the released model's decisions
            on clean audio (0: cross-entropy only; needs ``init``).
        publish: At the end, copy the best checkpoint of the first seed to
            ``$GPWAVE_DATA/models/<publish>.pt`` with ``<publish>.json`` (provenance),
            loadable as ``--model <publish>`` (:func:`gpwave.hub.publish`).
        compile: ``torch.compile`` the training step's model (validation stays eager).
            On this 2-core CPU it made DCNN training steps 1.8x faster than before but
            costs about a minute of compilation per process (``benchmarks/bench_train.py``):
            worth it for runs of more than a few minutes, not for quick ones.
    """

    data_dir: str = "${GPWAVE_DATA}/wavefake-mini"
    store_dir: str | None = None
    sample_rate: int = 22050
    seconds: float = 1.0
    real: str = "ljspeech"
    train_generator: str = "melgan"
    test_generators: list[str] | None = None
    only_test_folders: list[str] = field(default_factory=list)
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split_seed: int = 0
    limit_train: int | None = None
    limit_val: int | None = None
    limit_test: int | None = None
    feature: dict[str, Any] = field(default_factory=dict)
    model: str = "dcnn"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    level_norm: bool = True
    epochs: int = 10
    batch_size: int = 128
    lr: float = 4e-4
    weight_decay: float = 1e-3
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = "auto"
    amp: bool = True
    cache_features: bool = False
    eval_test: bool = True
    n_boot: int = 1000
    threads: int | None = None
    progress: bool = True
    max_steps: int | None = None
    patience: int | None = None
    min_delta: float = 0.0
    converged_eer: float = 0.2
    compile: bool = False
    workers: int | None = None
    init: str | None = None
    augment: list[dict[str, Any]] = field(default_factory=list)
    freeze: list[str] = field(default_factory=list)
    freeze_batchnorm: bool = False
    distill: float = 0.0
    publish: str | None = None

    def __post_init__(self) -> None:
        """Check every field's type and range (ints widen to floats); see :data:`RULES`."""
        check_fields(self, RULES)
        self.augment = check_augment(self.augment, self.sample_rate, self.seconds)
        if self.distill > 0 and self.init is None:
            raise ConfigError(f"distill={self.distill}: distillation needs a teacher; set init")
        try:
            from gpwave.transforms import FeatureConfig

            FeatureConfig.from_dict({"sample_rate": self.sample_rate, **self.feature})
        except (ValueError, TypeError) as err:
            raise ConfigError(f"feature={self.feature!r}: {err}") from err

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build a config from a dict, refusing unknown keys and bad values.

        Args:
            d: Field values (missing ones take defaults).

        Returns:
            The config.

        Raises:
            ConfigError: For keys that are not fields, or values of the wrong type or
                out of range; the one-line message names the key, the value and what
                is allowed.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"a training config is a mapping of keys to values, not {d!r}")
        check_keys(d, cls, "training config")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (YAML/JSON/checkpoint-safe)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def _is_device(v: str) -> bool:
    return re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v) is not None


def _is_split(v: list[float]) -> bool:
    return len(v) == 3 and min(v) >= 0 and abs(sum(v) - 1) < 1e-6


def _not_test_only(data_dir: str) -> bool:
    """False for a folder inside a test-only set of the registry (speakers-tts-mini)."""
    from gpwave.download import only_for_testing

    return only_for_testing(resolve_path(data_dir)) is None


#: Range checks of :class:`TrainConfig` fields beyond their types: predicate, what is allowed.
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "data_dir": (
        _not_test_only,
        "a training folder, not one inside a data set that is test only (the registry's "
        "test_only sets, e.g. speakers-tts-mini: never train or tune on them)",
    ),
    "sample_rate": (lambda v: v > 0, "a positive integer (Hz)"),
    "seconds": (lambda v: v > 0, "a positive number of seconds"),
    "split": (_is_split, "three fractions >= 0 (train, val, test) that sum to 1"),
    "limit_train": (lambda v: v >= 1, "null or an integer >= 1"),
    "limit_val": (lambda v: v >= 1, "null or an integer >= 1"),
    "limit_test": (lambda v: v >= 1, "null or an integer >= 1"),
    "model": (lambda v: v in get_args(ModelName), "one of " + ", ".join(get_args(ModelName))),
    "epochs": (lambda v: v >= 1, "an integer >= 1"),
    "batch_size": (lambda v: v >= 2, "an integer >= 2 (BatchNorm needs 2 frames per step)"),
    "lr": (lambda v: 0 <= v < float("inf"), "a number >= 0 (0 freezes the weights)"),
    "weight_decay": (lambda v: 0 <= v < float("inf"), "a number >= 0"),
    "seeds": (lambda v: len(v) > 0 and min(v) >= 0, "a non-empty list of integers >= 0"),
    "device": (_is_device, "auto, cpu, mps, cuda or cuda:N"),
    "n_boot": (lambda v: v >= 0, "an integer >= 0"),
    "threads": (lambda v: v >= 1, "null or an integer >= 1"),
    "max_steps": (lambda v: v >= 1, "null or an integer >= 1"),
    "patience": (lambda v: v >= 1, "null or an integer >= 1"),
    "min_delta": (lambda v: 0 <= v < float("inf"), "a number >= 0"),
    "converged_eer": (lambda v: 0 <= v <= 1, "an EER between 0 and 1"),
    "workers": (lambda v: v >= 0, "null or an integer >= 0"),
    "publish": (
        lambda v: re.fullmatch(NAME_PATTERN, v) is not None and not v.startswith("paper-"),
        "null or a model name of lower-case letters, digits, '.', '_' and '-' "
        "(not starting with paper-, the released models' prefix)",
    ),
    "freeze": (lambda v: all(v), "a list of non-empty parameter-name prefixes"),
    "distill": (lambda v: 0 <= v <= 1, "a weight between 0 and 1"),
}

#: Keys of one ``augment`` entry: kind (required), strengths (required), p (default 1).
AUGMENT_KEYS = ("kind", "strengths", "p")


def check_augment(specs: list[dict[str, Any]], sample_rate: int, seconds: float) -> list[dict]:
    """Validate ``augment`` specs and fill in ``p``; each strength is tried on a probe frame.

    Args:
        specs: The config's ``augment`` list.
        sample_rate: Sample rate of the frames.
        seconds: Frame length in seconds.

    Returns:
        The specs with ``p`` set and strengths as floats.

    Raises:
        ConfigError: ``augment[i].key=value: ...`` for the first bad entry.
    """
    from gpwave import perturb
    from gpwave.constants import PerturbationKind

    out = []
    probe = np.random.default_rng(0).standard_normal(round(sample_rate * seconds)) * 0.1
    for i, spec in enumerate(specs):
        where = f"augment[{i}]"
        unknown = sorted(set(spec) - set(AUGMENT_KEYS))
        if unknown or not {"kind", "strengths"} <= set(spec):
            raise ConfigError(
                f"{where}={spec!r}: expected keys kind, strengths and optionally p "
                f"(unknown: {', '.join(unknown) or 'none'})"
            )
        kind, strengths, p = spec["kind"], spec["strengths"], spec.get("p", 1.0)
        if kind not in get_args(PerturbationKind):
            kinds = ", ".join(get_args(PerturbationKind))
            raise ConfigError(f"{where}.kind={kind!r}: expected one of {kinds}")
        if not (isinstance(p, int | float) and not isinstance(p, bool) and 0 <= p <= 1):
            raise ConfigError(f"{where}.p={p!r}: expected a probability between 0 and 1")
        ok = (
            isinstance(strengths, list)
            and strengths
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in strengths)
        )
        if not ok:
            raise ConfigError(f"{where}.strengths={strengths!r}: expected a non-empty list "
                              f"of numbers in {perturb.PERTURBATIONS[kind].unit}")  # fmt: skip
        for v in strengths:
            try:
                perturb.apply(probe, sample_rate, kind, v, keep_length=True)
            except (ValueError, RuntimeError) as err:
                raise ConfigError(f"{where}.strengths: {kind} refuses {v!r} ({err})") from None
        out.append({"kind": kind, "strengths": [float(v) for v in strengths], "p": float(p)})
    return out


#: Settings ``--resume`` may change: they do not alter what the finished epochs computed.
#: Every other change is refused (it would mix two runs in one checkpoint).
RESUMABLE = frozenset(
    {"epochs", "lr", "weight_decay", "device", "threads", "progress", "eval_test", "n_boot",
     "limit_test", "test_generators", "cache_features", "data_dir", "store_dir",
     "max_steps", "patience", "min_delta", "converged_eer", "compile", "workers", "publish"}
)  # fmt: skip


# --- grid configs ---------------------------------------------------------------------
_LIST_FIELDS = {"test_generators", "only_test_folders", "split", "seeds", "augment", "freeze"}


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Apply overrides: ``key=value`` text parsed as YAML, or values; ``a.b`` sets nested keys.

    A mapping value is merged into the mapping it overrides (``{"feature": {"kind":
    "stft"}}`` keeps the protocol's wavelet and level); any other value replaces.

    Args:
        raw: The config dict.
        overrides: ``{"epochs": "2", "feature.kind": "stft"}`` (text, as from ``--set``)
            or ``{"epochs": 2, "feature": {"kind": "stft"}}`` (values).

    Returns:
        A new dict.

    Raises:
        ConfigError: A dotted key whose parent is not a mapping.
    """
    out = json.loads(json.dumps(raw))
    for key, text in (overrides or {}).items():
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: {p} is not a mapping, so it has no key {leaf!r}")
        value = parse_scalar(text) if isinstance(text, str) else text
        node[leaf] = _merge(node.get(leaf), value)
    return out


def _merge(old: Any, new: Any) -> Any:
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return json.loads(json.dumps(new))
    return {**old, **{k: _merge(old.get(k), v) for k, v in new.items()}}


def _is_grid(key: str, value: Any) -> bool:
    if not isinstance(value, list):
        return False
    if key in _LIST_FIELDS:
        return bool(value) and all(isinstance(v, list) for v in value)
    return not key.startswith("model_kwargs.")


def expand_grid(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Expand list-valued keys into the cartesian product of configs.

    Top-level keys and ``feature.*`` keys holding a list span the grid; keys that are
    lists by nature (``seeds``, ``split``, ``only_test_folders``, ``test_generators``)
    span it only when given a list of lists; ``model_kwargs`` never does.

    Args:
        raw: A config dict as read from YAML.

    Returns:
        One dict per grid point, with a ``_grid`` entry naming the varied values.
    """
    flat: dict[str, Any] = {}
    for k, v in raw.items():
        if isinstance(v, dict) and k in ("feature", "model_kwargs"):
            flat.update({f"{k}.{kk}": vv for kk, vv in v.items()})
            flat.setdefault(k, {})
        else:
            flat[k] = v
    grid_keys = [k for k, v in flat.items() if _is_grid(k, v)]
    points = []
    for combo in itertools.product(*(flat[k] for k in grid_keys)):
        point = {k: v for k, v in flat.items() if "." not in k}
        point["feature"], point["model_kwargs"] = {}, {}
        for k, v in flat.items():
            if "." in k:
                parent, leaf = k.split(".", 1)
                point[parent][leaf] = v
        for k, v in zip(grid_keys, combo, strict=True):
            if "." in k:
                parent, leaf = k.split(".", 1)
                point[parent][leaf] = v
            else:
                point[k] = v
        point["_grid"] = {k.split(".")[-1]: v for k, v in zip(grid_keys, combo, strict=True)}
        points.append(point)
    return points


def _run_name(grid: dict[str, Any]) -> str:
    if not grid:
        return ""
    text = "_".join(
        f"{k}-{'+'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in grid.items()
    )
    return re.sub(r"[^A-Za-z0-9_.+=-]", "", text)


def read_config(
    path: str | Path | dict[str, Any], overrides: dict[str, Any] | None = None
) -> list[tuple[str, TrainConfig]]:
    """Read, override, expand and validate a training config, before any data work.

    Notebook: notebooks/03_train.py

    Args:
        path: The YAML file (or an already loaded dict).
        overrides: ``key=value`` overrides (see :func:`apply_overrides`).

    Returns:
        ``(run name, config)`` per grid point (the name is empty without a grid).

    Raises:
        ConfigError: A missing or invalid file, an unknown key, a bad value.
    """
    raw = path if isinstance(path, dict) else load_yaml(Path(path))
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a training config is a mapping of keys to values")
    points = []
    for point in expand_grid(apply_overrides(raw, overrides)):
        name = _run_name(point.pop("_grid"))
        try:
            points.append((name, check_model(TrainConfig.from_dict(point))))
        except ConfigError as err:
            where = f"{path}" if not isinstance(path, dict) else "config"
            raise ConfigError(f"{where}{f' (grid point {name})' if name else ''}: {err}") from None
    return points


def check_model(cfg: TrainConfig) -> TrainConfig:
    """Build the run's detector once, so bad ``model_kwargs`` fail before any data work.

    Args:
        cfg: A training config.

    Returns:
        ``cfg``.

    Raises:
        ConfigError: The model refuses its ``model_kwargs`` (or the feature settings).
    """
    from gpwave.transforms import FeatureConfig

    if cfg.init is not None:
        _check_init(cfg, _init_spec(cfg.init))
        return cfg
    fcfg = FeatureConfig.from_dict({"sample_rate": cfg.sample_rate, **cfg.feature})
    try:
        det = Detector(fcfg, cfg.model, round(cfg.seconds * cfg.sample_rate), cfg.model_kwargs)
    except (TypeError, ValueError, CheckpointError) as err:
        raise ConfigError(
            f"model={cfg.model!r}, model_kwargs={cfg.model_kwargs!r}: {err}"
        ) from None
    _check_freeze(cfg, det)
    return cfg


def _init_spec(init: str) -> dict[str, Any]:
    """``init``'s detector spec; a missing or unusable one is a ConfigError."""
    try:
        return hub.spec(init)
    except CheckpointError as err:
        raise ConfigError(f"init={init!r}: {err}") from None


def _check_init(cfg: TrainConfig, spec: dict[str, Any]) -> None:
    """Refuse ``feature``/``model``/``model_kwargs``/frame settings that contradict ``init``."""
    fdict = spec["feature"]
    given = {"sample_rate": cfg.sample_rate, **cfg.feature}
    clash = {k: (v, fdict.get(k)) for k, v in given.items() if fdict.get(k) != v}
    if cfg.model != spec["model"]:
        clash["model"] = (cfg.model, spec["model"])
    if cfg.model_kwargs and cfg.model_kwargs != spec.get("model_kwargs", {}):
        clash["model_kwargs"] = (cfg.model_kwargs, spec.get("model_kwargs"))
    if round(cfg.seconds * cfg.sample_rate) != spec["n_samples"]:
        clash["seconds"] = (cfg.seconds, spec["n_samples"] / fdict["sample_rate"])
    if clash:
        what = ", ".join(f"{k}={a!r} but init has {b!r}" for k, (a, b) in clash.items())
        raise ConfigError(f"init={cfg.init!r} conflicts with the config: {what}")
    _check_freeze(cfg, Detector.from_spec(spec))


def _check_freeze(cfg: TrainConfig, det: Detector) -> None:
    names = [n for n, _ in det.model.named_parameters()]
    for prefix in cfg.freeze:
        if not any(_matches(n, prefix) for n in names):
            raise ConfigError(
                f"freeze={prefix!r}: no parameter of {cfg.model} starts with it "
                f"(its parameters: {', '.join(names[:6])}, ...)"
            )


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def initial_detector(cfg: TrainConfig, n_samples: int) -> tuple[Detector, str | None]:
    """The detector a run starts from: random (seeded by the caller) or ``init``'s weights.

    Args:
        cfg: The run's config.
        n_samples: Samples per frame.

    Returns:
        ``(detector, fit)``: how its normaliser still has to be fitted on the training
        frames: ``"bands"`` (per band: a random start, or an ``init`` with per-band
        statistics), ``"global"`` (one mean/std: a paper model) or None (an ``init``
        whose ``level_norm`` matches: its normaliser is kept). Before a refit the
        normaliser is reset.
    """
    from gpwave.transforms import FeatureConfig, Normalizer

    if cfg.init is None:
        fcfg = FeatureConfig.from_dict({"sample_rate": cfg.sample_rate, **cfg.feature})
        return Detector(fcfg, cfg.model, n_samples, cfg.model_kwargs, cfg.level_norm), "bands"
    det = hub.resolve(cfg.init)
    if det.level_norm == cfg.level_norm:
        return det.train(), None
    fit = "global" if _is_global(det) else "bands"
    det.level_norm = cfg.level_norm
    det.normalizer = Normalizer(det.input_shape)
    return det.train(), fit


def teacher_targets(cfg: TrainConfig, store: Any, rows: np.ndarray, device: str) -> torch.Tensor:
    """Soft targets of ``distill``: the init model's class probabilities on clean frames.

    Args:
        cfg: The run's config (``init`` set).
        store: The frame store.
        rows: Training rows.
        device: Where to compute.

    Returns:
        ``(len(rows), 2)`` probabilities (real, fake), float32, on ``device``.
    """
    init = hub.resolve(cfg.init, device)
    p = evaluate.score_frames(init, store, rows, device=device, kind="probability")
    return torch.as_tensor(np.stack([1 - p, p], axis=1), dtype=torch.float32, device=device)


def _is_global(det: Detector) -> bool:
    """Does the detector normalise with one scalar mean/std (a paper model)?"""
    mean = det.normalizer.mean
    return bool(det.normalizer.count > 0) and bool((mean == mean.flatten()[0]).all())


def run_config(
    path: str | Path | dict[str, Any],
    out: str | Path,
    resume: bool = False,
    overrides: dict[str, str] | None = None,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Train every grid point x seed of a YAML config.

    Every grid point is validated before the first run starts, and the run holds
    ``out`` (see :func:`own_folder`) until it ends. A folder that already holds a run
    is refused unless ``resume`` or ``overwrite`` says what to do with it, and
    ``resume`` into a folder without any checkpoint is refused (nothing to resume).

    Args:
        path: The YAML file (or an already loaded dict).
        out: Output folder; runs go to ``out/<grid point>/seed<k>``.
        resume: Continue interrupted runs from their ``last.pt``.
        overrides: ``key=value`` overrides (see :func:`apply_overrides`).
        overwrite: Train afresh over runs already in ``out`` (and replace a published
            model of the same name).

    Returns:
        One summary dict per run (run folder, seed, best epoch and val EER, pooled test EER).
    """
    points = read_config(path, overrides)
    if len(points) > 1 and any(cfg.publish for _, cfg in points):
        raise ConfigError(f"{path}: publish names one model; the config spans {len(points)} runs")
    run_dirs = [Path(out) / name / f"seed{seed}" for name, cfg in points for seed in cfg.seeds]
    check_out(Path(out), run_dirs, resume, overwrite)
    for _, cfg in points:
        if cfg.publish:
            hub.refuse_taken(cfg.publish, overwrite)
    results = []
    with own_folder(out, lead=int(os.environ.get("RANK", "0")) == 0):
        for name, cfg in points:
            for seed in cfg.seeds:
                run_dir = Path(out) / name / f"seed{seed}"
                m = train_one(cfg, run_dir, seed, resume=resume)
                if dist.is_initialized() and dist.get_rank() != 0:
                    continue
                results.append(_summary(cfg, run_dir, seed, m))
                if cfg.publish and seed == cfg.seeds[0]:
                    command = command_line(path, out, overrides)
                    prov = provenance(cfg, m, command)
                    dest = hub.publish(run_dir / "best.pt", cfg.publish, prov, overwrite)
                    results[-1]["published"] = str(dest)
    return results


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
    from gpwave.download import file_hash

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
        "test_pooled": [r for r in metrics.get("test", []) if r["generator"] == evaluate.POOLED],
        "converged": metrics["converged"],
        "convergence": metrics["convergence"],
        "steps": metrics["steps"],
        "train_seconds": metrics["train_seconds"],
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
    }


def _summary(cfg: TrainConfig, run_dir: Path, seed: int, m: dict[str, Any]) -> dict[str, Any]:
    pooled = [r["eer"] for r in m.get("test", []) if r["generator"] == evaluate.POOLED]
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


# --- run folders ----------------------------------------------------------------------
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
        _write_text(owner, f"pid {pid} on {host}, since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        yield folder
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def _tmp_name(path: Path) -> Path:
    """A temporary name next to ``path`` that no other process or call can share."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _write_text(path: Path, text: str) -> None:
    tmp = _tmp_name(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def _resume_changes(ckpt: dict[str, Any], cfg: TrainConfig, path: Path) -> dict[str, list]:
    """Settings that differ from the checkpoint's; refuses any outside :data:`RESUMABLE`."""
    old, new = ckpt.get("config", {}), cfg.to_dict()
    defaults = TrainConfig().to_dict()
    changed = {
        k: [old.get(k, defaults[k]), v] for k, v in new.items() if old.get(k, defaults[k]) != v
    }
    refused = sorted(set(changed) - RESUMABLE)
    if refused:
        what = ", ".join(f"{k}: {changed[k][0]!r} -> {changed[k][1]!r}" for k in refused)
        raise ConfigError(
            f"{path}: --resume cannot change {what} (only {', '.join(sorted(RESUMABLE))} "
            "may change); start a new run in another --out instead"
        )
    return changed


# --- distributed ----------------------------------------------------------------------
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def lead(self) -> bool:
        return self.rank == 0


#: Process-group timeout (``$GPWAVE_DIST_TIMEOUT`` seconds overrides it). Rank 0 alone
#: decodes the frame store on a first run (minutes for all of WaveFake) and scores and
#: bootstraps the test split at the end while the other ranks wait in a barrier: NCCL's
#: 10-minute default watchdog would kill such a run.
DIST_TIMEOUT = timedelta(hours=2)


def dist_timeout() -> timedelta:
    """The process-group timeout: ``$GPWAVE_DIST_TIMEOUT`` seconds, else :data:`DIST_TIMEOUT`."""
    text = os.environ.get("GPWAVE_DIST_TIMEOUT")
    if not text:
        return DIST_TIMEOUT
    try:
        return timedelta(seconds=float(text))
    except ValueError as err:
        raise ValueError(f"GPWAVE_DIST_TIMEOUT={text!r} is not a number of seconds") from err


def _dist_setup(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend, timeout=dist_timeout())
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _barrier(d: _Dist) -> None:
    if d.world > 1:
        dist.barrier()


def _device(cfg: TrainConfig) -> str:
    return resolve_device(cfg.device)


# --- provenance -----------------------------------------------------------------------
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


# --- data -----------------------------------------------------------------------------
def resolve_path(path: str | Path | None) -> Path | None:
    """Expand ``~`` and environment variables; ``$GPWAVE_DATA`` defaults to ``./data``.

    Args:
        path: A path from a config, e.g. ``${GPWAVE_DATA}/wavefake-mini``.

    Returns:
        The expanded path (None stays None).
    """
    if path is None:
        return None
    from gpwave.download import default_data_dir

    text = str(path).replace("${GPWAVE_DATA}", str(default_data_dir()))
    text = text.replace("$GPWAVE_DATA", str(default_data_dir()))
    return Path(os.path.expandvars(text)).expanduser()


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
        The :class:`gpwave.data.FrameStore`.
    """
    from gpwave.data import prepare_store

    raw = protocol if isinstance(protocol, dict) else load_yaml(Path(protocol))
    cfg = TrainConfig.from_dict({**raw, "data_dir": str(data_dir)})
    target = resolve_path(store_dir if store_dir is not None else cfg.store_dir)
    return prepare_store(data_config(cfg), store_dir=target, progress=progress)


def _store(cfg: TrainConfig, d: _Dist, progress: bool) -> Any:
    from gpwave.data import prepare_store

    store_dir = resolve_path(cfg.store_dir)
    dcfg = data_config(cfg)
    if d.lead:
        store = prepare_store(dcfg, store_dir=store_dir, progress=progress)
    _barrier(d)
    if not d.lead:
        store = prepare_store(dcfg, store_dir=store_dir, progress=False)
    return store


def _rows(cfg: TrainConfig, store: Any, split: str, limit: int | None) -> np.ndarray:
    from gpwave.data import select_frames

    return select_frames(
        store,
        split,
        [cfg.train_generator],
        real=cfg.real,
        balance=True,
        limit=limit,
        seed=cfg.split_seed,
    )


class _Frames:
    """Training/validation frames: waveforms read from the store, or cached features."""

    def __init__(self, store: Any, rows: np.ndarray, det: Detector, device: str, cache: bool):
        self.store, self.rows, self.det, self.device = store, rows, det, device
        self.labels = torch.as_tensor(store.index["label"].to_numpy()[rows], dtype=torch.long)
        self.cache: torch.Tensor | None = None
        if cache:
            self.cache = torch.cat(
                [self._compute(rows[i : i + 64]) for i in range(0, len(rows), 64)]
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
                from gpwave.data import stored_to_float

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
        batches: Positions of each batch (e.g. this rank's share from :func:`_batches`).
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
    from gpwave.data import stored_to_float

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
    det: Detector, store: Any, rows: np.ndarray, device: str, batch: int = 64, workers: int = 0
) -> None:
    """Fit the detector's normaliser on the raw features of ``rows``, streamed.

    Args:
        det: The detector (its ``normalizer`` is updated in place).
        store: The frame store.
        rows: Training rows.
        device: Where features are computed.
        batch: Frames per step.
        workers: Reader processes (see :func:`batch_loader`).
    """
    batches = [np.arange(i, min(i + batch, len(rows))) for i in range(0, len(rows), batch)]
    labels = torch.zeros(len(rows), dtype=torch.long)
    with torch.no_grad():
        for x, y in batch_loader(store, rows, labels, batches, device, workers):
            det.normalizer.update(det.raw_features(to_device(x, y, device)[0]))


def _batches(n: int, batch_size: int, seed: int, epoch: int, d: _Dist) -> list[np.ndarray]:
    """This rank's share of each global batch of a seeded per-epoch permutation."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).numpy()
    out = []
    for i in range(0, n, batch_size):
        b = perm[i : i + batch_size]
        if len(b) >= max(2, d.world):  # BatchNorm needs 2 frames per step
            out.append(b[d.rank :: d.world])
    return out


# --- one run --------------------------------------------------------------------------
def _validate(
    model: torch.nn.Module, frames: _Frames, batch: int = 64, workers: int = 0
) -> dict[str, float]:
    model.eval()
    logits = []
    batches = [np.arange(i, min(i + batch, len(frames))) for i in range(0, len(frames), batch)]
    with torch.no_grad():
        for f, _ in frames.stream(batches, workers):
            logits.append(model(f).float())
    logits = [z.cpu() for z in logits]  # one sync for the whole split
    model.train()
    z = torch.cat(logits)
    y = frames.labels
    s = log_odds(z).double().numpy()  # not the softmax: it would tie the frames it is sure of
    both = 0 < int(y.sum()) < len(y)
    return {
        "val_loss": float(F.cross_entropy(z, y)),
        "val_acc": evaluate.accuracy(y.numpy(), s),
        "val_eer": evaluate.eer(y.numpy(), s) if both else float("nan"),
    }


def _better(m: dict[str, float], best: dict[str, Any], min_delta: float = 0.0) -> bool:
    """Lower validation EER by more than ``min_delta``, or no worse EER and lower loss."""
    if best.get("epoch") is None:
        return True
    eer_new = m["val_eer"] if m["val_eer"] == m["val_eer"] else 1.0
    eer_old = best["val_eer"] if best["val_eer"] == best["val_eer"] else 1.0
    if eer_new < eer_old - min_delta:
        return True
    return eer_new <= eer_old and m["val_loss"] < best["val_loss"] - min_delta


def _stop_reason(cfg: TrainConfig, state: dict[str, Any]) -> str | None:
    """``max_steps`` or ``patience`` once the budget or the patience is used up."""
    if cfg.max_steps is not None and state["step"] >= cfg.max_steps:
        return "max_steps"
    best = state["best"].get("epoch")
    if cfg.patience is not None and best is not None and state["epoch"] - best >= cfg.patience:
        return "patience"
    return None


def _n_epochs(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """Epochs to run: ``epochs``, or enough for ``max_steps`` when a step budget is set."""
    if cfg.max_steps is None:
        return cfg.epochs
    return -(-cfg.max_steps // max(1, steps_per_epoch))


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


def runs_overview(runs_dir: str | Path, runs: Sequence[str]) -> pd.DataFrame:
    """What each seed of some training runs trained on, for how long, and if it converged.

    The first output of every chapter that reads trained runs, so a reader sees at once
    whether its numbers come from detectors that learned.

    Notebook: notebooks/04_generalization.py

    Args:
        runs_dir: Folder of the runs (``<runs_dir>/<run>/seed<k>/metrics.json``).
        runs: Run names.

    Returns:
        One row per run and seed: model, feature, training frames, optimiser steps,
        epochs, training seconds, best validation EER, converged (bool) and the reason.

    Raises:
        DataError: A run with no ``metrics.json`` (not trained yet).
    """
    rows = []
    for run in runs:
        paths = sorted(Path(runs_dir, run).glob("seed*/metrics.json"))
        if not paths:
            raise DataError(f"{Path(runs_dir, run)}: no seed*/metrics.json; train {run} first")
        for path in paths:
            m = json.loads(path.read_text())
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


def _save(obj: dict[str, Any], path: Path) -> None:
    tmp = _tmp_name(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _checkpoint(det: Detector, cfg: TrainConfig, seed: int, state: dict[str, Any]) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "detector": det.spec(),
        "model": {k: v.detach().cpu() for k, v in det.state_dict().items()},
        "config": cfg.to_dict(),
        "seed": seed,
        "train_generator": cfg.train_generator,
        **state,
    }


def _restore(path: Path, det: Detector, opt: Any, scaler: Any, device: str) -> dict[str, Any]:
    ckpt = load_checkpoint(path, map_location=device)
    if ckpt.get("detector") != det.spec():
        raise CheckpointError(f"{path}: was written by a different detector config; cannot resume")
    det.load_state_dict(ckpt["model"])
    if opt is not None and "optimizer" in ckpt:
        opt.load_state_dict(ckpt["optimizer"])
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    return ckpt


#: Frames whose features are computed at once when the GMMs gather their training data
#: (an LFCC frame's intermediates take ~0.4 MB: all of WaveFake at once would not fit).
GMM_CHUNK = 256


def _fit_gmm(det: Detector, frames: _Frames, seed: int, chunk: int = GMM_CHUNK) -> None:
    """Fit the GMMs on every training frame, computing features ``chunk`` frames at a time."""
    parts = [
        frames.features(np.arange(i, min(i + chunk, len(frames))))
        for i in range(0, len(frames), chunk)
    ]
    feats = torch.cat([f.cpu() for f, _ in parts])
    labels = torch.cat([y.cpu() for _, y in parts])
    det.model.fit(feats, labels, seed=seed)


def train_one(
    cfg: TrainConfig,
    out_dir: str | Path,
    seed: int = 0,
    resume: bool = False,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train one detector (one seed) and write its checkpoints and metrics.

    The run holds ``out_dir`` (:func:`own_folder`) while it works. ``resume`` refuses a
    config that differs from the checkpoint's outside :data:`RESUMABLE`; resumable
    changes (e.g. ``lr``, ``epochs``) take effect from the next epoch and are recorded
    in the checkpoints, ``config.yaml`` and ``metrics.json`` (``resumes``).

    Notebook: notebooks/03_train.py

    Args:
        cfg: The run's configuration.
        out_dir: Folder for ``last.pt``, ``best.pt``, ``config.yaml``, ``metrics.json``
            and the test table.
        seed: Seed of initialisation, shuffling and dropout.
        resume: Continue from ``out_dir/last.pt`` if it exists.
        callback: Called as ``callback(epoch, metrics)`` after each epoch's checkpoint is
            written (progress hooks; tests use it to interrupt a run).

    Returns:
        The metrics dict also written to ``metrics.json``.

    Raises:
        ConfigError: Another run holds ``out_dir``, or ``resume`` would change a
            setting that is not resumable.
    """
    out_dir = Path(out_dir)
    last = out_dir / "last.pt"
    if resume and last.is_file():  # before any data work
        _resume_changes(load_checkpoint(last, map_location="cpu"), cfg, last)
    with own_folder(out_dir, lead=int(os.environ.get("RANK", "0")) == 0):
        return _train_one(cfg, out_dir, seed, resume, callback)


def _train_one(
    cfg: TrainConfig,
    out_dir: Path,
    seed: int,
    resume: bool,
    callback: Callable[[int, dict[str, Any]], None] | None,
) -> dict[str, Any]:
    """The body of :func:`train_one`, run while holding ``out_dir``."""
    out_dir = Path(out_dir)
    device = _device(cfg)
    d = _dist_setup(device)
    if device.startswith("cuda") and d.world > 1:
        device = f"cuda:{d.local_rank}"
        torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    progress = cfg.progress and d.lead
    workers = loader_workers(cfg, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start, commit = time.perf_counter(), git_commit()  # the code this run starts with

    store = _store(cfg, d, progress)
    t_train = time.perf_counter()  # training time: normaliser fit, features, epochs
    train_rows = _rows(cfg, store, "train", cfg.limit_train)
    val_rows = _rows(cfg, store, "val", cfg.limit_val)
    for name, rows in (("train", train_rows), ("val", val_rows)):
        labels = set(store.index["label"].to_numpy()[rows])
        if labels != {0, 1}:
            raise DataError(
                f"{cfg.data_dir}: the {name} split has no frames of "
                f"{'both classes' if not labels else ('real' if 1 in labels else 'fake')} "
                f"({cfg.real} vs {cfg.train_generator}); check split/only_test_folders"
            )
    targets = teacher_targets(cfg, store, train_rows, device) if cfg.distill else None
    torch.manual_seed(seed)
    det, fit = initial_detector(cfg, store.frame_length)
    det.to(device)
    by_gradient = getattr(det.model, "fit_by_gradient", True)
    amp = cfg.amp and device.startswith("cuda")
    params = _trainable(det.model, cfg.freeze)
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    last = out_dir / "last.pt"
    state: dict[str, Any] = {"epoch": 0, "step": 0, "best": {"epoch": None}, "history": []}
    if resume and last.is_file():
        ckpt = _restore(last, det, opt, scaler, device)
        state = {k: ckpt[k] for k in ("epoch", "best", "history")}
        resumed = {"epoch": state["epoch"], "changed": _resume_changes(ckpt, cfg, last)}
        state["resumes"] = [*ckpt.get("resumes", []), resumed]
        for group in opt.param_groups:  # resumable optimiser settings apply for real
            group.update(lr=cfg.lr, weight_decay=cfg.weight_decay)
        state["step"] = int(ckpt.get("step", 0))
    elif fit is not None:
        fit_normalizer(det, store, train_rows, device, workers=workers)
        if fit == "global":
            from gpwave.pretrained import globalize_normalization

            globalize_normalization(det)
    if d.world > 1:
        det.model = sync_batchnorm(det.model, device)
    train = _Frames(store, train_rows, det, device, cfg.cache_features and not cfg.augment)
    val = _Frames(store, val_rows, det, device, cfg.cache_features)
    net: torch.nn.Module = det.model
    if d.world > 1 and by_gradient:
        net = torch.nn.parallel.DistributedDataParallel(
            det.model, device_ids=[device] if device.startswith("cuda") else None
        )
    if cfg.compile and by_gradient:
        net = torch.compile(net)

    per_epoch = len(_batches(len(train), cfg.batch_size, seed, 0, d))
    epochs = _n_epochs(cfg, per_epoch) if by_gradient else 1
    for epoch in tqdm(range(state["epoch"], epochs), desc="epochs", disable=not progress):
        if by_gradient and _stop_reason(cfg, state):
            break
        t0 = time.perf_counter()
        torch.manual_seed(seed * 1_000_003 + 7919 * (epoch + 1) + d.rank)
        det.model.train()
        _freeze_modes(det.model, cfg.freeze, cfg.freeze_batchnorm)
        if by_gradient:
            left = None if cfg.max_steps is None else cfg.max_steps - state["step"]
            train_loss, steps = _train_epoch(
                net,
                opt,
                scaler,
                train,
                cfg,
                seed,
                epoch,
                d,
                amp,
                progress,
                left,
                workers,
                targets,
            )
            state["step"] += steps
        else:
            _fit_gmm(det, train, seed)
            train_loss = float("nan")
        m = {"epoch": epoch + 1, "train_loss": train_loss, **_validate(det.model, val, 64, workers)}
        m["seconds"] = time.perf_counter() - t0
        state["history"].append(m)
        state["epoch"] = epoch + 1
        is_best = _better(m, state["best"], cfg.min_delta)
        if is_best:
            state["best"] = {k: m[k] for k in ("epoch", "val_eer", "val_loss", "val_acc")}
        if d.lead:
            ck = _checkpoint(det, cfg, seed, state)
            if is_best:
                _save(ck, out_dir / "best.pt")
            _save(
                {
                    **ck,
                    "optimizer": opt.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": torch.get_rng_state(),
                },
                last,
            )
        _barrier(d)
        if callback is not None:
            callback(epoch + 1, m)
    train_seconds = time.perf_counter() - t_train
    state["stopped"] = (_stop_reason(cfg, state) if by_gradient else None) or "epochs"
    return _finish(
        cfg,
        det,
        store,
        train_rows,
        out_dir,
        seed,
        state,
        d,
        device,
        {
            "git_commit": commit,
            "train_seconds": train_seconds,
            "total_seconds": time.perf_counter() - t_start,
        },
    )


def _trainable(model: torch.nn.Module, freeze: Sequence[str]) -> list[torch.nn.Parameter]:
    """The parameters outside ``freeze`` (those inside get ``requires_grad=False``)."""
    out = []
    for name, p in model.named_parameters():
        frozen = any(_matches(name, prefix) for prefix in freeze)
        p.requires_grad_(not frozen)
        if not frozen:
            out.append(p)
    return out


def _freeze_modes(model: torch.nn.Module, freeze: Sequence[str], batchnorm: bool = False) -> None:
    """Eval mode for the modules under ``freeze`` (and every BatchNorm if ``batchnorm``)."""
    for name, module in model.named_modules():
        is_bn = isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
        if any(_matches(name, prefix) for prefix in freeze) or (batchnorm and is_bn):
            module.eval()


def augment_batch(
    x: np.ndarray,
    specs: Sequence[dict[str, Any]],
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
        specs: Validated ``augment`` entries (:func:`check_augment`).
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
        hit = rng.random(len(x)) < spec["p"]
        pick = rng.integers(len(spec["strengths"]), size=len(x))
        noise_seed = int(rng.integers(2**31))
        for j, strength in enumerate(spec["strengths"]):
            m = hit & (pick == j)
            if m.any():
                x[m] = perturb.apply(x[m], sample_rate, spec["kind"], strength, noise_seed + j,
                                     keep_length=True)  # fmt: skip
    return x


#: Steps between progress-bar loss updates (each is one device-to-host sync).
LOG_EVERY = 50


def _train_epoch(
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    scaler: Any,
    frames: _Frames,
    cfg: TrainConfig,
    seed: int,
    epoch: int,
    d: _Dist,
    amp: bool,
    progress: bool,
    limit: int | None = None,
    workers: int = 0,
    targets: torch.Tensor | None = None,
) -> tuple[float, int]:
    """One pass over the training frames (at most ``limit`` steps).

    With ``targets`` (the teacher's probabilities per training position, ``distill``)
    the loss mixes cross-entropy and the KL divergence from them.

    The batch losses stay on the device (no per-step sync): they are gathered once at
    the end, and read every :data:`LOG_EVERY` steps for the progress bar.

    Returns:
        The mean loss of the global batches and the number of steps.
    """
    losses: list[torch.Tensor] = []
    device_type = "cuda" if amp else "cpu"
    batches = _batches(len(frames), cfg.batch_size, seed, epoch, d)[:limit]
    bar = tqdm(total=len(batches), desc=f"epoch {epoch + 1}", leave=False, disable=not progress)
    sr = frames.store.sample_rate
    augment = None
    if cfg.augment:
        augment = lambda k, x: augment_batch(x, cfg.augment, sr, seed, epoch, k, d.rank)  # noqa: E731
    for idx, (x, y) in zip(batches, frames.stream(batches, workers, augment), strict=True):
        with torch.autocast(device_type, dtype=torch.float16, enabled=amp):
            z = net(x).float()
            loss = F.cross_entropy(z, y)
            if targets is not None:
                kl = F.kl_div(
                    F.log_softmax(z, -1), targets[torch.as_tensor(idx)], reduction="batchmean"
                )
                loss = (1 - cfg.distill) * loss + cfg.distill * kl
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.detach())
        bar.update()
        if progress and len(losses) % LOG_EVERY == 0:
            bar.set_postfix(loss=f"{float(torch.stack(losses[-LOG_EVERY:]).mean()):.3f}")
    bar.close()
    if not losses:
        return float("nan"), 0
    total = torch.stack(losses).double()
    if d.world > 1:  # the global batch's loss, as a single process would log it
        dist.all_reduce(total)
        total /= d.world
    return float(total.mean()), len(losses)


def _convergence_check(
    best: dict[str, Any], cfg: TrainConfig, out_dir: Path, d: _Dist
) -> dict[str, Any]:
    """``converged`` and ``convergence`` (the reason) for the metrics; warns if not."""
    check = convergence(best, cfg.converged_eer)
    if not check["converged"] and d.lead:
        warnings.warn(
            f"{out_dir}: NOT CONVERGED - {check['reason']}; its test scores measure an "
            "untrained detector",
            ConvergenceWarning,
            stacklevel=3,
        )
    return {"converged": check["converged"], "convergence": check["reason"]}


def _finish(
    cfg: TrainConfig,
    det: Detector,
    store: Any,
    train_rows: np.ndarray,
    out_dir: Path,
    seed: int,
    state: dict[str, Any],
    d: _Dist,
    device: str,
    times: dict[str, Any],
) -> dict[str, Any]:
    """Reload the best weights, score the test split, write config.yaml + metrics.json."""
    best = load_checkpoint(out_dir / "best.pt", map_location=device) if d.lead else None
    if best is not None:
        det.load_state_dict(best["model"], strict=False)
    det.eval()
    commit, data_hash = times.pop("git_commit"), data_manifest_hash(store, train_rows)
    metrics: dict[str, Any] = {
        "seed": seed,
        "model": cfg.model,
        "feature": det.feature_config.to_dict(),
        "n_parameters": count_parameters(det.model),
        "input_shape": list(det.input_shape),
        "n_train_frames": int(len(train_rows)),
        "device": device,
        "world_size": d.world,
        "best": state["best"],
        "history": state["history"],
        "resumes": state.get("resumes", []),
        "steps": state["step"],
        "stopped": state["stopped"],
        **_convergence_check(state["best"], cfg, out_dir, d),
        **times,
        "git_commit": commit,
        "data_manifest_hash": data_hash,
    }
    if cfg.eval_test and d.lead:
        table = evaluate.score_split(
            det,
            store,
            "test",
            cfg.test_generators,
            seen=[cfg.train_generator],
            n_boot=cfg.n_boot,
            seed=seed,
            progress=cfg.progress,
            limit=cfg.limit_test,
        )
        evaluate.save_table(table, out_dir / "test_table")
        metrics["test"] = json.loads(table.to_json(orient="records"))
    if d.lead:
        conf = {
            **cfg.to_dict(),
            "seed": seed,
            "git_commit": commit,
            "data_manifest_hash": data_hash,
        }
        _write_text(out_dir / "config.yaml", yaml.safe_dump(conf, sort_keys=False))
        _write_text(out_dir / "metrics.json", evaluate.to_json(metrics))
    return metrics
