"""Build the book: execute the notebooks with papermill, then run Jupyter Book.

The notebooks in ``notebooks/`` (jupytext ``py:percent`` sources with paired ``.ipynb``
files committed without outputs) are executed by papermill in dependency order: the
training notebook ``03_train`` once per detector that the later chapters compare, then
``04_generalization``, ``05_dilation``, ``06_attribution``, ``07_robustness`` and
``08_generalization_needs`` (its own cheap probes on speakers-train; no training run).
Every execution writes
only under the results folder (``results/`` or ``results/quick/``) and leaves a stamp
there: the hash of its inputs (notebook source, parameters, the gpwave sources, the
data manifest and the stamps of the executions it depends on). An execution whose
stamp matches is reused. The executed chapters are copied into ``book/executed/`` and
``jupyter-book build`` turns them, with the markdown chapters of ``book/``, into
``book/_build/html``, strictly (warnings are errors).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
BOOK = REPO / "book"
EXECUTED = BOOK / "executed"
#: Markdown the build writes from the chapters' findings (included by the pages).
GENERATED = BOOK / "_generated"
HTML = BOOK / "_build" / "html"
CHAPTERS = (
    "01_fingerprints",
    "02_data",
    "03_train",
    "04_generalization",
    "05_dilation",
    "06_attribution",
    "07_robustness",
    "08_generalization_needs",
)
#: The book's run matrix (the 03_train runs that chapters 04-07 compare) and CI settings.
MATRIX = REPO / "configs" / "book.yaml"
#: The paper's grid on full WaveFake, for a GPU node (``gpwave book --matrix``).
PAPER_MATRIX = REPO / "configs" / "book-wavefake.yaml"
#: Longest a notebook cell may run (seconds) before the build fails instead of hanging.
CELL_TIMEOUT = 3600
#: Attribution on the CPU in the full book build: test frames, IG steps (the self-trained
#: model), frames per class and IG steps (the paper's released sym5 model).
ATTRIBUTION_CPU = {"max_frames": 12, "n_steps": 16, "paper_max_frames": 12, "paper_n_steps": 16}
#: Matplotlib backend of the kernels, so figures become outputs (``make`` exports Agg).
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


@dataclass(frozen=True)
class Execution:
    """One papermill execution of a notebook.

    Args:
        name: Unique name; the stamp and executed copy are ``<results>/.book/<name>.*``.
        notebook: Stem of the notebook in ``notebooks/``, e.g. ``"03_train"``.
        parameters: Papermill parameters.
        chapter: Whether this execution is the one the book shows for ``notebook``.
        deps: Names of the executions whose results this one reads.
    """

    name: str
    notebook: str
    parameters: dict = field(default_factory=dict)
    chapter: bool = True
    deps: tuple[str, ...] = ()


def run_matrix(path: Path = MATRIX) -> dict:
    """The book's run matrix: protocol file, chapter run, runs and CI (quick) overrides.

    Notebook: notebooks/03_train.py

    Args:
        path: The YAML file (default ``configs/book.yaml``).

    Returns:
        Its mapping (``protocol``, ``chapter_run``, ``runs``, ``quick``).
    """
    from gpwave.config import load_yaml

    return load_yaml(path)


def _rel(path: Path) -> str:
    """``path`` relative to the repository when inside it (notebooks run from there)."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def detector_runs(quick: bool, matrix: Path = MATRIX) -> dict[str, dict]:
    """The training runs (parameters of ``03_train``) that chapters 04–07 compare.

    Each run is the matrix's protocol file (or the run's own ``protocol``) plus the
    run's overrides (see ``configs/book.yaml``; a run's ``label`` names it in the
    chapters); in ``quick`` mode the notebook lays the matrix's ``quick`` overrides over
    them. A matrix with ``resume: true`` (the paper-scale one) continues each seed of an
    interrupted run from its ``last.pt``.

    Args:
        quick: CI mode (changes nothing here; the notebook applies it).
        matrix: The run matrix (default ``configs/book.yaml``).

    Returns:
        Run name -> the notebook parameters of that run.
    """
    m = run_matrix(matrix)
    runs = {}
    for name, overrides in m["runs"].items():
        overrides = dict(overrides)
        protocol = overrides.pop("protocol", m["protocol"])
        overrides.pop("label", None)
        runs[name] = {"run_name": name, "protocol_file": protocol, "overrides": overrides}
        runs[name]["matrix"] = _rel(matrix)
        if m.get("resume"):
            runs[name]["resume"] = True
    return runs


