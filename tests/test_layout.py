"""The package's shape (issue 20): no drawer modules, no long functions, no import circle.

These read the source as text and syntax trees, so each can fail on a change that
grows a module past its room or makes two modules import each other.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gpwave"
MAX_MODULE_LINES = 800
MAX_TRAIN_LINES = 600
MAX_FUNCTION_CODE_LINES = 80


def _modules() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def _code_lines(src: str) -> set[int]:
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type not in skip and tok.type != tokenize.STRING:
            lines.add(tok.start[0])
    return lines


def _imports(path: Path) -> set[str]:
    """gpwave modules that ``path`` imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gpwave"):
            if node.module == "gpwave":
                names.update(a.name for a in node.names)
            else:
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("gpwave."))
    own = {p.stem for p in _modules()}
    return (names & own) - {path.stem}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_no_module_is_a_drawer(path: Path) -> None:
    limit = MAX_TRAIN_LINES if path.stem == "train" else MAX_MODULE_LINES
    n = len(path.read_text().splitlines())
    assert n <= limit, f"{path.name} has {n} lines (at most {limit})"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_no_function_is_long(path: Path) -> None:
    src = path.read_text()
    code = _code_lines(src)
    long = []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = sum(1 for line in range(node.lineno, node.end_lineno + 1) if line in code)
            if n > MAX_FUNCTION_CODE_LINES:
                long.append(f"{node.name} ({n} lines of code)")
    assert not long, f"{path.name}: {', '.join(long)}"


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_circle() -> None:
    graph = {p.stem: _imports(p) for p in _modules()}
    circles = sorted(
        f"{a} -> {b} -> ... -> {a}" for a in graph for b in graph[a] if a in _reachable(graph, b)
    )
    assert not circles, f"import circles: {circles[:6]}"


def test_training_never_branches_on_a_model_name() -> None:
    from typing import get_args

    from gpwave.constants import ModelName

    src = (PACKAGE / "train.py").read_text()
    found = []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Compare):
            consts = [c.value for c in ast.walk(node) if isinstance(c, ast.Constant)]
            found += [c for c in consts if c in get_args(ModelName)]
    assert not found, f"train.py compares against model names: {found}"


def test_the_retired_fusion_is_gone() -> None:
    hits = [p.name for p in _modules() if "fusion" in p.read_text().lower()]
    assert not hits, f"'fusion' still in {hits}"
