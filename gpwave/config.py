"""Typed, validated configuration: YAML reading, ``key=value`` scalars, field checks.

:class:`TrainConfig` is the one source of every training default; ``configs/*.yaml``
set only what differs, ``--set key=value`` overrides (dotted keys reach into ``feature``
and ``model_kwargs``), and list values span a grid (:func:`expand_grid`).

Choice of technology: a **validated standard-library dataclass**. The configs gpwave
reads (:class:`TrainConfig`, the book's run matrix) are flat records of
~30 scalars and lists that also travel inside checkpoints and ``config.yaml``; a
dataclass keeps its field list as the one source of the defaults, pickles to plain
dicts with :func:`dataclasses.asdict`, and costs no dependency. What pydantic would
add -- type checks and range checks with one-line messages -- is :func:`check_fields`
below (about 60 lines driven by the dataclass's own annotations, so a field added
later is type-checked without further code). OmegaConf structured configs check
types but not ranges, and its interpolation syntax would clash with the
``${GPWAVE_DATA}`` paths the configs already use.

YAML is read with :class:`Loader`, PyYAML's safe loader with the YAML 1.2 float rule,
so ``4e-4`` is the float 0.0004 (PyYAML's YAML 1.1 rule reads it as a string).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml

from gpwave.constants import (
    FRAME_SECONDS,
    MODEL_NAME_PATTERN,
    N_BOOT,
    SAMPLE_RATE,
    SPLIT,
    ModelName,
    PerturbationKind,
    Precision,
)
from gpwave.errors import ConfigError


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader, with YAML 1.2 floats (``1e-3``, ``4E-4``, ``.5``)."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(source: str | Path) -> Any:
    """Read a YAML file (a :class:`~pathlib.Path`) or YAML text (a ``str``).

    Args:
        source: A path, or the YAML text itself.

    Returns:
        The parsed document (None for an empty one).

    Raises:
        ConfigError: The file is missing or not valid YAML; the message names it.
    """
    name = str(source) if isinstance(source, Path) else "<text>"
    try:
        text = source.read_text() if isinstance(source, Path) else source
        return yaml.load(text, Loader=Loader)  # noqa: S506 -- a SafeLoader subclass
    except OSError as err:
        raise ConfigError(f"{name}: cannot read the config ({err.strerror or err})") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{name}: not valid YAML ({err})") from err


def parse_scalar(text: str) -> Any:
    """Parse one ``--set key=VALUE`` value as a YAML scalar (or flow list/mapping).

    Args:
        text: ``"2"``, ``"4e-4"``, ``"[0, 1]"``, ``"null"``, ``"stft"``...

    Returns:
        The value: ``2``, ``0.0004``, ``[0, 1]``, ``None``, ``"stft"``.
    """
    return load_yaml(text)


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """Split ``KEY=VALUE`` strings (the CLI's ``--set``) into a mapping.

    Args:
        items: The strings.

    Returns:
        ``{key: value text}`` (values are parsed later, by :func:`parse_scalar`).

    Raises:
        ConfigError: An item without ``=`` or with an empty key.
    """
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set epochs=2")
        out[key.strip()] = value
    return out


# --- validation -----------------------------------------------------------------------
_PLURAL = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is list:
        return f"a list of {_PLURAL.get(args[0], _describe(args[0]))}" if args else "a list"
    if origin is dict:
        return "a mapping"
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        hint, "null" if hint is type(None) else str(hint)
    )


def _coerce(value: Any, hint: Any) -> tuple[bool, Any]:
    """``(ok, value)``: whether ``value`` fits ``hint``, with ints widened to floats."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return True, value
    if hint is type(None):
        return value is None, value
    if origin in (Union, types.UnionType):
        for a in args:
            ok, v = _coerce(value, a)
            if ok:
                return True, v
        return False, value
    if origin is typing.Literal:
        return value in args, value
    if origin is list:
        if not isinstance(value, list | tuple):
            return False, value
        items = [_coerce(v, args[0]) if args else (True, v) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    if origin is dict:
        return isinstance(value, dict), value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    return isinstance(value, hint), value


def check_fields(obj: Any, rules: dict[str, tuple[typing.Callable[[Any], bool], str]]) -> None:
    """Check (and widen int -> float) every field of a dataclass against its annotation.

    Args:
        obj: A dataclass instance (fields are replaced in place where widened).
        rules: Extra checks by field name: ``(predicate, what is allowed)``; the
            predicate sees the type-checked value and is skipped for None.

    Raises:
        ConfigError: ``key=value: expected ...``, naming the first bad field.
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        ok, value = _coerce(value, hints[f.name])
        rule = rules.get(f.name)
        if not ok:
            allowed = rule[1] if rule else _describe(hints[f.name])
            raise ConfigError(f"{f.name}={value!r}: expected {allowed}")
        if rule is not None and value is not None and not rule[0](value):
            raise ConfigError(f"{f.name}={value!r}: expected {rule[1]}")
        object.__setattr__(obj, f.name, value)


def check_keys(d: dict[str, Any], cls: type, where: str = "config") -> None:
    """Refuse keys that are not fields of the dataclass ``cls``.

    Args:
        d: The mapping read from YAML or overrides.
        cls: The dataclass.
        where: What ``d`` is, for the message.

    Raises:
        ConfigError: Naming the unknown keys and the close matches.
    """
    import difflib

    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(names))
    if unknown:
        hints = {k: difflib.get_close_matches(k, names, 1) for k in unknown}
        near = "; ".join(f"{k!r}: did you mean {v[0]!r}?" for k, v in hints.items() if v)
        raise ConfigError(
            f"unknown {where} key(s) {', '.join(map(repr, unknown))}"
            + (f" ({near})" if near else "")
            + f"; known: {', '.join(names)}"
        )


def resolve_device(device: str | None = None) -> str:
    """The torch device of a ``device`` setting: ``None``/``"auto"`` pick CUDA if present.

    Args:
        device: ``None``, ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Returns:
        The device string.

    Raises:
        ConfigError: CUDA asked for but not available.
    """
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r}: CUDA is not available here; use cpu or auto")
    return device


# --- the training config ---------------------------------------------------------------
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
        precision: Arithmetic of the training step on the CPU
            (:data:`gpwave.constants.Precision`): ``fp32``, or ``bf16``: the forward pass
            under bfloat16 autocast (convolutions and matmuls in bfloat16 on oneDNN;
            float32 weights, loss, gradients' accumulation and optimiser). Validation and
            test scoring stay float32. Ignored on CUDA (``amp`` decides there). Measured
            in ``benchmarks/bench_train.py``.
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
        pool: A many-speaker training set of several trees with a ``MANIFEST.tsv``
            (``${GPWAVE_DATA}/speakers-train``) joined to ``data_dir``'s training and
            validation frames (:mod:`gpwave.poolstore`): split by speaker across its
            trees with ``split_seed``, its test speakers never read, real and fake
            balanced within each tree, every file resampled to ``sample_rate``.
        pool_families: Vocoder families of the pool's fakes to train on
            (:func:`gpwave.pool.family_of`, e.g. ``[melgan]``; None: all). A tree joins
            only with fakes of these families, and then with its own real files.
        compile: ``torch.compile`` the training step's model (validation stays eager).
            On this 2-core CPU it made DCNN training steps 1.8x faster than before but
            costs about a minute of compilation per process (``benchmarks/bench_train.py``):
            worth it for runs of more than a few minutes, not for quick ones.
    """

    data_dir: str = "${GPWAVE_DATA}/wavefake-mini"
    store_dir: str | None = None
    sample_rate: int = SAMPLE_RATE
    seconds: float = FRAME_SECONDS
    real: str = "ljspeech"
    train_generator: str = "melgan"
    test_generators: list[str] | None = None
    only_test_folders: list[str] = field(default_factory=list)
    split: list[float] = field(default_factory=lambda: list(SPLIT))
    split_seed: int = 0
    limit_train: int | None = None
    limit_val: int | None = None
    limit_test: int | None = None
    feature: dict[str, Any] = field(default_factory=dict)
    model: ModelName = "dcnn"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    level_norm: bool = True
    epochs: int = 10
    batch_size: int = 128
    lr: float = 4e-4
    weight_decay: float = 1e-3
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = "auto"
    amp: bool = True
    precision: Precision = "fp32"
    cache_features: bool = False
    eval_test: bool = True
    n_boot: int = N_BOOT
    threads: int | None = None
    progress: bool = True
    max_steps: int | None = None
    patience: int | None = None
    min_delta: float = 0.0
    converged_eer: float = 0.2
    compile: bool = False
    workers: int | None = None
    init: str | None = None
    augment: list[AugmentSpec] = field(default_factory=list)
    freeze: list[str] = field(default_factory=list)
    freeze_batchnorm: bool = False
    distill: float = 0.0
    publish: str | None = None
    pool: str | None = None
    pool_families: list[str] | None = None

    def __post_init__(self) -> None:
        """Check every field's type and range (ints widen to floats); see :data:`RULES`.

        ``feature`` is checked key by key against :class:`~gpwave.transforms.FeatureConfig`
        and ``augment`` entry by entry (:func:`check_augment`); a wrong type anywhere is a
        :class:`~gpwave.errors.ConfigError`, never a silent default.
        """
        self.feature = check_feature(self.feature)
        self.augment = check_augment(self.augment, self.sample_rate, self.seconds)
        check_fields(self, RULES)
        if self.distill > 0 and self.init is None:
            raise ConfigError(f"distill={self.distill}: distillation needs a teacher; set init")
        try:
            self.feature_config  # noqa: B018 - ranges beyond the types
        except (ValueError, TypeError) as err:
            raise ConfigError(f"feature={self.feature!r}: {err}") from err

    @property
    def feature_config(self) -> Any:
        """The run's :class:`~gpwave.transforms.FeatureConfig` (``feature`` + ``sample_rate``)."""
        from gpwave.transforms import FeatureConfig

        return FeatureConfig.from_dict({"sample_rate": self.sample_rate, **self.feature})

    @property
    def n_samples(self) -> int:
        """Samples per frame: ``round(seconds * sample_rate)``."""
        return round(self.seconds * self.sample_rate)

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

        Example:
            >>> cfg = TrainConfig.from_dict({"feature": {"kind": "stft"}, "lr": 1})
            >>> cfg.feature_config.kind, cfg.lr, cfg.n_samples
            ('stft', 1.0, 22050)
            >>> TrainConfig.from_dict({"model_kwargs": 5})
            Traceback (most recent call last):
            gpwave.errors.ConfigError: model_kwargs=5: expected a mapping
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
    "pool": (_not_test_only, "a training set of several trees, not a test-only set"),
    "pool_families": (lambda v: len(v) > 0, "null or a non-empty list of vocoder families"),
    "sample_rate": (lambda v: v > 0, "a positive integer (Hz)"),
    "seconds": (lambda v: v > 0, "a positive number of seconds"),
    "split": (_is_split, "three fractions >= 0 (train, val, test) that sum to 1"),
    "limit_train": (lambda v: v >= 1, "null or an integer >= 1"),
    "limit_val": (lambda v: v >= 1, "null or an integer >= 1"),
    "limit_test": (lambda v: v >= 1, "null or an integer >= 1"),
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
        lambda v: re.fullmatch(MODEL_NAME_PATTERN, v) is not None and not v.startswith("paper-"),
        "null or a model name of lower-case letters, digits, '.', '_' and '-' "
        "(not starting with paper-, the released models' prefix)",
    ),
    "freeze": (lambda v: all(v), "a list of non-empty parameter-name prefixes"),
    "distill": (lambda v: 0 <= v <= 1, "a weight between 0 and 1"),
}


