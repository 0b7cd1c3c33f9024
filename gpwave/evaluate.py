"""Honest evaluation: continuous scores, interpolated EER, utterance bootstrap, tables.

Scores are the detector's continuous fake log-odds (fake logit minus real logit), never
argmax labels, and never probabilities: a float32 softmax rounds every log-odds above
about 17 to 1.0, and frames a detector is sure of would tie (under noise the paper's
models put *every* frame there, which reads as EER 0.5 though their order still holds
information). Accuracy thresholds the log-odds at 0 (probability 0.5). The EER
is read off the ROC by linear interpolation between its points; confidence intervals
resample utterances (not frames), because frames of one utterance are not independent.
Tables are tidy DataFrames with columns ``generator, n_frames, eer, eer_ci_low,
eer_ci_high, accuracy, eer_argmax`` and render to Markdown, HTML and LaTeX; the last
column is the reference implementation's EER from argmax labels (:func:`argmax_eer`),
only so that numbers can be related to the paper's.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from gpwave import hub
from gpwave.config import resolve_device
from gpwave.constants import ScoreKind, check_option
from gpwave.errors import AudioError, AudioWarning

TABLE_COLUMNS = [
    "generator", "n_frames", "eer", "eer_ci_low", "eer_ci_high", "accuracy", "eer_argmax"
]  # fmt: skip
POOLED = "pooled_unseen"
#: Files with more windows than this get their own progress bar in :func:`detect_files`.
LONG_FILE_WINDOWS = 256


# --- metrics --------------------------------------------------------------------------
def _check_binary(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(int).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if labels.min(initial=1) == labels.max(initial=0):
        raise ValueError("the EER needs both classes (real and fake) among the labels")
    return labels, scores


def roc(labels: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """ROC points (false and true positive rates) over every distinct threshold.

    Args:
        labels: 1 fake (positive), 0 real.
        scores: Continuous fake scores (higher = more fake).

    Returns:
        ``(fpr, tpr)``, both starting at 0 and ending at 1.
    """
    y, s = _check_binary(np.asarray(labels), np.asarray(scores))
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(y)[last]
    fps = last + 1 - tps
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def eer(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Equal error rate, interpolated linearly on the ROC where FPR = FNR.

    Notebook: notebooks/04_generalization.py

    Args:
        labels: 1 fake, 0 real.
        scores: Continuous fake scores.

    Returns:
        The EER in [0, 1] (0: perfect separation, 0.5: chance).
    """
    fpr, tpr = roc(labels, scores)
    d = (1.0 - tpr) - fpr  # decreasing from 1 to -1
    i = int(np.argmax(d <= 0))
    if d[i] == 0 or i == 0:
        return float(fpr[i])
    t = d[i - 1] / (d[i - 1] - d[i])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def probability(log_odds: Sequence[float] | np.ndarray) -> np.ndarray:
    """Fake probabilities (float64) of fake log-odds: the logistic function, for display.

    Args:
        log_odds: Scores from :func:`score_waveforms`.
    """
    from scipy.special import expit

    return expit(np.asarray(log_odds, dtype=np.float64))


def accuracy(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.0) -> float:
    """Fraction of frames classified correctly when ``score >= threshold`` means fake.

    Notebook: notebooks/04_generalization.py

    Args:
        labels: 1 fake, 0 real.
        scores: Fake log-odds.
        threshold: Decision threshold (log-odds 0 is the argmax of the two logits).

    Returns:
        The accuracy in [0, 1].
    """
    y = np.asarray(labels).astype(int)
    return float(np.mean((np.asarray(scores) >= threshold).astype(int) == y))