def run_labels(matrix: Path = MATRIX) -> dict[str, str]:
    """Run name -> the label chapters 04 and 07 show, for runs whose matrix entry has one."""
    return {n: o["label"] for n, o in run_matrix(matrix)["runs"].items() if "label" in o}


#: How a run of the matrix names this build's results folder (``init: {results_dir}/runs/...``).
RESULTS = "{results_dir}"


def _training(common: dict, matrix: Path, quick: bool, device: str | None) -> list[Execution]:
    """One ``03_train`` execution per run of the matrix (the chapter run is shown).

    A run whose ``init`` starts with :data:`RESULTS` starts from another run of this
    build (in the build's results folder) and depends on it.
    """
    chapter_run = run_matrix(matrix)["chapter_run"]
    out = []
    for name, p in detector_runs(quick, matrix).items():
        init = str(p["overrides"].get("init", ""))
        if init.startswith(RESULTS):  # a run that starts from another run of this build
            here = common["results_dir"] + init[len(RESULTS) :]
            p = {**p, "overrides": {**p["overrides"], "init": here}}
        runs_before = [e.name.removeprefix("03_train-") for e in out]
        deps = tuple(
            f"03_train-{r}" for r in runs_before if init.startswith(f"{RESULTS}/runs/{r}/")
        )
        if device:
            p = {**p, "overrides": {**p["overrides"], "device": device}}
        out.append(
            Execution(f"03_train-{name}", "03_train", {**common, **p}, name == chapter_run, deps)
        )
    return out


def plan(
    quick: bool,
    results_dir: str,
    data_dir: str,
    matrix: Path = MATRIX,
    device: str | None = None,
    mini_dir: str | None = None,
) -> list[Execution]:
    """All executions of one book build, in dependency order.

    Args:
        quick: CI mode (passed to every notebook as ``quick``).
        results_dir: Results folder the notebooks read and write (relative to the repo).
        data_dir: Root of the letter-prefixed data tree the matrix trains and tests on.
        matrix: The run matrix (``configs/book.yaml``; ``configs/book-wavefake.yaml`` is
            the paper's grid on full WaveFake).
        device: Where models run (None: each notebook's ``auto``).
        mini_dir: The mini benchmark, for chapter 08's test folders (default: data_dir).

    Returns:
        The executions; each one's ``deps`` come before it.
    """
    m = run_matrix(matrix)
    common = {"quick": quick, "results_dir": results_dir, "data_dir": data_dir}
    dev = {"device": device} if device else {}
    protocol = {"protocol_file": m["protocol"]}
    named = run_labels(matrix)
    labels = {"runs": named} if named else {}
    chapters = m.get("chapters", {})
    pair = m.get("ablation", {"run": "dcnn_packets", "ablation_run": "dcnn_nodil"})
    train = _training(common, matrix, quick, device)
    trained = tuple(e.name for e in train)
    speakers = str(Path(data_dir).parent / "speakers-tts-mini")
    mini = mini_dir or data_dir
    attribution = chapters.get("06_attribution", {} if quick else ATTRIBUTION_CPU)
    return [
        Execution(
            "01_fingerprints",
            "01_fingerprints",
            {**common, **dev, "live_explorer": False, **chapters.get("01_fingerprints", {})},
        ),
        Execution("02_data", "02_data", {**common, **protocol}),
        *train,
        Execution(
            "04_generalization",
            "04_generalization",
            {**common, **dev, **labels, **chapters.get("04_generalization", {})},
            deps=trained,
        ),
        Execution(
            "05_dilation",
            "05_dilation",
            {**common, **dev, **protocol, **pair},
            deps=(f"03_train-{pair['run']}", f"03_train-{pair['ablation_run']}"),
        ),
        Execution(
            "06_attribution",
            "06_attribution",
            {**common, **dev, **protocol, "run": pair["run"], **({} if quick else attribution)},
            deps=(f"03_train-{pair['run']}",),
        ),
        Execution(
            "07_robustness",
            "07_robustness",
            {**common, **dev, **protocol, **labels, "speakers_dir": speakers},
            deps=trained,
        ),
        Execution(
            "08_generalization_needs",
            "08_generalization_needs",
            {
                **common,
                "data_dir": mini,
                "speakers_dir": str(Path(mini).parent / "speakers-tts-mini"),
                "train_dir": str(Path(mini).parent / "speakers-train"),
            },
            deps=(*trained, "07_robustness"),
        ),
    ]