@dataclass(frozen=True)
class AugmentSpec:
    """One ``augment`` entry: perturb each frame with probability ``p`` by ``kind``.

    Attributes:
        kind: A :data:`~gpwave.constants.PerturbationKind`.
        strengths: Strengths drawn uniformly per frame (in the kind's unit).
        p: Probability that a frame gets this perturbation.

    Example:
        >>> AugmentSpec("gain", (-6.0, 6.0)).p
        1.0
    """

    kind: PerturbationKind
    strengths: tuple[float, ...]
    p: float = 1.0


#: Keys of one ``augment`` entry: kind (required), strengths (required), p (default 1).
AUGMENT_KEYS = tuple(f.name for f in dataclasses.fields(AugmentSpec))


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _augment_spec(where: str, spec: Any) -> AugmentSpec:
    """One entry of ``augment``, type-checked (its strengths are tried by the caller)."""
    from gpwave import perturb

    if isinstance(spec, AugmentSpec):
        spec = dataclasses.asdict(spec)
    unknown = sorted(set(spec) - set(AUGMENT_KEYS)) if isinstance(spec, dict) else []
    if not isinstance(spec, dict) or unknown or not {"kind", "strengths"} <= set(spec):
        raise ConfigError(f"{where}={spec!r}: expected keys kind, strengths and optionally "
                          f"p (unknown: {', '.join(unknown) or 'none'})")  # fmt: skip
    kind, strengths, p = spec["kind"], spec["strengths"], spec.get("p", 1.0)
    if kind not in get_args(PerturbationKind):
        raise ConfigError(f"{where}.kind={kind!r}: expected one of "
                          + ", ".join(get_args(PerturbationKind)))  # fmt: skip
    if not (_number(p) and 0 <= p <= 1):
        raise ConfigError(f"{where}.p={p!r}: expected a probability between 0 and 1")
    if not (isinstance(strengths, list | tuple) and strengths and all(map(_number, strengths))):
        raise ConfigError(f"{where}.strengths={strengths!r}: expected a non-empty list "
                          f"of numbers in {perturb.PERTURBATIONS[kind].unit}")  # fmt: skip
    return AugmentSpec(kind, tuple(float(v) for v in strengths), float(p))


