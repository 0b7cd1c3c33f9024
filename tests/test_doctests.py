"""The ``>>>`` examples in the docstrings of the public API run and print what they say."""

import doctest
import importlib

import pytest

MODULES = [
    "gpwave.metrics",
    "gpwave.report",
    "gpwave.ablation",
    "gpwave.evaluate",
    "gpwave.fingerprints",
    "gpwave.robustness",
]
#: Modules whose public API must carry examples (each public function at least one).
WITH_EXAMPLES = ["gpwave.metrics", "gpwave.report"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_every_public_function_has_an_example(name):
    import inspect

    module = importlib.import_module(name)
    public = [
        f
        for n, f in inspect.getmembers(module, inspect.isfunction)
        if not n.startswith("_") and f.__module__ == name
    ]
    missing = [f.__name__ for f in public if ">>>" not in (f.__doc__ or "")]
    assert public and not missing, f"{name}: no example in {missing}"
