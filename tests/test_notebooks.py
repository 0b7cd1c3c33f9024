"""The notebooks: paired jupytext sources, in sync, no outputs, papermill parameters.

Also the plan of the book build (gpwave.book): dependency order and input hashing.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import pytest
from jupytext.compare import compare_notebooks

from gpwave import book

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("*.py"))
#: Book chapters are ``NN_name``; other notebooks (the live explorer, served by
#: ``make explore``) are paired and clean like them but are not in the book.
CHAPTERS = [p for p in SOURCES if re.match(r"\d\d_", p.stem)]
OTHERS = ["explorer"]
EXPECTED = [
    "01_fingerprints",
    "02_data",
    "03_train",
    "04_generalization",
    "05_dilation",
    "06_attribution",
    "07_robustness",
    "08_generalization_needs",
]


def test_every_chapter_has_a_source() -> None:
    assert [p.stem for p in CHAPTERS] == EXPECTED
    assert [p.stem for p in SOURCES if p not in CHAPTERS] == OTHERS


def test_the_explorer_is_no_chapter_and_reads_the_mini_benchmark() -> None:
    assert "explorer" not in (REPO / "_toc.yml").read_text()
    params = _parameters(NOTEBOOKS / "explorer.py")
    assert {"data_dir", "max_frames", "wavelet", "level"} <= set(params)
    text = ast.unparse(params["data_dir"])
    assert "GPWAVE_DATA" in text and "wavefake-mini" in text


def test_every_notebook_has_a_source() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == [p.stem for p in SOURCES]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_paired_and_in_sync(source: Path) -> None:
    paired = source.with_suffix(".ipynb")
    assert paired.is_file(), f"{source.name} has no paired {paired.name}"
    from_py = jupytext.read(source)
    from_ipynb = jupytext.read(paired)
    assert "py:percent" in from_ipynb.metadata.get("jupytext", {}).get("formats", "")
    compare_notebooks(from_ipynb, from_py, fmt="py:percent")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_without_outputs(source: Path) -> None:
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{source.stem} cell {i} has outputs"
            assert cell.execution_count is None, f"{source.stem} cell {i} was executed"


def _parameters(source: Path) -> dict[str, object]:
    nb = jupytext.read(source)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{source.stem}: expected one cell tagged 'parameters'"
    names: dict[str, object] = {}
    for node in ast.parse(cells[0].source).body:
        assert isinstance(node, ast.Assign), f"{source.stem}: only assignments in parameters"
        names[node.targets[0].id] = node.value
    return names


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_parameters_cell(source: Path) -> None:
    params = _parameters(source)
    for name in ("quick", "data_dir", "results_dir"):
        assert name in params, f"{source.stem}: no parameter {name!r}"
    quick = params["quick"]
    assert isinstance(quick, ast.Constant) and quick.value is False
    assert "GPWAVE_DATA" in ast.unparse(params["data_dir"])
    assert "wavefake-mini" in ast.unparse(params["data_dir"])


def test_training_chapter_lets_a_long_run_show_progress_and_resume() -> None:
    """Notebook 03: `progress` and `resume` are parameters, and the user's overrides win."""
    source = NOTEBOOKS / "03_train.py"
    params = _parameters(source)
    assert {"progress", "resume"} <= set(params)
    text = source.read_text()
    assert "resume=resume" in text
    call = next(line for line in text.splitlines() if "train.read_config(protocol_file" in line)
    # the notebook's progress default comes first, so overrides={"progress": True} wins
    assert call.index('"progress": progress') < call.index("**overrides")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_thin_cells_and_no_shell_or_network(source: Path) -> None:
    text = source.read_text()
    for banned in ("!pip", "%pip", "urllib", "requests.get", "http://", "https://"):
        assert banned not in text, f"{source.stem} contains {banned!r}"
    for cell in jupytext.read(source).cells:
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
            assert not defs, f"{source.stem}: define functions in gpwave, not in a cell"