def check_augment(specs: Any, sample_rate: int, seconds: float) -> list[AugmentSpec]:
    """Validate ``augment`` entries; each strength is tried on a probe frame.

    Args:
        specs: The config's ``augment`` list (mappings or :class:`AugmentSpec`).
        sample_rate: Sample rate of the frames.
        seconds: Frame length in seconds.

    Returns:
        The typed entries.

    Raises:
        ConfigError: ``augment[i].key=value: ...`` for the first bad entry.

    Example:
        >>> check_augment([{"kind": "gain", "strengths": [-6]}], 8000, 0.1)
        [AugmentSpec(kind='gain', strengths=(-6.0,), p=1.0)]
    """
    import numpy as np

    from gpwave import perturb

    if not isinstance(specs, list | tuple):
        raise ConfigError(f"augment={specs!r}: expected a list of mappings {{kind, strengths, p}}")
    out = [_augment_spec(f"augment[{i}]", spec) for i, spec in enumerate(specs)]
    probe = np.random.default_rng(0).standard_normal(round(sample_rate * seconds)) * 0.1
    for i, spec in enumerate(out):
        for v in spec.strengths:
            try:
                perturb.apply(probe, sample_rate, spec.kind, v, keep_length=True)
            except (ValueError, RuntimeError) as err:
                what = f"augment[{i}].strengths: {spec.kind} refuses {v!r} ({err})"
                raise ConfigError(what) from None
    return out


