"""Typed, validated configuration: YAML reading, ``key=value`` scalars, field checks.

Choice of technology: a **validated standard-library dataclass**. The configs gpwave
reads (:class:`gpwave.train.TrainConfig`, the book's run matrix) are flat records of
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
import re
import types
import typing
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml

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