def argmax_eer(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.0) -> float:
    """The reference implementation's EER: the EER of argmax labels instead of scores.

    Thresholding first leaves a 3-point ROC, (0, 0), (FPR, TPR), (1, 1); its EER is
    read off by linear interpolation like :func:`eer`. With a false positive rate a and
    true positive rate b it is ``a / (a + b)`` if ``a + b >= 1``, else
    ``a + (1 - a) (1 - a - b) / (2 - a - b)``. It mixes the EER with the threshold's
    calibration, so it is reported only to relate numbers to the paper's.

    Args:
        labels: 1 fake, 0 real.
        scores: Fake log-odds (the argmax of two logits is ``score >= 0``).
        threshold: Decision threshold.

    Returns:
        The argmax EER in [0, 1].
    """
    return eer(labels, (np.asarray(scores, dtype=np.float64) >= threshold).astype(float))


def _group_bootstrap(
    labels: np.ndarray, groups: Sequence[Any], n_boot: int, seed: int, stat: Any
) -> list[float]:
    """``stat(idx)`` over resamples of whole groups that hold both classes."""
    _, gid = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    members = [np.nonzero(gid == g)[0] for g in range(gid.max() + 1)]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(members), len(members))
        idx = np.concatenate([members[g] for g in pick])
        if 0 < labels[idx].sum() < len(idx):
            values.append(stat(idx))
    return values


