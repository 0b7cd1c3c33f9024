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

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from gpwave.constants import SAMPLE_RATE
from gpwave.fingerprints import FingerprintSpectrum, difference_db, packet_magnitudes
from gpwave.metrics import eer, group_bootstrap, percentile_interval
from gpwave.pool import class_weights
from gpwave.transforms import packet_frequencies

#: Floor of the packet magnitudes before the logarithm.
LOG_FLOOR = 1e-7


def packet_stats(
    frames: np.ndarray, wavelet: str = "sym5", level: int = 8, batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Per frame and band: the mean over time of log |packets| and of |packets|.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        frames: Audio frames (k, N).
        wavelet: PyWavelets wavelet name.
        level: Packet level (2**level bands, ascending frequency).
        batch_size: Frames per transform call.

    Returns:
        ``(log_mean, mean)``, each (k, 2**level) float32: the probe's features and the
        magnitudes that fingerprint spectra average.
    """
    logs, mags = [], []
    for i in range(0, len(frames), batch_size):
        m = packet_magnitudes(frames[i : i + batch_size], wavelet, level)
        logs.append(torch.log(m + LOG_FLOOR).mean(-1).numpy())
        mags.append(m.mean(-1).numpy())
    if not logs:
        empty = np.zeros((0, 2**level), np.float32)
        return empty, empty
    return np.concatenate(logs), np.concatenate(mags)


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
    return packet_stats(frames, wavelet, level, batch_size)[0]


def fit_probe(features: np.ndarray, labels: np.ndarray, seed: int = 0, c: float = 0.1) -> Pipeline:
    """Standardise, then logistic regression with both classes weighted equally.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        features: (k, F) training features.
        labels: 0 real, 1 fake.
        seed: Seed of the solver.
        c: Inverse L2 strength of the logistic regression.

    Returns:
        The fitted pipeline; ``decision_function`` gives the fake log-odds.
    """
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed)
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
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Frames (:func:`gpwave.pool.pair_frames`) and features of several file tables, once.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        tables: Name -> file table (columns at least tree, file, utterance, label).
        max_frames: At most this many frames per file (None: all).
        wavelet: Wavelet of :func:`packet_stats`.
        level: Its level.

    Returns:
        ``(features, magnitudes, index)``: :func:`packet_stats` of every frame; the index
        has the frame's table columns, ``set`` (the table's name) and ``row``.
    """
    from gpwave.pool import pair_frames

    feats, mags, index = [], [], []
    for name, table in tables.items():
        frames, idx = pair_frames(table.reset_index(drop=True), max_frames=max_frames)
        f, m = packet_stats(frames, wavelet, level)
        feats.append(f)
        mags.append(m)
        index.append(idx.assign(set=name))
    index = pd.concat(index, ignore_index=True)
    return np.concatenate(feats), np.concatenate(mags), index.assign(row=np.arange(len(index)))


def spectrum(
    magnitudes: np.ndarray, name: str, label: int, wavelet: str = "sym5", folder: str = ""
) -> FingerprintSpectrum:
    """A fingerprint spectrum from per-frame mean packet magnitudes (:func:`packet_stats`).

    Notebook: notebooks/08_generalization_needs.py

    Args:
        magnitudes: (k, 2**level) per-frame means of |packets| of 1 s frames at the
            model's rate.
        name: The spectrum's generator name.
        label: 0 real, 1 fake.
        wavelet: The wavelet the magnitudes came from.
        folder: Where the frames came from.

    Returns:
        Mean over frames (equal to :func:`gpwave.fingerprints.mean_packet_spectrum`'s
        mean for frames of one length); ``std`` is the spread of the frame means.
    """
    level = int(np.log2(magnitudes.shape[1]))
    return FingerprintSpectrum(
        name, magnitudes.mean(0), magnitudes.std(0), len(magnitudes),
        packet_frequencies(level, SAMPLE_RATE), wavelet, level, label, SAMPLE_RATE, folder,
    )  # fmt: skip


def plot_differences(
    pairs: Mapping[str, tuple[FingerprintSpectrum, FingerprintSpectrum]],
    ncols: int = 6,
    title: str = "",
) -> Figure:
    """A grid of fake-minus-real spectra in dB, each fake against its own real spectrum.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        pairs: Panel title -> (fake, real).
        ncols: Panels per row.
        title: Figure title.

    Returns:
        The figure (frequency in kHz, shared axes).
    """
    ncols = min(ncols, len(pairs))
    nrows = int(np.ceil(len(pairs) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.4 * ncols, 1.9 * nrows), sharex=True,
                             sharey=True, squeeze=False, layout="constrained")  # fmt: skip
    for ax, (name, (fake, real)) in zip(axes.flat, pairs.items(), strict=False):
        ax.plot(fake.frequencies / 1e3, difference_db(fake, real), lw=0.7, color="C3")
        ax.axhline(0.0, color="k", lw=0.5)
        ax.set_title(name, fontsize=8)
    for ax in axes.flat[len(pairs) :]:
        ax.set_visible(False)
    fig.supxlabel("frequency [kHz]")
    fig.supylabel("fake - real [dB]")
    if title:
        fig.suptitle(title)
    return fig


def _train_frames(frames: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The frames (of the ``train`` set) of the pool rows ``rows``, by file."""
    return frames[frames["file"].isin(set(rows["file"]))]


def learning_curve(
    features: np.ndarray,
    frames: pd.DataFrame,
    splits: Mapping[int, pd.DataFrame],
    tests: Mapping[str, pd.DataFrame],
    sizes: Sequence[int | None],
    choose: Callable[[pd.DataFrame, int | None, int], pd.DataFrame],
    n_boot: int = 200,
    c: float = 0.1,
) -> pd.DataFrame:
    """EER on each test set against a training-set size, one probe per seed and size.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        features: Features of all frames.
        frames: The pool's frames (columns ``file``, ``label``, ``row``).
        splits: Seed -> the pool split by :func:`gpwave.pool.speaker_splits` with that seed.
        tests: Test-set name -> frames (``row``, ``label``, ``utterance``).
        sizes: Sizes (e.g. numbers of speakers; None: all).
        choose: ``(train_rows, size, seed) -> rows`` to train on (the seed's draw).
        n_boot: Bootstrap resamples of each point.
        c: The probe's inverse regularisation strength.

    Returns:
        :func:`evaluate_fits` rows plus ``n`` (size, "all" for None), ``n_frames``
        (training frames, mean over seeds) and ``real_share`` (real frames / all).
    """
    out = []
    for n in sizes:
        models, counts, real = [], [], []
        for seed, pool_split in splits.items():
            rows = choose(pool_split[pool_split["split"] == "train"], n, seed)
            fr = _train_frames(frames, rows)
            y = fr["label"].to_numpy()
            models.append(fit_probe(features[fr["row"].to_numpy()], y, seed, c))
            counts.append(len(fr))
            real.append(float((y == 0).mean()))
        t = evaluate_fits(models, tests, features, n_boot)
        out.append(t.assign(n="all" if n is None else n, n_frames=np.mean(counts),
                            real_share=np.mean(real)))  # fmt: skip
    return pd.concat(out, ignore_index=True)


def matched_real(rows: pd.DataFrame, fakes: pd.Series) -> pd.DataFrame:
    """The chosen fakes and the real files of *their* trees only.

    Trees differ in language, corpus, microphone and sample rate; with real speech from
    every tree and fakes from a few, a detector can learn the tree instead of the
    vocoder. Matching the real files to the fakes' trees removes that shortcut.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        rows: Pool rows (columns ``tree``, ``label``).
        fakes: Boolean mask of the fake rows to keep.

    Returns:
        The kept fakes and the real rows of the trees they come from.
    """
    trees = set(rows.loc[fakes & (rows["label"] == 1), "tree"])
    real = (rows["label"] == 0) & rows["tree"].isin(trees)
    return rows[real | (fakes & (rows["label"] == 1))]


def _fold_scores(features, frames, pool, folds, family, seed, c) -> np.ndarray:
    """Held-out scores of every frame: one probe per fold, trained on the other folds."""
    scores = np.full(len(features), np.nan)
    for k in sorted(set(folds)):
        tr = pool[(folds != k).to_numpy()]
        fr = _train_frames(frames, matched_real(tr, tr["family"] == family))
        if fr["label"].nunique() < 2:
            continue
        model = fit_probe(features[fr["row"].to_numpy()], fr["label"].to_numpy(), seed, c)
        held = _train_frames(frames, pool[(folds == k).to_numpy()])["row"].to_numpy()
        scores[held] = model.decision_function(features[held])
    return scores


def family_protocol(
    features: np.ndarray,
    frames: pd.DataFrame,
    pool: pd.DataFrame,
    families: Sequence[str],
    seeds: Sequence[int] = (0, 1, 2),
    n_folds: int = 5,
    c: float = 0.1,
) -> pd.DataFrame:
    """The paper's protocol on a pool: real vs one family, tested on every family.

    Cross-validated by speaker group (:func:`gpwave.pool.group_folds`): for each fold a
    probe is fitted on the other folds' fakes of one family and the real files of the
    same trees (:func:`matched_real`), and scores the held-out fold. Each test family
    is then the held-out scores of its fakes against the real files of its own trees;
    the diagonal is the trained family on speakers the probe never heard.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        features: Features of all frames.
        frames: The pool's frames (``file``, ``label``, ``row``).
        pool: The pool table.
        families: Families to train on and test on.
        seeds: Seeds of the fold assignment.
        n_folds: Folds.
        c: The probe's inverse regularisation strength.

    Returns:
        One row per (train family, test family, seed): ``eer``, ``n_real`` and ``n_fake``
        (the held-out frames behind it).
    """
    from gpwave.pool import group_folds

    rows = []
    for seed in seeds:
        folds = group_folds(pool, n_folds, seed)
        for f in families:
            scores = _fold_scores(features, frames, pool, folds, f, seed, c)
            for g in families:
                t = _train_frames(frames, matched_real(pool, pool["family"] == g))
                t = t[np.isfinite(scores[t["row"].to_numpy()])]
                n_real = int((t["label"] == 0).sum())
                e = float("nan")
                if 0 < n_real < len(t):
                    e = eer(t["label"], scores[t["row"].to_numpy()])
                rows.append({"train": f, "test": g, "seed": seed, "eer": e, "n_real": n_real,
                             "n_fake": len(t) - n_real})  # fmt: skip
    return pd.DataFrame(rows)


# --- the chapter's pieces -----------------------------------------------------------------
def file_tree(root: str | Path, name: str, utterance_pattern: str | None = None) -> pd.DataFrame:
    """The files of a letter-prefixed test tree as a table :func:`featurize` takes.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        root: The tree's root.
        name: Its name (the ``tree`` column).
        utterance_pattern: Regex of the utterance in a file stem (None: LJSpeech ids).

    Returns:
        :func:`gpwave.data.file_table` plus ``tree``.
    """
    from gpwave.data import file_table

    return file_table(root, utterance_pattern).assign(tree=name)


def by_speakers() -> Callable[[pd.DataFrame, int | None, int], pd.DataFrame]:
    """A :func:`learning_curve` chooser: ``n`` speaker groups of the training rows, all fakes.

    Notebook: notebooks/08_generalization_needs.py

    Returns:
        ``(rows, n, seed) -> rows`` of the drawn groups.
    """

    def choose(rows: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
        return rows[rows["group"].isin(draw(rows["group"].unique(), n, seed))]

    return choose


def by_families(allowed: Sequence[str]) -> Callable[[pd.DataFrame, int | None, int], pd.DataFrame]:
    """A :func:`learning_curve` chooser: ``n`` of the ``allowed`` families, matched real.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        allowed: Families that may be drawn (those absent from the test sets).

    Returns:
        ``(rows, n, seed) -> rows``: the drawn families' fakes and their trees' real files.
    """

    def choose(rows: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
        present = sorted(set(rows.loc[rows["label"] == 1, "family"]) & set(allowed))
        return matched_real(rows, rows["family"].isin(draw(present, n, seed)))

    return choose


def validation_eers(
    features: np.ndarray,
    frames: pd.DataFrame,
    splits: Mapping[int, pd.DataFrame],
    c_grid: Sequence[float],
) -> pd.DataFrame:
    """Validation EER of the probe (all families) for each C and split seed.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        features: Features of all frames.
        frames: The pool's frames.
        splits: Seed -> pool split (train/val/test by speaker).
        c_grid: Values of C to try.

    Returns:
        Rows C, seed, eer.
    """
    rows = []
    for c in c_grid:
        for seed, p in splits.items():
            tr = _train_frames(frames, p[p["split"] == "train"])
            va = _train_frames(frames, p[p["split"] == "val"])
            model = fit_probe(features[tr["row"].to_numpy()], tr["label"].to_numpy(), seed, c)
            e = eer(va["label"], model.decision_function(features[va["row"].to_numpy()]))
            rows.append({"C": c, "seed": seed, "eer": e})
    return pd.DataFrame(rows)


def curve_table(table: pd.DataFrame, tests: Sequence[str]) -> pd.DataFrame:
    """A learning curve as text: ``EER [95 % CI] (seed range)`` in %, sizes by test sets.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        table: :func:`learning_curve`'s rows.
        tests: Test-set names, in column order.

    Returns:
        One row per size, one column per test set.
    """
    cells = [
        f"{100 * r.eer:.1f} [{100 * r.low:.1f}, {100 * r.high:.1f}] "
        f"({100 * r.seed_min:.1f}–{100 * r.seed_max:.1f})"
        for r in table.itertuples()
    ]
    wide = table.assign(cell=cells).pivot_table(
        index="n", columns="test", values="cell", aggfunc="first", sort=False
    )
    return wide[list(tests)]


def plot_curves(curves_by_axis: Mapping[str, pd.DataFrame]) -> Figure:
    """Learning curves side by side: EER (%) with intervals per test set, chance dashed.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        curves_by_axis: x-axis label -> :func:`learning_curve`'s rows.

    Returns:
        The figure.
    """
    fig, axes = plt.subplots(1, len(curves_by_axis), figsize=(5 * len(curves_by_axis), 3.6),
                             sharey=True, squeeze=False, layout="constrained")  # fmt: skip
    for ax, (xlabel, table) in zip(axes[0], curves_by_axis.items(), strict=True):
        positions = {n: i for i, n in enumerate(dict.fromkeys(table["n"]))}
        groups = list(table.groupby("test", sort=False))
        for k, (name, t) in enumerate(groups):
            x = np.array([positions[n] for n in t["n"]]) + 0.06 * (k - (len(groups) - 1) / 2)
            err = np.abs(np.vstack([t["eer"] - t["low"], t["high"] - t["eer"]]))
            ax.errorbar(x, 100 * t["eer"], 100 * err, marker="o", capsize=2, label=name)
        ax.set_xticks(range(len(positions)), [str(n) for n in positions])
        ax.axhline(50, color="k", ls="--", lw=0.7)
        ax.set_xlabel(xlabel)
    axes[0, 0].set_ylabel("EER [%]")
    axes[0, -1].legend(fontsize=8)
    return fig


def family_pairs(
    frames: pd.DataFrame, magnitudes: np.ndarray, families: Sequence[str]
) -> dict[str, tuple[FingerprintSpectrum, FingerprintSpectrum]]:
    """Each family's spectrum and the real spectrum of the trees it occurs in.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        frames: The pool's frames (``family``, ``tree``, ``label``, ``row``).
        magnitudes: :func:`packet_stats` magnitudes of all frames.
        families: Families to show.

    Returns:
        ``"family (trees)"`` -> (fake, real) for :func:`plot_differences`.
    """
    pairs = {}
    for family in families:
        fake = frames[frames["family"] == family]
        trees = sorted(set(fake["tree"]))
        real = frames[(frames["label"] == 0) & frames["tree"].isin(trees)]
        pairs[f"{family} ({', '.join(trees)})"] = (
            spectrum(magnitudes[fake["row"].to_numpy()], family, 1),
            spectrum(magnitudes[real["row"].to_numpy()], "real", 0),
        )
    return pairs