def check_feature(feature: Any) -> dict[str, Any]:
    """Type-check ``feature`` key by key against :class:`~gpwave.transforms.FeatureConfig`.

    Args:
        feature: The config's ``feature`` mapping.

    Returns:
        The mapping (ints widened to floats where the field is a float).

    Raises:
        ConfigError: Not a mapping, an unknown key, or a value of the wrong type.

    Example:
        >>> check_feature({"kind": "stft", "power": 2})
        {'kind': 'stft', 'power': 2.0}
        >>> check_feature("stft")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        gpwave.errors.ConfigError: feature='stft': expected a mapping of FeatureConfig ...
    """
    from gpwave.transforms import FeatureConfig

    if not isinstance(feature, dict):
        raise ConfigError(f"feature={feature!r}: expected a mapping of FeatureConfig fields, "
                          "e.g. {kind: stft}")  # fmt: skip
    check_keys(feature, FeatureConfig, "feature")
    hints = typing.get_type_hints(FeatureConfig)
    out = {}
    for key, value in feature.items():
        ok, out[key] = _coerce(value, hints[key])
        if not ok:
            raise ConfigError(f"feature.{key}={value!r}: expected {_describe(hints[key])}")
    return out


#: Settings ``--resume`` may change: they do not alter what the finished epochs computed.
#: Every other change is refused (it would mix two runs in one checkpoint).
RESUMABLE = frozenset(
    {"epochs", "lr", "weight_decay", "device", "threads", "progress", "eval_test", "n_boot",
     "limit_test", "test_generators", "cache_features", "data_dir", "store_dir",
     "max_steps", "patience", "min_delta", "converged_eer", "compile", "workers", "publish"}
)  # fmt: skip