def test_plan_runs_training_before_its_readers(tmp_path: Path) -> None:
    executions = book.plan(quick=True, results_dir="results/quick", data_dir=str(tmp_path))
    names = [e.name for e in executions]
    assert len(set(names)) == len(names)
    for i, ex in enumerate(executions):
        assert set(ex.deps) <= set(names[:i]), f"{ex.name} runs before what it reads"
        assert (NOTEBOOKS / f"{ex.notebook}.ipynb").is_file()
        assert ex.parameters["quick"] is True
        assert ex.parameters["results_dir"] == "results/quick"
    chapters = [e.notebook for e in executions if e.chapter]
    assert sorted(chapters) == EXPECTED
    runs = {e.parameters.get("run_name") for e in executions if e.notebook == "03_train"}
    for reader in executions:
        for key in ("run", "ablation_run"):
            if key in reader.parameters:
                assert reader.parameters[key] in runs


@pytest.mark.parametrize("matrix", [book.MATRIX, book.PAPER_MATRIX], ids=lambda p: p.stem)
def test_plan_parameters_exist_in_notebooks(tmp_path: Path, matrix: Path) -> None:
    for quick in (False, True):
        plan = book.plan(quick, "results", str(tmp_path), matrix, device="cuda")
        for ex in plan:
            declared = _parameters(NOTEBOOKS / f"{ex.notebook}.py")
            unknown = set(ex.parameters) - set(declared)
            assert not unknown, f"{ex.name}: parameters {unknown} not in the parameters cell"


def test_the_paper_scale_plan_is_the_papers_grid(tmp_path: Path) -> None:
    """Packets and STFT, each with and without dilation, 5 seeds, the LFCC-GMM, on CUDA."""
    from gpwave.train import read_config

    plan = {e.name: e for e in book.plan(False, "r", str(tmp_path), book.PAPER_MATRIX, "cuda")}
    runs = {e.parameters["run_name"]: e.parameters for e in plan.values()
            if e.notebook == "03_train"}  # fmt: skip
    assert set(runs) == {"dcnn_packets", "dcnn_nodil", "dcnn_stft", "dcnn_stft_nodil", "gmm_lfcc"}
    for name, p in runs.items():
        assert p["resume"] is True and p["overrides"]["device"] == "cuda"
        assert p["protocol_file"] == "configs/wavefake.yaml"
        ((_, cfg),) = read_config(REPO / p["protocol_file"], p["overrides"])
        assert cfg.train_generator == "fbmelgan" and cfg.seeds == [0, 1, 2, 3, 4], name
    kinds = {(runs[n]["overrides"]["model"], runs[n]["overrides"]["feature"]["kind"]) for n in runs}
    assert {("dcnn", "packets"), ("dcnn_nodil", "packets"), ("dcnn", "stft"),
            ("dcnn_nodil", "stft"), ("gmm", "lfcc")} == kinds  # fmt: skip
    assert plan["06_attribution"].parameters["max_frames"] >= 2000
    assert plan["05_dilation"].parameters["ablation_run"] == "dcnn_nodil"
    assert plan["04_generalization"].parameters["train_generator"] == "fbmelgan"
    assert set(plan["04_generalization"].parameters["runs"]) == set(runs)
    assert all(e.parameters.get("device", "cuda") == "cuda" for e in plan.values()
               if e.notebook != "08_generalization_needs")  # fmt: skip


def test_book_cli_builds_from_a_matrix_and_device(monkeypatch) -> None:
    from gpwave.cli import main

    seen = {}
    monkeypatch.setattr(book, "build", lambda **kw: seen.update(kw) or 0)
    argv = ["book", "--matrix", "configs/book-wavefake.yaml", "--device", "cpu", "--data", "d"]
    assert main(argv) == 0
    assert seen["matrix"] == Path("configs/book-wavefake.yaml") and seen["device"] == "cpu"
    assert seen["data"] == Path("d") and seen["quick"] is False


@pytest.mark.parametrize("chapter", ["04_generalization", "07_robustness"])
def test_chapters_read_only_runs_the_book_trains(chapter: str) -> None:
    params = _parameters(NOTEBOOKS / f"{chapter}.py")
    trained = set(book.detector_runs(quick=False))
    read = set(ast.literal_eval(params["runs"]))
    assert read <= trained, f"{chapter} reads runs the book never trains: {read - trained}"


