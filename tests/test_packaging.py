"""Honest dependencies: every import of gpwave/ at run time is declared in pyproject.toml.

A core-only install (``pip install gpwave``) must import every module and run every
function but the book build; the ``book`` extra covers :mod:`gpwave.book`. Declared
core dependencies are all used, and test-only packages live in the ``dev`` extra.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
MODULES = sorted((REPO / "gpwave").glob("*.py"))


def _names(requirements: list[str]) -> set[str]:
    return {
        re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements
    }


CORE = _names(PROJECT["dependencies"])
EXTRAS = {k: _names(v) for k, v in PROJECT["optional-dependencies"].items()}


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(top-level, inside functions) third-party import names of a module."""
    tree = ast.parse(path.read_text())
    top, inner = set(), set()
    nested = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        for n in ast.walk(f)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            root = name.split(".")[0]
            if root in sys.stdlib_module_names or root == "gpwave":
                continue
            (inner if id(node) in nested else top).add(root)
    return top, inner


def _dists(module: str) -> set[str]:
    dists = packages_distributions().get(module)
    assert dists, f"{module} is imported but no installed distribution provides it"
    return {d.lower().replace("_", "-") for d in dists}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_every_runtime_import_is_declared(path):
    top, inner = _imports(path)
    allowed = CORE | (EXTRAS["book"] if path.name == "book.py" else set())
    for module in top | inner:
        ok = allowed if module in top else allowed | EXTRAS["book"]
        assert _dists(module) & ok, f"{path.name} imports {module}: not a declared dependency"


def test_to_markdown_needs_tabulate_which_is_declared():
    import pandas as pd

    from gpwave import report

    assert "tabulate" in CORE
    assert "|" in report.to_markdown(pd.DataFrame({"a": [1.0]}))


def test_every_core_dependency_is_used_and_test_only_ones_are_dev():
    used = set()
    for path in MODULES:
        top, inner = _imports(path)
        for module in top | inner:
            used |= _dists(module)
    assert CORE - used == {"tabulate"}  # pandas imports it for DataFrame.to_markdown
    assert {"ptwt", "librosa"} <= EXTRAS["dev"] and not {"ptwt", "librosa"} & CORE


def test_torch_floor_covers_the_apis_used():
    (torch_req,) = [r for r in PROJECT["dependencies"] if r.startswith("torch")]
    floor = tuple(int(v) for v in re.search(r">=(\d+)\.(\d+)", torch_req).groups())
    assert floor >= (2, 3)  # torch.amp.GradScaler("cuda", ...) is new in 2.3
