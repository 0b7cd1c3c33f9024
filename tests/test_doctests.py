"""The ``>>>`` examples in gpwave's docstrings run, as ptwt's do (synthetic data only)."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import gpwave

MODULES = sorted(m.name for m in pkgutil.iter_modules(gpwave.__path__) if m.name != "__main__")
#: Modules whose public API must carry examples (each public function at least one).
WITH_EXAMPLES = ["gpwave.metrics", "gpwave.report"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(f"gpwave.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_every_public_function_has_an_example(name):
    module = importlib.import_module(name)
    public = [
        f
        for n, f in inspect.getmembers(module, inspect.isfunction)
        if not n.startswith("_") and f.__module__ == name
    ]
    missing = [f.__name__ for f in public if ">>>" not in (f.__doc__ or "")]
    assert public and not missing, f"{name}: no example in {missing}"


def test_the_public_api_of_the_training_side_has_examples():
    from gpwave import config, hub, runs

    for fn in (hub.resolve, runs.Run, config.check_feature, config.check_augment):
        assert ">>>" in (fn.__doc__ or ""), fn.__qualname__