def test_input_hash_changes_with_parameters_and_upstream() -> None:
    ex = book.Execution("x", "04_generalization", {"quick": True}, deps=("a",))
    base = book.input_hash(ex, "common", {"a": "1"})
    assert base == book.input_hash(ex, "common", {"a": "1"})
    assert base != book.input_hash(ex, "common", {"a": "2"})
    assert base != book.input_hash(ex, "other", {"a": "1"})
    changed = book.Execution("x", "04_generalization", {"quick": False}, deps=("a",))
    assert base != book.input_hash(changed, "common", {"a": "1"})


def test_data_digest_uses_manifest_or_listing(tmp_path: Path) -> None:
    (tmp_path / "A_x").mkdir()
    (tmp_path / "A_x" / "a.wav").write_bytes(b"RIFF")
    listing = book.data_digest(tmp_path)
    (tmp_path / "A_x" / "b.wav").write_bytes(b"RIFF")
    assert book.data_digest(tmp_path) != listing
    (tmp_path / "MANIFEST.tsv").write_text("file\tmd5\n")
    with_manifest = book.data_digest(tmp_path)
    (tmp_path / "A_x" / "c.wav").write_bytes(b"RIFF")
    assert book.data_digest(tmp_path) == with_manifest


def test_reuses_an_execution_with_a_matching_stamp(tmp_path: Path) -> None:
    ex = book.Execution("02_data", "02_data", {})
    (tmp_path / "02_data.ipynb").write_text("{}")
    (tmp_path / "02_data.json").write_text(json.dumps({"hash": "abc"}))
    assert book.execute(ex, tmp_path, "abc", force=False) is False


