"""Learning curves with a cheap detector: what generalisation needs, fitted many times.

The chapter "What generalisation needs" trains a detector dozens of times (numbers of
speakers, numbers of vocoder families, seeds), so it uses a model that fits in well
under a second: logistic regression (scikit-learn, balanced class weights) on the
per-frame mean log wavelet-packet spectrum (sym5, level 8, as the paper's models see
their input). Features are computed once per frame and reused by every fit. Points
are EERs on test trees; their intervals resample test utterances, seeds averaged.

Notebook: notebooks/08_generalization_needs.py
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from gpwave.fingerprints import packet_magnitudes
from gpwave.metrics import eer, group_bootstrap, percentile_interval
from gpwave.pool import class_weights

#: Floor of the packet magnitudes before the logarithm.
LOG_FLOOR = 1e-7


def mean_log_packets(
    frames: np.ndarray, wavelet: str = "sym5", level: int = 8, batch_size: int = 128
) -> np.ndarray:
    """The mean over time of log |wavelet-packet coefficients|, per frame and band.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        frames: Audio frames (k, N).
        wavelet: PyWavelets wavelet name.
        level: Packet level (2**level bands, ascending frequency).
        batch_size: Frames per transform call.

    Returns:
        Features (k, 2**level), float32.
    """
    out = [
        torch.log(packet_magnitudes(frames[i : i + batch_size], wavelet, level) + LOG_FLOOR)
        .mean(-1)
        .numpy()
        for i in range(0, len(frames), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, 2**level), np.float32)


def fit_probe(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> Pipeline:
    """Standardise, then logistic regression with both classes weighted equally.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        features: (k, F) training features.
        labels: 0 real, 1 fake.
        seed: Seed of the solver.

    Returns:
        The fitted pipeline; ``decision_function`` gives the fake log-odds.
    """
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, random_state=seed)
    )
    model.fit(features, labels, logisticregression__sample_weight=class_weights(labels))
    return model


def draw(items: Sequence[str], n: int | None, seed: int) -> list[str]:
    """``n`` of ``items`` drawn without replacement by ``seed`` (None or too many: all).

    Args:
        items: Candidates (speaker groups, vocoder families).
        n: How many.
        seed: Seed of the draw.

    Returns:
        The drawn items, sorted.
    """
    items = sorted(items)
    if n is None or n >= len(items):
        return items
    return sorted(np.random.default_rng(seed).choice(items, n, replace=False).tolist())


def point(
    labels: np.ndarray,
    scores: Sequence[np.ndarray],
    groups: np.ndarray,
    n_boot: int = 200,
    seed: int = 0,
) -> dict:
    """One curve point: the EER of each seed's scores on the same test frames, and intervals.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        labels: 0 real, 1 fake, per test frame.
        scores: One score array per seed (fit), aligned with ``labels``.
        groups: Utterance of each test frame (resampled whole).
        n_boot: Bootstrap resamples.
        seed: Seed of the bootstrap.

    Returns:
        ``eer`` (mean over seeds), ``low``/``high`` (95 % interval of that mean,
        resampling test utterances), ``seed_min``/``seed_max`` and ``n_seeds``.
    """
    per_seed = [eer(labels, s) for s in scores]
    boot = group_bootstrap(
        labels,
        groups,
        lambda i: float(np.mean([eer(labels[i], s[i]) for s in scores])),
        n_boot,
        seed,
    )
    low, high = percentile_interval(boot)
    return {
        "eer": float(np.mean(per_seed)),
        "low": low,
        "high": high,
        "seed_min": min(per_seed),
        "seed_max": max(per_seed),
        "n_seeds": len(per_seed),
    }


def evaluate_fits(
    models: Sequence[Pipeline],
    tests: Mapping[str, pd.DataFrame],
    features: np.ndarray,
    n_boot: int = 200,
) -> pd.DataFrame:
    """Score every test set with every fit and make one :func:`point` per test set.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        models: Fitted probes, one per seed.
        tests: Test-set name -> its frames (columns ``row`` into ``features``, ``label``,
            ``utterance``).
        features: The feature matrix of all frames.
        n_boot: Bootstrap resamples.

    Returns:
        One row per test set: ``test`` and the :func:`point` columns.
    """
    rows = []
    for name, t in tests.items():
        x, y = features[t["row"].to_numpy()], t["label"].to_numpy()
        scores = [m.decision_function(x) for m in models]
        rows.append({"test": name, **point(y, scores, t["utterance"].to_numpy(), n_boot)})
    return pd.DataFrame(rows)


def featurize(
    tables: Mapping[str, pd.DataFrame],
    max_frames: int | None = None,
    wavelet: str = "sym5",
    level: int = 8,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Frames (:func:`gpwave.pool.pair_frames`) and features of several file tables, once.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        tables: Name -> file table (columns at least tree, file, utterance, label).
        max_frames: At most this many frames per file (None: all).
        wavelet: Wavelet of :func:`mean_log_packets`.
        level: Its level.

    Returns:
        ``(features, index)``: one feature row per frame; the index has the frame's
        table columns, ``set`` (the table's name) and ``row`` (into ``features``).
    """
    from gpwave.pool import pair_frames

    feats, index = [], []
    for name, table in tables.items():
        frames, idx = pair_frames(table.reset_index(drop=True), max_frames=max_frames)
        feats.append(mean_log_packets(frames, wavelet, level))
        index.append(idx.assign(set=name))
    index = pd.concat(index, ignore_index=True)
    return np.concatenate(feats), index.assign(row=np.arange(len(index)))
