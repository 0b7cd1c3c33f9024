"""Reporting: per-generator tables from scores, seed aggregation, and table export.

Tables are tidy DataFrames with columns ``generator, n_frames, eer, eer_ci_low,
eer_ci_high, accuracy, eer_argmax`` (:data:`TABLE_COLUMNS`), computed from continuous
fake log-odds by :mod:`gpwave.metrics`, and render to Markdown, HTML, LaTeX and strict
JSON. The last column is the reference implementation's EER from argmax labels
(:func:`gpwave.metrics.argmax_eer`), only so that numbers can be related to the paper's.

Notebook: notebooks/04_generalization.py
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gpwave.errors import DataError
from gpwave.metrics import accuracy, argmax_eer, eer, eer_ci, paired_eer_difference

TABLE_COLUMNS = [
    "generator", "n_frames", "eer", "eer_ci_low", "eer_ci_high", "accuracy", "eer_argmax"
]  # fmt: skip
#: Name of the row that pools every generator not seen in training.
POOLED = "pooled_unseen"


def metrics_row(
    generator: str,
    labels: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    device: Any = None,
) -> dict[str, Any]:
    """One table row: EER with bootstrap CI, accuracy at log-odds 0 and the argmax EER.

    Args:
        generator: Row name.
        labels: 1 fake, 0 real.
        scores: Fake log-odds.
        groups: Utterance of each frame.
        n_boot: Bootstrap resamples (0: no CI).
        seed: Seed of the bootstrap.
        device: Where the bootstrap runs (:func:`gpwave.metrics.bootstrap_eers`).

    Returns:
        Dict with the :data:`TABLE_COLUMNS`.

    Example:
        >>> row = metrics_row("melgan", [0, 0, 1, 1], [-2.0, -1.0, 1.0, 0.5], ["a"] * 4, 0)
        >>> row["eer"], row["accuracy"], row["n_frames"]
        (0.0, 1.0, 4)
    """
    ci = eer_ci(labels, scores, groups, n_boot, seed=seed, device=device) if n_boot else None
    low, high = ci or (np.nan, np.nan)
    return {
        "generator": generator,
        "n_frames": int(len(labels)),
        "eer": eer(labels, scores),
        "eer_ci_low": low,
        "eer_ci_high": high,
        "accuracy": accuracy(labels, scores),
        "eer_argmax": argmax_eer(labels, scores),
    }


def table_from_scores(
    frames: pd.DataFrame,
    scores: np.ndarray,
    seen: Sequence[str] = (),
    n_boot: int = 1000,
    seed: int = 0,
    pools: dict[str, Sequence[str]] | None = None,
    by: str = "generator",
    device: Any = None,
) -> pd.DataFrame:
    """Per-generator table (each fake generator vs all real frames) plus pooled rows.

    Args:
        frames: Index rows (columns label, utterance and ``by``) of the scored frames.
        scores: Fake log-odds aligned with ``frames``.
        seen: Generators seen in training; left out of the pooled-unseen row.
        n_boot: Bootstrap resamples.
        seed: Seed of the bootstrap.
        pools: Extra pooled rows: name -> generators left out of that pool (besides
            ``seen``), e.g. ``{"pooled_without_U-Z": ["wavenet", ...]}``.
        by: The column whose values make the rows (``generator``; or e.g. a folder,
            speaker or system column); ``seen`` and ``pools`` name its values.
        device: Where the bootstrap runs (None: numpy on the CPU; a CUDA device: torch).

    Returns:
        DataFrame with :data:`TABLE_COLUMNS` (the row names in ``generator``), one row
        per value of ``by`` among the fake frames, then ``pooled_unseen`` and the
        ``pools`` rows.

    Example:
        >>> frames = pd.DataFrame({"label": [0, 0, 1, 1], "utterance": list("abab"),
        ...                        "generator": ["real", "real", "melgan", "pwg"]})
        >>> t = table_from_scores(frames, np.array([-1.0, -2.0, 3.0, -1.5]), n_boot=0)
        >>> t[["generator", "n_frames", "eer"]]
               generator  n_frames  eer
        0         melgan         3  0.0
        1            pwg         3  0.5
        2  pooled_unseen         4  0.5
    """
    labels = frames["label"].to_numpy(int)
    gens = frames[by].to_numpy(str)
    utts = frames["utterance"].to_numpy(str)
    real = labels == 0
    rows = []
    for g in pd.unique(gens[~real]):
        m = real | (gens == g)
        rows.append(metrics_row(g, labels[m], scores[m], utts[m], n_boot, seed, device))
    for name, left_out in {POOLED: (), **(pools or {})}.items():
        m = real | ~np.isin(gens, [*seen, *left_out])
        if 0 < labels[m].sum() < m.sum():
            rows.append(metrics_row(name, labels[m], scores[m], utts[m], n_boot, seed, device))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def paired_table(
    frames: pd.DataFrame,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    seen: str,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`paired_eer_difference` on the seen generator's and on the unseen frames.

    Notebook: notebooks/05_dilation.py

    Args:
        frames: Index rows (label, generator, utterance) of the frames both scored.
        scores_a: Fake scores of detector A (e.g. with dilation).
        scores_b: Fake scores of detector B on the same frames.
        seen: The training generator: its frames vs real make the first row; every
            other generator's frames vs real make ``pooled_unseen``.
        n_boot: Bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        Rows ``test_frames`` (``seen``, ``pooled_unseen``), ``eer_a``, ``eer_b``,
        ``difference``, ``ci_low``, ``ci_high``.

    Example:
        >>> frames = pd.DataFrame({"label": [0, 1, 0, 1], "utterance": list("aabb"),
        ...                        "generator": ["real", "melgan", "real", "pwg"]})
        >>> a, b = np.array([-1.0, 1.0, -1.0, 1.0]), np.array([-1.0, 1.0, 2.0, 1.0])
        >>> paired_table(frames, a, b, "melgan", n_boot=10)[["test_frames", "difference"]]
             test_frames  difference
        0         melgan        -0.5
        1  pooled_unseen        -0.5
    """
    y = frames["label"].to_numpy(int)
    gens = frames["generator"].to_numpy(str)
    utts = frames["utterance"].to_numpy(str)
    a, b = np.asarray(scores_a, float), np.asarray(scores_b, float)
    rows = []
    for name, keep in ((seen, (y == 0) | (gens == seen)), (POOLED, gens != seen)):
        if not 0 < y[keep].sum() < keep.sum():
            continue
        diff, low, high = paired_eer_difference(
            y[keep], a[keep], b[keep], utts[keep], n_boot, seed=seed
        )
        rows.append({"test_frames": name, "eer_a": eer(y[keep], a[keep]),
                     "eer_b": eer(y[keep], b[keep]), "difference": diff,
                     "ci_low": low, "ci_high": high})  # fmt: skip
    return pd.DataFrame(rows)