def test_config_keeps_the_book_offline_and_strict() -> None:
    import yaml

    cfg = yaml.safe_load((REPO / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "off"
    sphinx = cfg["sphinx"]["config"]
    assert "://" not in sphinx["mathjax_path"]
    vendored = REPO / "book" / sphinx["html_extra_path"][0] / "vendor" / "mathjax" / "tex-svg.js"
    assert vendored.is_file()
    static = REPO / "book" / "_static"
    assert not list(static.rglob("*.js")), "JS in book/_static lands on every page"
    assert sphinx["nb_ipywidgets_js"] == {}
    assert not any(cfg["launch_buttons"].get(k) for k in ("binderhub_url", "colab_url", "thebe"))
    cmd = book.jupyter_book_command()
    assert {"-W", "-n", "--keep-going"} <= set(cmd)


def test_drop_widget_state(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.cells.append(nbformat.v4.new_code_cell("1"))
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    book.drop_widget_state(path)
    assert "widgets" not in nbformat.read(path, as_version=4).metadata


def test_environment_yml_for_gpu_nodes() -> None:
    """The GPU environment pip-installs the Makefile's pinned torch, not conda's pytorch."""
    import yaml

    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    assert not any(str(d).startswith(("pytorch", "torch")) for d in deps), "conda torch"
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    spec = re.search(r"^TORCH_SPEC \?= (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert spec and spec.group(1) in pip
    assert any("-e ." in line for line in pip)
    assert "-c constraints.txt" in pip


def _notebook_links():
    """(module, function, owning class or None, linked notebook) of every back-link."""
    link = re.compile(r"^\s*Notebook: notebooks/(\S+\.py)\s*$", re.M)
    for path in sorted((REPO / "gpwave").glob("*.py")):
        tree = ast.parse(path.read_text())
        owner = {
            id(f): c.name for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for f in c.body
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                for nb in link.findall(ast.get_docstring(node) or ""):
                    yield path.name, node.name, owner.get(id(node)), nb


def test_notebook_back_links_name_a_notebook_that_mentions_the_function():
    links = list(_notebook_links())
    assert len(links) > 20
    wrong = []
    for module, name, cls, nb in links:
        text = (NOTEBOOKS / nb).read_text()
        if cls is None:
            ok = re.search(rf"\b{re.escape(name)}\b", text) is not None
        else:  # a method: its class and ``.method`` both appear
            ok = re.search(rf"\b{re.escape(cls)}\b", text) is not None and f".{name}" in text
        if not ok:
            wrong.append(f"{module}: {cls + '.' if cls else ''}{name} -> {nb}")
    assert not wrong, "Notebook: links to notebooks that never mention the function:\n" + "\n".join(
        wrong
    )


def test_pages_show_data_paths_relative_to_the_repository(tmp_path):
    inside = REPO / "data" / "wavefake-mini"
    assert book.shown_path(inside) == "data/wavefake-mini"
    assert book.shown_path(tmp_path) == str(tmp_path.resolve())  # outside: left absolute


def test_timing_table_lists_each_execution_and_the_total(tmp_path, capsys):
    rows = [
        {"execution": "01_fingerprints", "executed": True, "seconds": 12.5},
        {"execution": "02_data", "executed": False, "seconds": 0.25},
    ]
    book.write_timings(rows, tmp_path / "book_timings")
    saved = pd.read_csv(tmp_path / "book_timings.csv")
    assert saved["execution"].tolist() == ["01_fingerprints", "02_data", "total"]
    assert saved["seconds"].iloc[-1] == pytest.approx(12.8, abs=0.1)
    assert "01_fingerprints" in (tmp_path / "book_timings.md").read_text()
    assert "total" in capsys.readouterr().out


def _toc_chapters() -> list[str]:
    """Notebook chapters of the book: the ``executed/NN_name`` entries of ``_toc.yml``."""
    import yaml

    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    return [f.removeprefix("executed/") for f in files if f.startswith("executed/")]


EXERCISE_HEADING = re.compile(r"### Exercise (\d+): \S.*")
SOLUTION_OPEN = "````{admonition} Solution\n:class: dropdown\n"


def test_toc_lists_the_notebook_chapters() -> None:
    assert _toc_chapters()[: len(EXPECTED)] == EXPECTED
    for chapter in _toc_chapters():
        assert (NOTEBOOKS / f"{chapter}.py").is_file(), f"_toc.yml lists {chapter}, no source"


@pytest.mark.parametrize("chapter", _toc_chapters())
def test_chapter_ends_with_exercises_and_collapsed_solutions(chapter: str) -> None:
    """The last section is '## Exercises': 2-3 markdown cells, one exercise each.

    Each exercise cell starts with '### Exercise k: title' (k = 1, 2, ...), states the task,
    and ends with one MyST dropdown admonition titled 'Solution' (collapsed in the book)
    that explains the outcome and holds the Python code to run; a hidden code cell after
    it runs that code in quick builds.
    """
    cells = jupytext.read(NOTEBOOKS / f"{chapter}.py").cells
    first_lines = [c.source.strip().splitlines()[0] if c.source.strip() else "" for c in cells]
    starts = [i for i, line in enumerate(first_lines) if line == "## Exercises"]
    assert len(starts) == 1, f"{chapter}: expected one '## Exercises' cell, found {len(starts)}"
    intro, after = cells[starts[0]], cells[starts[0] + 1 :]
    exercises = [c for c in after if c.cell_type == "markdown"]
    checks = [c for c in after if c.cell_type == "code"]  # hidden: see the next test
    assert all("remove-cell" in c.metadata.get("tags", []) for c in checks), chapter
    assert intro.cell_type == "markdown" and len(intro.source.splitlines()) > 2
    assert "Solution" in intro.source, f"{chapter}: the introduction says how to open solutions"
    assert 2 <= len(exercises) <= 3, f"{chapter}: {len(exercises)} exercises, expected 2-3"
    for k, cell in enumerate(exercises, start=1):
        where = f"{chapter}, exercise {k}"
        lines = cell.source.strip().splitlines()
        heading = EXERCISE_HEADING.fullmatch(lines[0])
        assert heading and int(heading.group(1)) == k, f"{where}: heading {lines[0]!r}"
        assert not any(line.startswith(("# ", "## ", "### ")) for line in lines[1:]), where
        text = cell.source.strip()
        assert text.count(SOLUTION_OPEN) == 1, f"{where}: needs one collapsed Solution dropdown"
        task, solution = text.split(SOLUTION_OPEN)
        assert len(task.split()) >= 20, f"{where}: the task is missing"
        assert "predict" in task.lower(), f"{where}: the reader predicts before running"
        assert solution.rstrip().endswith("\n````"), f"{where}: the solution closes the cell"
        assert solution.count("````") == 1, f"{where}: one closing fence"
        explanation, _, rest = solution.partition("```python\n")
        assert len(explanation.split()) >= 40, f"{where}: the solution explains the outcome"
        code, closed, _ = rest.partition("\n```\n")
        assert closed, f"{where}: the solution holds one ```python block"
        ast.parse(code)  # the code to run is valid Python


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_chapters_end_with_computed_findings(source: Path) -> None:
    """Every chapter says what it found, computed (gpwave.findings), before its exercises."""
    if not source.stem[:2].isdigit():
        return
    text = source.read_text()
    assert "# ## What we found" in text, f"{source.stem}: no 'What we found' section"
    assert "findings.save(found, results_dir)" in text, f"{source.stem}: findings not saved"
    assert text.index("# ## What we found") < text.index("# ## Exercises")
    if source.stem[:2] in {"01", "04", "05", "06"}:
        assert "{include} ../_generated/scoreboard.md" in text, f"{source.stem}: no scoreboard"


def _solutions_and_checks(source: Path) -> list[tuple[str, object]]:
    """Each exercise solution's code block and the code cell that follows it."""
    cells = jupytext.read(source).cells
    pairs = []
    for i, cell in enumerate(cells):
        if cell.cell_type == "markdown" and "{admonition} Solution" in cell.source:
            code = re.search(r"```python\n(.*?)```", cell.source, re.S)
            assert code, f"{source.stem}: a solution without a python block"
            pairs.append((code.group(1), cells[i + 1] if i + 1 < len(cells) else None))
    return pairs


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_exercise_solutions_run_in_quick_builds_with_a_check(source: Path) -> None:
    """After every solution, a hidden cell runs exactly its code when quick, then asserts."""
    for k, (code, check) in enumerate(_solutions_and_checks(source), start=1):
        where = f"{source.stem} exercise {k}"
        assert check is not None and check.cell_type == "code", f"{where}: no check cell"
        assert "remove-cell" in check.metadata.get("tags", []), f"{where}: check cell shown"
        (guard,) = ast.parse(check.source).body
        assert isinstance(guard, ast.If), where
        assert ast.unparse(guard.test).split(" and ")[0] == "quick", f"{where}: not run when quick"
        solution = ast.parse(code).body
        ran = guard.body[: len(solution)]
        assert [ast.dump(s) for s in ran] == [ast.dump(s) for s in solution], (
            f"{where}: the check cell does not run the printed solution"
        )
        rest = guard.body[len(solution) :]
        assert any(isinstance(s, ast.Assert) for s in rest), f"{where}: no assertion"


def test_generated_markdown_from_saved_findings(tmp_path: Path, monkeypatch) -> None:
    """The build writes the scoreboard and reproduce's numbers from the chapters' JSON."""
    from gpwave import findings

    monkeypatch.setattr(book, "GENERATED", tmp_path / "generated")
    results = tmp_path / "results"
    rows = [["pooled_without_U-Z", 0.02, 0.01, 0.04], ["pooled_unseen", 0.3, 0.2, 0.4],
            ["melgan", 0.05, 0.0, 0.1]]  # fmt: skip
    table = pd.DataFrame(rows, columns=["generator", "eer", "eer_ci_low", "eer_ci_high"])
    own = table.rename(columns={"eer": "eer_mean"}).replace("pooled_without_U-Z", "x")
    overview = pd.DataFrame({"run": ["dcnn_packets"], "model": ["dcnn"], "best_val_eer": [0.023],
                             "converged": [True]})  # fmt: skip
    found = findings.generalization_findings(table, {"dcnn_packets": own}, overview, "melgan")
    findings.save(found, results)
    (results / "book_timings.md").write_text("| execution | seconds |\n|---|---|\n| 01 | 3 |\n")
    score, numbers = book.write_generated(results)
    text = score.read_text()
    assert "arxiv.org/abs/2305.13033" in text and "gan-police/audiodeepfake-detection" in text
    assert "released: **reproduced**" in text and text.count("not measured in this build") == 3
    said = numbers.read_text()
    assert (
        "best validation EER of at most 2.3 %" in said
        and "MelGAN test EER of at most 5.0 %" in said
    )
    assert "| 01 | 3 |" in said
    empty, _ = book.write_generated(None)
    assert empty.read_text().count("not measured in this build") == 4