_LIST_FIELDS = {"test_generators", "only_test_folders", "split", "seeds", "augment", "freeze",
                "pool_families"}  # fmt: skip


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

    Example:
        >>> apply_overrides({"feature": {"level": 8}}, {"feature.kind": "stft", "epochs": "2"})
        {'feature': {'level': 8, 'kind': 'stft'}, 'epochs': 2}
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
    lists by nature (``seeds``, ``split``, ``only_test_folders``, ``test_generators``,
    ``pool_families``...)
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
            flat[k] = v  # a non-mapping feature/model_kwargs stays, for the type check
    grid_keys = [k for k, v in flat.items() if _is_grid(k, v)]
    points = []
    for combo in itertools.product(*(flat[k] for k in grid_keys)):
        point = {k: v for k, v in flat.items() if "." not in k}
        for parent in ("feature", "model_kwargs"):
            if isinstance(flat.get(parent), dict):
                point[parent] = {}
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


def run_name(grid: dict[str, Any]) -> str:
    """A run's folder name from its grid values (``model-dcnn_kind-stft``; empty: no grid)."""
    if not grid:
        return ""
    text = "_".join(
        f"{k}-{'+'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in grid.items()
    )
    return re.sub(r"[^A-Za-z0-9_.+=-]", "", text)


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


def _comparable(d: dict[str, Any]) -> dict[str, Any]:
    """A config dict with ``feature`` as the full FeatureConfig it stands for."""
    from gpwave.transforms import FeatureConfig

    out = dict(d)
    try:
        sr = d.get("sample_rate", SAMPLE_RATE)
        out["feature"] = FeatureConfig.from_dict({"sample_rate": sr, **d.get("feature", {})})
        out["feature"] = out["feature"].to_dict()
    except (TypeError, ValueError):
        pass  # compared as written
    return out


def resume_changes(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> dict[str, list]:
    """Settings that differ from a checkpoint's; refuses any outside :data:`RESUMABLE`.

    A feature setting equal to its default (``feature.kind=packets``) is no change.

    Args:
        saved: The checkpoint's ``config``.
        cfg: The config of the resumed run.
        path: The checkpoint (for the message).

    Returns:
        ``{key: [old, new]}`` of the (resumable) changes.

    Raises:
        ConfigError: A change outside :data:`RESUMABLE`.
    """
    defaults = TrainConfig().to_dict()
    old = _comparable({**defaults, **saved})
    new = _comparable(cfg.to_dict())
    changed = {k: [old[k], v] for k, v in new.items() if old.get(k) != v}
    refused = sorted(set(changed) - RESUMABLE)
    if refused:
        what = ", ".join(f"{k}: {changed[k][0]!r} -> {changed[k][1]!r}" for k in refused)
        raise ConfigError(
            f"{path}: --resume cannot change {what} (only {', '.join(sorted(RESUMABLE))} "
            "may change); start a new run in another --out instead"
        )
    return changed