def _interval(values: list[float], level: float) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def eer_ci(
    labels: Sequence[int],
    scores: Sequence[float],
    groups: Sequence[Any],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap confidence interval of the EER, resampling groups (utterances).

    Args:
        labels: 1 fake, 0 real.
        scores: Continuous fake scores.
        groups: Group id (utterance) of each frame; whole groups are resampled.
        n_boot: Bootstrap resamples.
        level: Coverage of the interval.
        seed: Seed of the resampling.

    Returns:
        ``(low, high)`` percentile interval; ``(nan, nan)`` if no resample has both classes.
    """
    y, s = _check_binary(np.asarray(labels), np.asarray(scores))
    values = _group_bootstrap(y, groups, n_boot, seed, lambda i: eer(y[i], s[i]))
    return _interval(values, level)


def paired_eer_difference(
    labels: Sequence[int],
    scores_a: Sequence[float],
    scores_b: Sequence[float],
    groups: Sequence[Any],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """EER(A) - EER(B) on the same frames, with a paired bootstrap interval.

    Each resample draws whole groups (utterances) once and scores both detectors on it,
    so the interval reflects the difference, not the two EERs' separate spreads.

    Args:
        labels: 1 fake, 0 real.
        scores_a: Fake scores of detector A.
        scores_b: Fake scores of detector B on the same frames.
        groups: Group id (utterance) of each frame.
        n_boot: Bootstrap resamples.
        level: Coverage of the interval.
        seed: Seed of the resampling.

    Returns:
        ``(difference, low, high)``; a negative difference means A has the lower EER.
    """
    y, a = _check_binary(np.asarray(labels), np.asarray(scores_a))
    b = np.asarray(scores_b, dtype=float)
    if b.shape != a.shape:
        raise ValueError(f"scores_b has shape {b.shape}, scores_a {a.shape}")
    values = _group_bootstrap(y, groups, n_boot, seed, lambda i: eer(y[i], a[i]) - eer(y[i], b[i]))
    return (eer(y, a) - eer(y, b), *_interval(values, level))


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


# --- scoring --------------------------------------------------------------------------
def score_waveforms(
    detector: torch.nn.Module,
    frames: np.ndarray | torch.Tensor,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    gain: float = 1.0,
    progress: bool = False,
    desc: str = "scoring",
    kind: ScoreKind = "log-odds",
) -> np.ndarray:
    """Fake log-odds (or probabilities) of waveform frames ``(n, N)``.

    Args:
        detector: A :class:`gpwave.models.Detector` (put in eval mode here).
        frames: Waveforms.
        batch_size: Frames per forward pass.
        device: Where to run (default: the detector's device).
        gain: Multiply the waveforms by this factor first (gain-invariance checks).
        progress: Show a progress bar over the frames.
        desc: The progress bar's label.
        kind: ``log-odds`` (every EER) or ``probability`` (saturates; for verdicts).

    Returns:
        float64 scores ``(n,)``.
    """
    check_option(kind, ScoreKind, "kind")
    detector.eval()
    device = device or next(detector.parameters()).device
    x = torch.as_tensor(np.asarray(frames, dtype=np.float32))
    out = []
    starts = range(0, len(x), batch_size)
    bar = tqdm(starts, desc=desc, unit="batch", leave=False, disable=not progress)
    with torch.no_grad():
        for i in bar:
            w = x[i : i + batch_size].to(device) * gain
            z = detector.fake_log_odds(w) if kind == "log-odds" else detector.fake_probability(w)
            out.append(z.cpu())
    return torch.cat(out).double().numpy() if out else np.empty(0)


def score_frames(
    detector: torch.nn.Module,
    store: Any,
    rows: Sequence[int],
    batch_size: int = 64,
    device: str | torch.device | None = None,
    gain: float = 1.0,
    progress: bool = False,
    kind: ScoreKind = "log-odds",
) -> np.ndarray:
    """Fake log-odds (or probabilities) of frame-store rows, read batch by batch.

    Args:
        detector: A trained detector.
        store: A :class:`gpwave.data.FrameStore`.
        rows: Row numbers.
        batch_size: Frames per forward pass.
        device: Where to run.
        gain: Multiply the waveforms by this factor first.
        progress: Show a progress bar.
        kind: ``log-odds`` or ``probability`` (:func:`score_waveforms`).

    Returns:
        float64 scores aligned with ``rows``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    starts = range(0, len(rows), batch_size)
    out = [
        score_waveforms(
            detector, store.read(rows[i : i + batch_size]), batch_size, device, gain, kind=kind
        )
        for i in tqdm(starts, desc="scoring", unit="batch", disable=not progress)
    ]
    return np.concatenate(out) if out else np.empty(0)


# --- tables ---------------------------------------------------------------------------
def metrics_row(
    generator: str,
    labels: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """One table row: EER with bootstrap CI, accuracy at log-odds 0 and the argmax EER.

    Args:
        generator: Row name.
        labels: 1 fake, 0 real.
        scores: Fake log-odds.
        groups: Utterance of each frame.
        n_boot: Bootstrap resamples (0: no CI).
        seed: Seed of the bootstrap.

    Returns:
        Dict with the :data:`TABLE_COLUMNS`.
    """
    low, high = eer_ci(labels, scores, groups, n_boot, seed=seed) if n_boot else (np.nan,) * 2
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
) -> pd.DataFrame:
    """Per-generator table (each fake generator vs all real frames) plus pooled rows.

    Args:
        frames: Index rows (columns label, generator, utterance) of the scored frames.
        scores: Fake log-odds aligned with ``frames``.
        seen: Generators seen in training; left out of the pooled-unseen row.
        n_boot: Bootstrap resamples.
        seed: Seed of the bootstrap.
        pools: Extra pooled rows: name -> generators left out of that pool (besides
            ``seen``), e.g. ``{"pooled_without_U-Z": ["wavenet", ...]}``.

    Returns:
        DataFrame with :data:`TABLE_COLUMNS`, one row per generator, then ``pooled_unseen``
        and the ``pools`` rows.
    """
    labels = frames["label"].to_numpy(int)
    gens = frames["generator"].to_numpy(str)
    utts = frames["utterance"].to_numpy(str)
    real = labels == 0
    rows = []
    for g in pd.unique(gens[~real]):
        m = real | (gens == g)
        rows.append(metrics_row(g, labels[m], scores[m], utts[m], n_boot, seed))
    for name, left_out in {POOLED: (), **(pools or {})}.items():
        m = real | ~np.isin(gens, [*seen, *left_out])
        if 0 < labels[m].sum() < m.sum():
            rows.append(metrics_row(name, labels[m], scores[m], utts[m], n_boot, seed))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def split_frames(
    store: Any,
    split: str | None = "test",
    generators: Sequence[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """The index rows :func:`score_split` scores: a split's real and fake frames.

    Args:
        store: A :class:`gpwave.data.FrameStore`.
        split: "train", "val", "test", or None for every frame.
        generators: Fake generators to include (None: all); real frames always are.
        limit: At most this many frames per folder (seeded sample; None: all).
        seed: Seed of the sample.

    Returns:
        The selected rows of ``store.index``, in store order.
    """
    idx = store.index
    keep = np.ones(len(idx), bool) if split is None else (idx["split"] == split).to_numpy()
    if generators is not None:
        keep = keep & ((idx["label"] == 0) | idx["generator"].isin(list(generators))).to_numpy()
    frames = idx[keep]
    if limit is None or frames.empty:
        return frames
    rng = np.random.default_rng(seed)
    pick = [
        rng.choice(pos, min(len(pos), limit), replace=False)
        for pos in frames.groupby("generator", sort=False).indices.values()
    ]
    return frames.iloc[np.sort(np.concatenate(pick))]


def split_scores(
    detector: torch.nn.Module,
    store: Any,
    split: str | None = "test",
    generators: Sequence[str] | None = None,
    seed: int = 0,
    gain: float = 1.0,
    batch_size: int = 64,
    progress: bool = False,
    limit: int | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Index rows and fake log-odds of the frames :func:`split_frames` selects.

    Notebook: notebooks/04_generalization.py

    Args:
        detector: A trained detector.
        store: A :class:`gpwave.data.FrameStore`.
        split: "train", "val", "test", or None for every frame.
        generators: Fake generators to include (None: all).
        seed: Seed of the ``limit`` sample.
        gain: Multiply test audio by this factor (gain-invariance checks).
        batch_size: Frames per forward pass.
        progress: Show a progress bar.
        limit: At most this many frames per folder (seeded sample; None: all).

    Returns:
        ``(frames, scores)``: the store's index rows and their scores, aligned.
    """
    frames = split_frames(store, split, generators, limit, seed)
    scores = score_frames(
        detector, store, frames["row"].to_numpy(), batch_size, gain=gain, progress=progress
    )
    return frames, scores


def score_split(
    detector: torch.nn.Module,
    store: Any,
    split: str | None = "test",
    generators: Sequence[str] | None = None,
    seen: Sequence[str] = (),
    n_boot: int = 1000,
    seed: int = 0,
    gain: float = 1.0,
    batch_size: int = 64,
    progress: bool = False,
    limit: int | None = None,
    pools: dict[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Score the real and fake frames of a split and tabulate per generator.

    The one evaluation path: training's test table, ``gpwave evaluate`` and the
    notebooks all come from here (:func:`split_scores`, then :func:`table_from_scores`).
    Every real frame of the split is compared with each generator's frames (no class
    balancing: the EER does not depend on it).

    Notebook: notebooks/04_generalization.py

    Args:
        detector: A trained detector.
        store: A :class:`gpwave.data.FrameStore`.
        split: "train", "val", "test", or None for every frame.
        generators: Fake generators to include (None: all).
        seen: Generators seen in training (excluded from the pooled row).
        n_boot: Bootstrap resamples for the CIs.
        seed: Seed of the bootstrap and of the ``limit`` sample.
        gain: Multiply test audio by this factor (gain-invariance checks).
        batch_size: Frames per forward pass.
        progress: Show a progress bar.
        limit: At most this many frames per folder (seeded sample; None: all).
        pools: Extra pooled rows (see :func:`table_from_scores`).

    Returns:
        DataFrame with :data:`TABLE_COLUMNS`.
    """
    frames, scores = split_scores(
        detector, store, split, generators, seed, gain, batch_size, progress, limit
    )
    return table_from_scores(frames, scores, seen, n_boot, seed, pools)


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
    """
    from gpwave.errors import DataError

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
    """
    return df.to_markdown(index=False, floatfmt=f".{digits}f")


def to_html(df: pd.DataFrame, digits: int = 3) -> str:
    """Render a table as an HTML ``<table>``.

    Args:
        df: Any table.
        digits: Decimals of float columns.

    Returns:
        The HTML text.
    """
    return df.to_html(index=False, float_format=lambda v: f"{v:.{digits}f}", border=0)


def to_latex(df: pd.DataFrame, digits: int = 3) -> str:
    """Render a table as a LaTeX ``tabular`` (booktabs rules).

    Args:
        df: Any table.
        digits: Decimals of float columns.

    Returns:
        The LaTeX text.
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


# --- checkpoints on folders and files -------------------------------------------------
def evaluate_checkpoint(
    checkpoint: str | Path | Any,
    data_dir: str | Path,
    store_dir: str | Path | None = None,
    n_boot: int = 1000,
    device: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Per-folder table of a trained detector on any letter-prefixed folder tree.

    Every frame of every folder is scored; each generator folder is compared with all
    frames of the real folder (``A_...``).

    Args:
        checkpoint: A checkpoint written by :mod:`gpwave.train`, or a loaded detector
            (anything :func:`gpwave.hub.resolve` takes).
        data_dir: Root of letter-prefixed folders.
        store_dir: Frame-store location (default: the data module's default).
        n_boot: Bootstrap resamples for the CIs.
        device: Where to run (default: CUDA if available).
        progress: Progress bars.

    Returns:
        DataFrame with :data:`TABLE_COLUMNS` (plus the pooled row).
    """
    from gpwave.data import DataConfig, prepare_store

    device = resolve_device(device)
    det = hub.resolve(checkpoint, device)
    cfg = DataConfig(
        root=data_dir,
        sample_rate=det.feature_config.sample_rate,
        seconds=det.n_samples / det.feature_config.sample_rate,
    )
    store = prepare_store(cfg, store_dir=store_dir, progress=progress)
    return score_split(det, store, split=None, n_boot=n_boot, progress=progress)


@dataclass
class DetectionReport:
    """Per-second fake scores and the verdict for one file.

    Attributes:
        file: The audio file.
        scores: Fake probability of each non-overlapping window.
        score: Mean of ``scores`` (the file's score).
        verdict: ``fake`` if ``score >= threshold``, else ``real``; ``error`` on failure.
        threshold: The decision threshold.
        seconds: Seconds of audio scored.
        error: Why the file could not be scored (empty when it could).
        warning: Why only part of the file was scored (e.g. truncated; else empty).
    """

    file: str
    scores: list[float] = field(default_factory=list)
    score: float = float("nan")
    verdict: str = "error"
    threshold: float = 0.5
    seconds: float = 0.0
    error: str = ""
    warning: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for strict JSON (a missing score is None, never NaN)."""
        return jsonable(asdict(self))

    def __str__(self) -> str:
        if self.error:
            return f"{self.file}: error: {self.error}"
        per = " ".join(f"{s:.2f}" for s in self.scores)
        note = f" [warning: {self.warning}]" if self.warning else ""
        return f"{self.file}: {self.verdict} (score {self.score:.3f}; per window: {per}){note}"


def detect_files(
    checkpoint: str | Path | Any,
    files: Sequence[str | Path],
    threshold: float = 0.5,
    device: str | None = None,
    progress: bool = True,
) -> list[DetectionReport]:
    """Score audio files window by window (the detector's frame length, usually 1 s).

    Args:
        checkpoint: A checkpoint path or an already loaded Detector.
        files: Audio files (any rate >= the detector's; mono or stereo).
        threshold: Fake if the mean window score is at least this.
        device: Where to run (default: CUDA if available).
        progress: Progress bar over files, and over the windows of each long file.

    Returns:
        One :class:`DetectionReport` per file; a file that cannot be used gets its
        ``error`` set instead of stopping the others, one used only in part (e.g.
        truncated) its ``warning``.
    """
    device = resolve_device(device)
    det = hub.resolve(checkpoint, device)
    bar = tqdm(files, desc="detect", unit="file", disable=not progress)
    return [_detect_one(det, f, threshold, device, progress) for f in bar]


def _detect_one(
    det: Any, path: str | Path, threshold: float, device: str, progress: bool
) -> DetectionReport:
    """Score one file for :func:`detect_files` (errors and warnings go into the report)."""
    from gpwave.data import frame_audio, load_audio

    rate = det.feature_config.sample_rate
    rep = DetectionReport(file=str(path), threshold=threshold)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AudioWarning)
            frames = frame_audio(load_audio(path, rate), det.n_samples)
        if len(frames) == 0:
            raise AudioError(path, f"shorter than one {det.n_samples / rate:g} s window")
    except AudioError as err:
        rep.error = str(err)
        return rep
    rep.warning = "; ".join(str(w.message) for w in caught if w.category is AudioWarning)
    long = progress and len(frames) > LONG_FILE_WINDOWS
    scores = score_waveforms(
        det, frames, device=device, progress=long, desc=Path(path).name, kind="probability"
    )
    rep.scores = [float(s) for s in scores]
    rep.score = float(scores.mean())
    rep.verdict = "fake" if rep.score >= threshold else "real"
    rep.seconds = len(frames) * det.n_samples / rate
    return rep


def inference_speed(detector: Any, n_frames: int = 32, batch_size: int = 32) -> float:
    """Seconds of audio scored per second of wall time (random frames).

    Notebook: notebooks/03_train.py

    Args:
        detector: A detector.
        n_frames: Frames to score.
        batch_size: Frames per forward pass.

    Returns:
        Audio seconds per wall second.
    """
    x = np.random.default_rng(0).standard_normal((n_frames, detector.n_samples)) * 0.1
    score_waveforms(detector, x[:2], batch_size)  # warm-up
    t0 = time.perf_counter()
    score_waveforms(detector, x, batch_size)
    audio = n_frames * detector.n_samples / detector.feature_config.sample_rate
    return audio / (time.perf_counter() - t0)


# --- ablation: where two models disagree ----------------------------------------------
def disagreements(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    frames: pd.DataFrame,
    threshold: float = 0.0,
) -> pd.DataFrame:
    """Frames that model A classifies correctly and model B gets wrong.

    Args:
        scores_a: Fake log-odds of model A (e.g. DCNN with dilation).
        scores_b: Fake log-odds of model B (e.g. without dilation), same frames.
        frames: Index rows of the scored frames (columns row, file, offset, label,
            generator, utterance).
        threshold: Decision threshold.

    Returns:
        The matching index rows with ``score_a`` and ``score_b`` columns, sorted by how
        confidently B is wrong.
    """
    y = frames["label"].to_numpy(int)
    ok_a = (np.asarray(scores_a) >= threshold).astype(int) == y
    ok_b = (np.asarray(scores_b) >= threshold).astype(int) == y
    out = frames.assign(score_a=scores_a, score_b=scores_b)[ok_a & ~ok_b]
    margin = np.abs(out["score_b"] - threshold)
    return out.assign(margin_b=margin).sort_values("margin_b", ascending=False)


def export_disagreements(
    table: pd.DataFrame, store: Any, out_dir: str | Path, n: int = 10
) -> pd.DataFrame:
    """Write up to ``n`` disagreement frames as 16-bit wav clips with their scores.

    Notebook: notebooks/05_dilation.py

    Args:
        table: Output of :func:`disagreements`.
        store: The frame store the rows come from.
        out_dir: Folder for the clips and ``disagreements.csv``.
        n: Most clips to write.

    Returns:
        The exported rows with a ``clip`` column (wav path).
    """
    import soundfile as sf

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    top = table.head(n).copy()
    clips = []
    for k, r in enumerate(top.itertuples()):
        x = store.read([r.row])[0]
        path = out_dir / f"{k:02d}_{r.generator}_{Path(str(r.file)).stem}_{r.offset}.wav"
        sf.write(path, x, store.sample_rate, subtype="PCM_16")
        clips.append(str(path))
    top["clip"] = clips
    top.to_csv(out_dir / "disagreements.csv", index=False)
    return top