def load_seed_tables(
    run_dir: str | Path, seeds: Sequence[int] | None = None, name: str = "test_table"
) -> dict[int, pd.DataFrame]:
    """The per-seed tables a training run wrote (``<run_dir>/seed<k>/<name>.csv``).

    Notebook: notebooks/04_generalization.py

    Args:
        run_dir: The run folder holding ``seed0``, ``seed1``...
        seeds: Only these seeds (None: every seed found).
        name: Table file stem.

    Returns:
        Seed -> table, by seed.

    Raises:
        DataError: No table in ``run_dir`` (the run was not trained or not evaluated).

    Example:
        >>> import tempfile
        >>> run = Path(tempfile.mkdtemp())
        >>> for k in (1, 0):
        ...     (run / f"seed{k}").mkdir()
        ...     pd.DataFrame({"eer": [k / 10]}).to_csv(run / f"seed{k}/test_table.csv")
        >>> list(load_seed_tables(run))
        [0, 1]
    """
    paths = {
        int(p.parent.name.removeprefix("seed")): p for p in Path(run_dir).glob(f"seed*/{name}.csv")
    }
    if seeds is not None:
        paths = {s: p for s, p in paths.items() if s in set(seeds)}
    if not paths:
        raise DataError(f"{run_dir}: no seed*/{name}.csv; train the run (with eval_test) first")
    return {seed: pd.read_csv(paths[seed]) for seed in sorted(paths)}