def _digest(paths: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(root)).encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def sources_digest() -> str:
    """Hash of the gpwave sources that notebooks call (every module but this one) and configs.

    Returns:
        Hex digest.
    """
    pkg = REPO / "gpwave"
    files = [p for p in pkg.rglob("*.py") if p.name != "book.py" and "__pycache__" not in p.parts]
    files += list(pkg.rglob("*.tsv")) + list(pkg.rglob("*.json"))
    files += list((REPO / "configs").glob("*.yaml"))  # protocols and the run matrix
    return _digest(files, REPO)


def data_digest(data_dir: Path) -> str:
    """Hash of the data: its ``MANIFEST.tsv`` if present, else names, sizes and mtimes.

    Args:
        data_dir: Root of the letter-prefixed data tree.

    Returns:
        Hex digest.
    """
    manifest = data_dir / "MANIFEST.tsv"
    if manifest.is_file():
        return hashlib.sha256(manifest.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for p in sorted(data_dir.rglob("*.wav")):
        st = p.stat()
        h.update(f"{p.relative_to(data_dir)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def input_hash(ex: Execution, common: str, upstream: dict[str, str]) -> str:
    """Hash of everything an execution depends on.

    Args:
        ex: The execution.
        common: Digest of the gpwave sources and the data.
        upstream: Input hashes of the executions already planned, by name.

    Returns:
        Hex digest.
    """
    h = hashlib.sha256(common.encode())
    for suffix in (".py", ".ipynb"):
        h.update((NOTEBOOKS / f"{ex.notebook}{suffix}").read_bytes())
    h.update(json.dumps(ex.parameters, sort_keys=True).encode())
    for dep in ex.deps:
        h.update(upstream[dep].encode())
    return h.hexdigest()


@contextlib.contextmanager
def _kernel_env() -> Iterator[None]:
    """Let kernels draw inline figures even where ``MPLBACKEND=Agg`` is exported."""
    old = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = old


class NotebookFailed(RuntimeError):
    """A notebook raised during execution; the message names it and the error."""


def execute(ex: Execution, stamps: Path, digest: str, force: bool) -> bool:
    """Execute one notebook with papermill unless its stamp says it is up to date.

    Args:
        ex: The execution.
        stamps: Folder of stamps and executed copies (``<results>/.book``).
        digest: The execution's input hash.
        force: Execute even if the stamp matches.

    Returns:
        True if the notebook was executed, False if the previous result was reused.

    Raises:
        NotebookFailed: If a cell raised; names the notebook, the error and the output file.
    """
    import papermill

    stamp, out = stamps / f"{ex.name}.json", stamps / f"{ex.name}.ipynb"
    if not force and out.is_file() and stamp.is_file():
        if json.loads(stamp.read_text()).get("hash") == digest:
            return False
    stamp.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        with _kernel_env():
            papermill.execute_notebook(
                str(NOTEBOOKS / f"{ex.notebook}.ipynb"),
                str(out),
                parameters=ex.parameters,
                kernel_name="python3",
                cwd=str(REPO),
                progress_bar=False,
                execution_timeout=CELL_TIMEOUT,
            )
    except papermill.PapermillExecutionError as err:
        raise NotebookFailed(
            f"notebook {ex.name} ({ex.notebook}.ipynb) failed in cell {err.exec_count}: "
            f"{err.ename}: {err.evalue} -- see {out}"
        ) from err
    except Exception as err:  # kernel death, cell time-out, missing kernel
        raise NotebookFailed(
            f"notebook {ex.name} ({ex.notebook}.ipynb) failed: {type(err).__name__}: {err}"
        ) from err
    seconds = time.perf_counter() - start
    drop_widget_state(out)
    stamp.write_text(json.dumps({"hash": digest, "seconds": round(seconds, 1)}))
    return True


def drop_widget_state(path: Path) -> None:
    """Remove saved ipywidgets state from an executed notebook.

    The static book cannot run live widgets (it loads no widget JavaScript), and the
    state of the live explorer would only add megabytes of unused JSON to the page.

    Args:
        path: The executed notebook, rewritten in place.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if nb.metadata.pop("widgets", None) is not None:
        nbformat.write(nb, path)


def book_data_dir() -> Path:
    """The mini benchmark's folder: ``$GPWAVE_DATA/wavefake-mini`` (default ``data/``).

    Returns:
        The path (not checked).
    """
    return Path(os.environ.get("GPWAVE_DATA", REPO / "data")) / "wavefake-mini"


def execute_all(
    quick: bool,
    results: Path,
    force: bool,
    data_dir: Path,
    matrix: Path = MATRIX,
    device: str | None = None,
) -> list[Execution]:
    """Execute (or reuse) every notebook of the book in dependency order.

    An execution whose inputs (sources, data listing, parameters, upstream results) did
    not change since it last finished is reused; an interrupted one is executed again
    (with a ``resume: true`` matrix, its training continues from each seed's last.pt).

    Args:
        quick: CI mode.
        results: Results folder (absolute or relative to the repository).
        force: Re-execute everything.
        data_dir: Root of the data tree.
        matrix: The run matrix.
        device: Where models run (None: each notebook's ``auto``).

    Returns:
        The executions, in order.
    """
    results_rel = os.path.relpath(results if results.is_absolute() else REPO / results, REPO)
    mini = book_data_dir()
    executions = plan(quick, results_rel, shown_path(data_dir), matrix, device, shown_path(mini))
    stamps = REPO / results_rel / ".book"
    stamps.mkdir(parents=True, exist_ok=True)
    common = sources_digest() + data_digest(data_dir)
    hashes: dict[str, str] = {}
    timings = []
    for ex in executions:
        hashes[ex.name] = input_hash(ex, common, hashes)
        t0 = time.perf_counter()
        ran = execute(ex, stamps, hashes[ex.name], force)
        seconds = time.perf_counter() - t0
        verb = "executed" if ran else "reused  "
        print(f"[book] {verb} {ex.name} ({seconds:.0f} s)", flush=True)
        timings.append({"execution": ex.name, "executed": ran, "seconds": round(seconds, 1)})
    write_timings(timings, REPO / results_rel / "book_timings")
    EXECUTED.mkdir(parents=True, exist_ok=True)
    for old in EXECUTED.glob("*.ipynb"):
        old.unlink()
    for ex in executions:
        if ex.chapter:
            shutil.copyfile(stamps / f"{ex.name}.ipynb", EXECUTED / f"{ex.notebook}.ipynb")
    return executions


def shown_path(path: Path) -> str:
    """A path as the executed pages show it: relative to the repository when inside it.

    Parameter cells are printed in the book; the builder's absolute paths
    (``/home/.../data/wavefake-mini``) mean nothing to a reader. Notebooks run with the
    repository as working directory, so a relative path finds the same folder.

    Args:
        path: Any path.

    Returns:
        ``path`` relative to the repository, or absolute if it lies outside.
    """
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def write_timings(rows: list[dict], stem: Path) -> str:
    """Print and save the per-execution timing table of a book build.

    Args:
        rows: ``{"execution", "executed", "seconds"}`` per execution, in order.
        stem: Output path without suffix; ``.csv`` and ``.md`` are written.

    Returns:
        The Markdown table (with a total row).
    """
    import pandas as pd

    table = pd.DataFrame(rows, columns=["execution", "executed", "seconds"])
    total = {"execution": "total", "executed": bool(table["executed"].any()),
             "seconds": round(float(table["seconds"].sum()), 1)}  # fmt: skip
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    stem.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(stem.with_suffix(".csv"), index=False)
    text = table.to_markdown(index=False)
    stem.with_suffix(".md").write_text(text + "\n")
    print(f"[book] notebook executions (also in {stem}.csv):\n{text}", flush=True)
    return text


def jupyter_book_command() -> list[str]:
    """The strict ``jupyter-book build`` command line (run from the repository root).

    Returns:
        The argument list.
    """
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe)] if exe.is_file() else [shutil.which("jupyter-book") or "jupyter-book"]
    return cmd + [
        "build",
        str(BOOK),
        "--config",
        str(REPO / "_config.yml"),
        "--toc",
        str(REPO / "_toc.yml"),
        "--path-output",
        str(BOOK),
        "--all",
        "-W",
        "-n",
        "--keep-going",
    ]


def build_html() -> int:
    """Run Jupyter Book on ``book/`` with the executed notebooks.

    Returns:
        Jupyter Book's exit status.
    """
    if not (GENERATED / "scoreboard.md").is_file():
        write_generated(None)  # pages include it: say "not measured" rather than fail
    env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    shutil.rmtree(HTML, ignore_errors=True)  # no stale pages or assets of earlier builds
    return subprocess.run(jupyter_book_command(), cwd=REPO, env=env, check=False).returncode


def stage_try_page() -> None:
    """Put the Try page's ONNX models and onnxruntime-web into ``book/extra`` (ignored).

    ``gpwave export`` writes the models (:func:`gpwave.export.export_for_book`); the
    runtime comes from ``node_modules`` (``make web-deps``). ``html_extra_path`` copies
    both to the build's root.
    """
    from gpwave import export

    export.export_for_book(BOOK / "extra" / "models")
    export.vendor_ort_web(REPO / "node_modules", BOOK / "extra" / "vendor" / "onnxruntime-web")


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def build(
    quick: bool = False,
    results: Path = Path("results"),
    force: bool = False,
    matrix: Path = MATRIX,
    data: Path | None = None,
    device: str | None = None,
) -> int:
    """Execute every notebook with papermill and build the HTML book.

    Notebook: every notebook in notebooks/ (this builds them all).

    Args:
        quick: CI mode: few frames, one epoch, one seed; results under ``<results>/quick``.
        results: Results folder (checkpoints, tables, clips, stamps); a matrix other than
            the default one writes under ``<results>/<matrix name>``.
        force: Re-execute notebooks even if their inputs did not change.
        matrix: The run matrix (``configs/book-wavefake.yaml``: the paper's grid).
        data: The data tree (default: ``$GPWAVE_DATA/<the matrix's data>``, the mini
            benchmark for ``configs/book.yaml``).
        device: Where models run: cpu, cuda, cuda:N (None: CUDA if present).

    Returns:
        0 on success, 1 if a notebook or the Jupyter Book build failed.
    """
    start = time.perf_counter()
    matrix = Path(matrix)
    m = run_matrix(matrix)
    results = Path(results)
    if matrix.resolve() != MATRIX.resolve():
        results = results / matrix.stem
    results = results / "quick" if quick else results
    default = Path(os.environ.get("GPWAVE_DATA", REPO / "data")) / m.get("data", "wavefake-mini")
    data_dir = Path(data) if data is not None else default
    if not (data_dir / "A_ljspeech").is_dir():
        print(f"[book] no data at {data_dir}: run `make data` (or fetch and arrange the "
              "data the matrix names) first", file=sys.stderr)  # fmt: skip
        return 1
    try:
        execute_all(quick, results, force, data_dir, matrix, device)
    except NotebookFailed as err:
        print(f"[book] {err}", file=sys.stderr)
        return 1
    write_generated(REPO / results)
    t_html = time.perf_counter()
    from gpwave.errors import GpwaveError

    try:
        stage_try_page()
    except (OSError, GpwaveError) as err:
        print(f"[book] the Try page's models or runtime: {err}", file=sys.stderr)
        return 1
    status = build_html()
    if status != 0:
        print("[book] jupyter-book build failed (warnings are errors)", file=sys.stderr)
        return 1
    total = time.perf_counter() - start
    print(
        f"[book] built {HTML} ({_size_mb(HTML):.1f} MB) in {total:.0f} s "
        f"(jupyter-book {time.perf_counter() - t_html:.0f} s)",
        flush=True,
    )
    return 0


# --- generated Markdown: the scoreboard and the numbers of book/reproduce.md --------------
def scoreboard_page(found: dict) -> str:
    """The scoreboard include: the paper's links, then one row per deliverable.

    Args:
        found: Chapter -> :class:`gpwave.findings.ChapterFindings`.

    Returns:
        Markdown.
    """
    from gpwave import findings

    p = findings.PAPER
    head = (
        f"Paper: {p['cite']} ([arXiv 2305.13033]({p['arxiv']})); reference implementation "
        f"and released weights: [gan-police/audiodeepfake-detection]({p['repository']}).\n\n"
    )
    return head + findings.scoreboard_markdown(found)


def reproduce_numbers(found: dict, timings: Path | None) -> str:
    """What this build measured of the training runs and the time per notebook.

    Args:
        found: Chapter -> findings; ``04_generalization``'s numbers are quoted.
        timings: ``book_timings.md`` of the build, if any.

    Returns:
        Markdown.
    """
    from gpwave.findings import pct

    gen = found.get("04_generalization")
    if gen is None:
        text = "This build did not run the generalization chapter; no numbers to report.\n"
    else:
        n = gen.numbers
        text = (
            f"In the build of this copy{' (a quick build)' if gen.quick else ''}, the "
            f"{int(n.get('cnn_runs', 0))} CNN runs reach a best validation EER of at most "
            f"{pct(n.get('cnn_max_val_eer', float('nan')))} and a MelGAN test EER of at most "
            f"{pct(n.get('cnn_max_seen_eer', float('nan')))}; the DCNN on packets scores "
            f"{pct(n.get('dcnn_packets_seen', float('nan')))} on MelGAN and a pooled EER of "
            f"{pct(n.get('dcnn_packets_pooled', float('nan')))} on the folders it never saw, "
            f"while the paper's released sym5 model scores a pooled EER of "
            f"{pct(n.get('released_pooled', float('nan')))} on the unseen folders without the "
            f"r9y9 folders U–Z (its worst folder: {n.get('released_worst_name', '')}, "
            f"{pct(n.get('released_worst_folder', float('nan')))}; chapter 04 lists them all).\n"
        )
    if timings is not None and timings.is_file():
        text += "\nTime per notebook execution in this build (seconds; `executed` False: " \
                "reused, its inputs had not changed):\n\n" + timings.read_text()  # fmt: skip
    return text


def write_generated(results: Path | None) -> list[Path]:
    """Write ``book/_generated/*.md`` from the findings the notebooks saved.

    Notebook: every notebook that saves findings (``gpwave.findings.save``).

    Args:
        results: The build's results folder (None: no findings, placeholders only).

    Returns:
        The files written.
    """
    from gpwave import findings

    found = findings.load_all(results) if results is not None else {}
    timings = results / "book_timings.md" if results is not None else None
    GENERATED.mkdir(parents=True, exist_ok=True)
    pages = {
        "scoreboard.md": scoreboard_page(found),
        "reproduce_numbers.md": reproduce_numbers(found, timings),
    }
    for name, text in pages.items():
        (GENERATED / name).write_text(text)
    return [GENERATED / name for name in pages]


# --- Sphinx extension (loaded by _config.yml: sphinx.extra_extensions) -------------------
def _drop_remote_scripts(app: object) -> None:
    """Disconnect sphinx-thebe's hooks: they add a CDN script URL to every page."""
    for event in ("env-before-read-docs", "doctree-resolved"):
        for listener in list(app.events.listeners.get(event, [])):
            if getattr(listener.handler, "__module__", "") == "sphinx_thebe":
                app.disconnect(listener.id)


def setup(app: object) -> dict:
    """Sphinx hook: keep the book offline (no thebe, launch or CDN scripts).

    Notebook: none (used by ``jupyter-book build`` through ``_config.yml``).

    Args:
        app: The Sphinx application.

    Returns:
        Extension metadata.
    """
    app.connect("builder-inited", _drop_remote_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
