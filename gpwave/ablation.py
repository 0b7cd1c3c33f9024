"""Ablations: two detectors on the same frames, paired EER differences, disagreements.

An ablation trains two variants of a detector (e.g. the DCNN with and without its
dilated block) with the same seeds; both score the same test frames, so their EERs are
compared pairwise (:func:`gpwave.metrics.paired_eer_difference`), and the frames one
gets right and the other wrong can be listened to.

Notebook: notebooks/05_dilation.py
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from gpwave import evaluate, report


def paired_ablation(
    pairs: Mapping[int, tuple[torch.nn.Module, torch.nn.Module]],
    store: Any,
    seen: str,
    limit: int | None = None,
    n_boot: int = 1000,
    split: str | None = "test",
) -> tuple[pd.DataFrame, dict[int, tuple[pd.DataFrame, np.ndarray, np.ndarray]]]:
    """Paired EER differences of two detector variants, seed by seed.

    For each seed, both detectors score the same frames of ``split`` (``limit`` per
    folder, sampled with the seed) and :func:`gpwave.report.paired_table` compares them
    on the seen generator and on the pooled unseen ones, resampling utterances with the
    seed.

    Notebook: notebooks/05_dilation.py

    Args:
        pairs: Seed -> (detector A, detector B), e.g. with and without dilation.
        store: A :class:`gpwave.store.FrameStore`.
        seen: The training generator.
        limit: At most this many frames per folder (None: all).
        n_boot: Bootstrap resamples of each interval.
        split: The split both score.

    Returns:
        ``(table, scored)``: :func:`gpwave.report.paired_table`'s rows of every seed with
        a ``seed`` column; and seed -> ``(frames, scores_a, scores_b)``.
    """
    tables, scored = [], {}
    for s, (det_a, det_b) in pairs.items():
        frames, a = evaluate.split_scores(det_a, store, split, limit=limit, seed=s)
        _, b = evaluate.split_scores(det_b, store, split, limit=limit, seed=s)
        scored[s] = (frames, a, b)
        tables.append(report.paired_table(frames, a, b, seen, n_boot=n_boot, seed=s).assign(seed=s))
    return pd.concat(tables, ignore_index=True), scored


def disagreements(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    frames: pd.DataFrame,
    threshold: float = 0.0,
) -> pd.DataFrame:
    """Frames that model A classifies correctly and model B gets wrong.

    Notebook: notebooks/05_dilation.py

    Args:
        scores_a: Fake log-odds of model A (e.g. DCNN with dilation).
        scores_b: Fake log-odds of model B (e.g. without dilation), same frames.
        frames: Index rows of the scored frames (columns row, file, offset, label,
            generator, utterance).
        threshold: Decision threshold.

    Returns:
        The matching index rows with ``score_a`` and ``score_b`` columns, sorted by how
        confidently B is wrong.

    Example:
        >>> frames = pd.DataFrame({"row": [0, 1, 2], "label": [1, 0, 1]})
        >>> d = disagreements(np.array([2.0, -1.0, 1.0]), np.array([-3.0, -1.0, -0.5]), frames)
        >>> d["row"].tolist(), d["margin_b"].tolist()
        ([0, 2], [3.0, 0.5])
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


def listening_rows(
    examples: pd.DataFrame, sample_rate: int, columns: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Rows of an audio table for exported disagreements, probabilities per model.

    Notebook: notebooks/05_dilation.py

    Args:
        examples: :func:`export_disagreements`' rows (``generator``, ``file``, ``offset``,
            ``clip`` and the two log-odds ``score_a``/``score_b``).
        sample_rate: Of the frame store (``offset`` is in samples).
        columns: Shown name -> score column, in display order, e.g.
            ``{"with dilation": "score_b", "without": "score_a"}``.

    Returns:
        One dict per frame: generator, file name, second, each model's fake probability,
        audio (for :func:`gpwave.widgets.audio_table`).

    Example:
        >>> t = pd.DataFrame({"generator": ["melgan"], "file": ["/x/a.wav"], "offset": [44100],
        ...                   "score_a": [0.0], "score_b": [2.0], "clip": ["c.wav"]})
        >>> row = listening_rows(t, 22050, {"b": "score_b", "a": "score_a"})[0]
        >>> list(row), row["second"], round(row["b"], 3), row["a"]
        (['generator', 'file', 'second', 'b', 'a', 'audio'], 2.0, 0.881, 0.5)
    """
    from gpwave.metrics import probability

    rows = []
    for r in examples.itertuples():
        row = {"generator": r.generator, "file": Path(r.file).name,
               "second": r.offset / sample_rate}  # fmt: skip
        row.update({name: float(probability(getattr(r, col))) for name, col in columns.items()})
        rows.append({**row, "audio": r.clip})
    return rows


def seed_ablation(
    scores: Mapping[tuple[str, int], np.ndarray],
    labels: np.ndarray,
    groups: np.ndarray,
    variants: tuple[str, str],
    n_boot: int = 1000,
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[float, float, float]]:
    """Two variants trained with the same seeds, scored on the same frames: EERs and pairs.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        scores: ``(variant, seed)`` -> fake log-odds of the frames.
        labels: 1 fake, 0 real, per frame.
        groups: Utterance of each frame (bootstrap unit).
        variants: ``(a, b)``: the difference is EER(a) - EER(b).
        n_boot: Bootstrap resamples of each interval (seeded by the run's seed).

    Returns:
        ``(per_run, per_seed, (mean, low, high))``: each run's EER (%) with its interval;
        each seed's paired difference (points) with its paired bootstrap interval; the
        mean difference over the seeds both variants have, with its t-interval.

    Example:
        >>> y, g = np.array([0, 0, 1, 1]), np.array(["u", "v", "u", "v"])
        >>> s = {("a", 0): np.array([0.0, 1.0, 2.0, 3.0]),
        ...      ("b", 0): np.array([0.0, 3.0, 2.0, 1.0])}
        >>> runs, pairs, mean = seed_ablation(s, y, g, ("a", "b"), n_boot=0)
        >>> runs["EER %"].tolist(), pairs["difference (points)"].tolist()
        ([0.0, 50.0], [-50.0])
    """
    from gpwave import metrics

    rows = []
    for (variant, seed), sc in scores.items():
        low, high = metrics.eer_ci(labels, sc, groups, n_boot=n_boot, seed=seed) if n_boot else (
            np.nan, np.nan)  # fmt: skip
        rows.append({"variant": variant, "seed": seed, "EER %": 100 * metrics.eer(labels, sc),
                     "low": 100 * low, "high": 100 * high})  # fmt: skip
    a, b = variants
    seeds = sorted({k for v, k in scores if v == a} & {k for v, k in scores if v == b})
    pairs = []
    for k in seeds:
        d, low, high = metrics.paired_eer_difference(labels, scores[(a, k)], scores[(b, k)],
                                                     groups, n_boot=n_boot, seed=k)  # fmt: skip
        pairs.append({"seed": k, "difference (points)": 100 * d, "low": 100 * low,
                      "high": 100 * high})  # fmt: skip
    per_seed = pd.DataFrame(pairs, columns=["seed", "difference (points)", "low", "high"])
    return pd.DataFrame(rows), per_seed, metrics.mean_t_interval(per_seed["difference (points)"])