def aggregate_seeds(tables: Sequence[pd.DataFrame] | dict[Any, pd.DataFrame]) -> pd.DataFrame:
    """Mean and std over seeds of per-generator tables.

    Notebook: notebooks/04_generalization.py

    Args:
        tables: One table per seed (list, or dict seed -> table).

    Returns:
        DataFrame: generator, n_frames, n_seeds, eer_mean, eer_std, accuracy_mean,
        accuracy_std, eer_ci_low, eer_ci_high (CI bounds averaged over seeds).

    Example:
        >>> t = pd.DataFrame({"generator": ["melgan"], "n_frames": [8], "eer": [0.1],
        ...                   "accuracy": [0.9], "eer_ci_low": [0.0], "eer_ci_high": [0.2]})
        >>> agg = aggregate_seeds([t, t.assign(eer=0.3)])
        >>> agg.loc[0, ["eer_mean", "eer_std"]].round(3).tolist()
        [0.2, 0.1]
    """
    items = tables.items() if isinstance(tables, dict) else enumerate(tables)
    df = pd.concat([t.assign(seed=s) for s, t in items], ignore_index=True)
    g = df.groupby("generator", sort=False)
    out = pd.DataFrame(
        {
            "n_frames": g["n_frames"].max(),
            "n_seeds": g["seed"].nunique(),
            "eer_mean": g["eer"].mean(),
            "eer_std": g["eer"].std(ddof=0),
            "accuracy_mean": g["accuracy"].mean(),
            "accuracy_std": g["accuracy"].std(ddof=0),
            "eer_ci_low": g["eer_ci_low"].mean(),
            "eer_ci_high": g["eer_ci_high"].mean(),
        }
    )
    return out.reset_index()


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """Render a table as GitHub Markdown.

    Notebook: notebooks/04_generalization.py

    Args:
        df: Any table.
        digits: Decimals of float columns.

    Returns:
        The Markdown text.

    Example:
        >>> print(to_markdown(pd.DataFrame({"generator": ["melgan"], "eer": [0.12345]})))
        | generator   |   eer |
        |:------------|------:|
        | melgan      | 0.123 |
    """
    return df.to_markdown(index=False, floatfmt=f".{digits}f")


def to_html(df: pd.DataFrame, digits: int = 3) -> str:
    """Render a table as an HTML ``<table>``.

    Args:
        df: Any table.
        digits: Decimals of float columns.

    Returns:
        The HTML text.

    Example:
        >>> "<td>0.12</td>" in to_html(pd.DataFrame({"eer": [0.1234]}), digits=2)
        True
    """
    return df.to_html(index=False, float_format=lambda v: f"{v:.{digits}f}", border=0)


def to_latex(df: pd.DataFrame, digits: int = 3) -> str:
    r"""Render a table as a LaTeX ``tabular`` (booktabs rules).

    Args:
        df: Any table.
        digits: Decimals of float columns.

    Returns:
        The LaTeX text.

    Example:
        >>> print(to_latex(pd.DataFrame({"eer_argmax": [0.5]})).splitlines()[2])
        eer\_argmax \\
    """
    escaped = df.rename(columns=lambda c: str(c).replace("_", r"\_"))
    for col in escaped.columns:
        if not pd.api.types.is_numeric_dtype(escaped[col]):
            escaped[col] = escaped[col].astype(str).str.replace("_", r"\_")
    return escaped.to_latex(index=False, float_format=f"%.{digits}f")


def jsonable(obj: Any) -> Any:
    """A copy of ``obj`` that strict JSON can hold: NaN and infinities become None.

    Args:
        obj: Dicts, lists, tuples, numbers (numpy ones too), strings, paths, dataclasses.

    Returns:
        Plain Python containers and scalars.

    Example:
        >>> jsonable({"eer": np.float64("nan"), "n": np.int64(3), "path": Path("a")})
        {'eer': None, 'n': 3, 'path': 'a'}
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, str):  # numpy scalars and arrays
        return jsonable(obj.tolist())
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    return str(obj)


def to_json(obj: Any, indent: int | None = 1) -> str:
    """Strict JSON text (``null``, never ``NaN``) of results, tables rows or reports.

    Args:
        obj: See :func:`jsonable`.
        indent: JSON indentation.

    Returns:
        The text.

    Example:
        >>> to_json({"eer": float("nan"), "seeds": (0, 1)}, indent=None)
        '{"eer": null, "seeds": [0, 1]}'
    """
    return json.dumps(jsonable(obj), indent=indent, allow_nan=False)


def save_table(df: pd.DataFrame, stem: str | Path) -> dict[str, Path]:
    """Save a table as CSV, JSON (records), Markdown, HTML and LaTeX next to each other.

    Notebook: notebooks/04_generalization.py

    Args:
        df: The table.
        stem: Path without suffix, e.g. ``results/table``.

    Returns:
        ``{format: path}``.

    Example:
        >>> import tempfile
        >>> paths = save_table(pd.DataFrame({"eer": [0.1]}), Path(tempfile.mkdtemp()) / "t")
        >>> sorted(paths)
        ['csv', 'html', 'json', 'md', 'tex']
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {k: stem.with_suffix(f".{k}") for k in ("csv", "json", "md", "html", "tex")}
    df.to_csv(paths["csv"], index=False)
    paths["json"].write_text(to_json(df.to_dict(orient="records")))
    paths["md"].write_text(to_markdown(df) + "\n")
    paths["html"].write_text(to_html(df) + "\n")
    paths["tex"].write_text(to_latex(df))
    return paths
