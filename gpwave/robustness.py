"""Robustness: detectors scored on perturbed test audio.

A sweep perturbs whole test utterances (cropped to a few seconds), so that codecs see
real audio on both sides of each frame and a time shift really moves the 1 s frame grid
through the recording; then it cuts 1 s frames, scores them with every detector and
tabulates the EER with a bootstrap CI over utterances. The same perturbed frames go to
every detector, so detectors are compared on identical inputs (a paired design).

The new-speaker and end-to-end TTS sets (``speakers-tts-mini``) are letter-prefixed
trees, scored by :func:`gpwave.evaluate.score_trees`. :func:`gain_sweep` asks the
simplest robustness question of a frame store: does a gain change the EER?

Notebook: notebooks/07_robustness.py
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from gpwave import evaluate, metrics, perturb
from gpwave.constants import SAMPLE_RATE
from gpwave.data import frame_audio, load_audio

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The perturbation sweep of chapter 07: kind -> strengths, mild to strong.
SWEEP: dict[str, list[float]] = {
    "gain": [-24, 12],
    "white-noise": [40, 20],
    "pink-noise": [20],
    "resample": [8000],
    "mp3": [64, 32],
    "ogg-opus": [16],
    "ogg-vorbis": [0.0],
    "shift": [0.5],
    "lowpass": [8000, 4000],
}
#: The sweep of a quick (CI) build.
QUICK_SWEEP: dict[str, list[float]] = {"white-noise": [10], "mp3": [32]}
#: The WaveFake-style fake folders of the mini benchmark the sweep draws from (B-T).
WAVEFAKE_FOLDERS = [
    "B_melgan", "C_hifigan", "D_mbmelgan", "E_fbmelgan", "F_waveglow", "G_pwg", "H_lmelgan",
    "K_lbigvgan", "O_kbpwg", "P_kbmelgan", "Q_kbfbmelgan", "R_kbmbmelgan", "S_kbhifigan",
    "T_kbstylemelgan",
]  # fmt: skip
#: Name of the unperturbed condition in a sweep table.
CLEAN = "clean"
#: Columns of :func:`perturbation_sweep`'s table.
SWEEP_COLUMNS = [
    "detector", "kind", "strength", "unit", "n_frames", "eer", "eer_ci_low", "eer_ci_high",
]  # fmt: skip


@dataclass(frozen=True)
class Study:
    """Chapter 07's robustness study: what is perturbed, how much, and how it is scored.

    Notebook: notebooks/07_robustness.py

    Args:
        sweep: Perturbation kind -> strengths, mild to strong (:func:`conditions`).
        n_real: Real test utterances of the sweep (the mini benchmark has 15).
        n_fake: Fake test utterances, spread evenly over ``fake_folders``.
        frames_per_clip: 1 s frames cut from each perturbed utterance.
        fake_folders: Fake folders the sweep draws from.
        speakers_limit: Frames per folder of the speaker trees (None: all).
        n_boot: Bootstrap resamples of every CI.

    Example:
        >>> Study().n_real, Study.quick().sweep
        (15, {'white-noise': [10], 'mp3': [32]})
    """

    sweep: Mapping[str, Sequence[float]] = field(default_factory=lambda: dict(SWEEP))
    n_real: int = 15
    n_fake: int = 36
    frames_per_clip: int = 2
    fake_folders: Sequence[str] = tuple(WAVEFAKE_FOLDERS)
    speakers_limit: int | None = None
    n_boot: int = 500

    @classmethod
    def quick(cls, **overrides: Any) -> Study:
        """The study of a quick (CI) build: two perturbations, a few utterances and frames.

        Args:
            **overrides: Fields to set besides.

        Returns:
            The study.
        """
        small = {"sweep": dict(QUICK_SWEEP), "n_real": 4, "n_fake": 4, "frames_per_clip": 1,
                 "speakers_limit": 2, "n_boot": 20}  # fmt: skip
        return cls(**{**small, **overrides})


def sweep_clips(
    index: pd.DataFrame,
    n_real: int,
    n_fake: int,
    folders: Sequence[str] | None = None,
    split: str | None = "test",
    seed: int = 0,
) -> pd.DataFrame:
    """Pick the utterances of a sweep: real ones, and fakes spread evenly over folders.

    Notebook: notebooks/07_robustness.py

    Args:
        index: A frame store's index (:attr:`gpwave.store.FrameStore.index`).
        n_real: Real utterances (all if fewer).
        n_fake: Fake utterances in all, taken round-robin over the fake folders so that
            small folders give all they have and large ones the rest.
        folders: Fake folder names to draw from (None: every fake folder).
        split: Only utterances of this split (None: any).
        seed: Seed of the draw.

    Returns:
        One row per file: ``file``, ``label``, ``generator``, ``folder``, ``utterance``,
        real files first, then fakes in folder order.

    Raises:
        ValueError: If the selection holds no real or no fake file.
    """
    idx = index if split is None else index[index["split"] == split]
    cols = ["file", "label", "generator", "folder", "utterance"]
    files = idx.drop_duplicates("file")[cols]
    if folders is not None:
        files = files[(files["label"] == 0) | files["folder"].isin(list(folders))]
    rng = np.random.default_rng(seed)
    real = files[files["label"] == 0]
    fake = files[files["label"] == 1]
    if real.empty or fake.empty:
        raise ValueError(f"no {'real' if real.empty else 'fake'} files in the selection")
    real = real.iloc[np.sort(rng.permutation(len(real))[:n_real])]
    queues = [g.iloc[rng.permutation(len(g))] for _, g in fake.groupby("folder", sort=True)]
    picked: list[pd.DataFrame] = []
    while sum(map(len, picked)) < n_fake and any(len(q) for q in queues):
        for i, q in enumerate(queues):
            if len(q) and sum(map(len, picked)) < n_fake:
                picked.append(q.iloc[:1])
                queues[i] = q.iloc[1:]
    fake = pd.concat(picked).sort_values(["folder", "file"])
    return pd.concat([real, fake], ignore_index=True)


def load_clips(
    files: Sequence[str | Path], seconds: float, sample_rate: int = SAMPLE_RATE
) -> list[np.ndarray]:
    """Decode files and keep the first ``seconds`` of each.

    Notebook: notebooks/07_robustness.py

    Args:
        files: Audio files.
        seconds: Length kept (a frame budget plus room for the largest shift).
        sample_rate: Rate in Hz.

    Returns:
        float32 clips, at most ``seconds`` long.
    """
    n = int(round(seconds * sample_rate))
    return [load_audio(f, sample_rate)[:n] for f in files]


def perturbed_frames(
    clips: Sequence[np.ndarray],
    kind: str,
    strength: float,
    frames_per_clip: int,
    sample_rate: int = SAMPLE_RATE,
    frame_length: int = SAMPLE_RATE,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Perturb each clip whole, then cut its first frames.

    Args:
        clips: float32 clips.
        kind: A :data:`gpwave.perturb.PERTURBATIONS` kind, or :data:`CLEAN`.
        strength: In the kind's unit (ignored for :data:`CLEAN`).
        frames_per_clip: At most this many frames from each clip.
        sample_rate: Rate of the clips in Hz.
        frame_length: Samples per frame.
        seed: Seed of random perturbations; clip ``i`` uses ``seed + i``.

    Returns:
        ``(frames, clip)``: frames ``(n, frame_length)`` and the clip number of each.
    """
    frames, owner = [], []
    for i, x in enumerate(clips):
        y = x if kind == CLEAN else perturb.apply(x, sample_rate, kind, strength, seed + i)
        f = frame_audio(y, frame_length)[:frames_per_clip]
        frames.append(f)
        owner.append(np.full(len(f), i))
    return np.concatenate(frames).astype(np.float32), np.concatenate(owner)


def conditions(sweep: Mapping[str, Sequence[float]]) -> list[tuple[str, float]]:
    """The clean condition, then every (kind, strength) of a sweep, checked.

    Args:
        sweep: Kind -> strengths, e.g. ``{"mp3": [64, 32]}``.

    Returns:
        ``[(CLEAN, 0.0), (kind, strength), ...]`` in the sweep's order.

    Raises:
        ValueError: An unknown kind.
    """
    out = [(CLEAN, 0.0)]
    for kind, strengths in sweep.items():
        if kind not in perturb.PERTURBATIONS:
            raise ValueError(
                f"{kind!r}: unknown perturbation; known: {list(perturb.PERTURBATIONS)}"
            )
        out += [(kind, float(s)) for s in strengths]
    return out


def perturbation_sweep(
    detectors: Mapping[str, torch.nn.Module],
    clips: pd.DataFrame,
    audio: Sequence[np.ndarray],
    sweep: Mapping[str, Sequence[float]],
    frames_per_clip: int = 2,
    n_boot: int = 200,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """EER of every detector under every perturbation of a sweep, and the clean EER.

    Each condition perturbs the clips once (:func:`perturbed_frames`) and every
    detector scores the same frames (:func:`gpwave.evaluate.score_waveforms`); the CI
    resamples utterances (:func:`gpwave.metrics.eer_ci`).

    Notebook: notebooks/07_robustness.py

    Args:
        detectors: Name -> detector (1 s frames at 22,050 Hz in, logits out).
        clips: :func:`sweep_clips`'s table, aligned with ``audio``.
        audio: The clips' audio (:func:`load_clips`).
        sweep: Kind -> strengths (:func:`conditions`).
        frames_per_clip: Frames cut from each clip.
        n_boot: Bootstrap resamples of each CI.
        seed: Seed of the noises and the bootstrap.
        batch_size: Frames per forward pass.
        progress: Show a progress bar over the conditions.

    Returns:
        ``(table, scores)``: one row per detector and condition with
        :data:`SWEEP_COLUMNS`; and every frame's score (``kind``, ``strength``,
        ``clip``, ``label``, ``folder``, one column per detector).
    """
    rows, scored = [], []
    labels_of, utts_of = clips["label"].to_numpy(), clips["utterance"].to_numpy(str)
    for kind, strength in tqdm(conditions(sweep), desc="conditions", disable=not progress):
        frames, clip = perturbed_frames(audio, kind, strength, frames_per_clip, seed=seed)
        y, groups = labels_of[clip], utts_of[clip]
        unit = "" if kind == CLEAN else perturb.PERTURBATIONS[kind].unit
        frame_scores = {"kind": kind, "strength": strength, "clip": clip, "label": y,
                        "folder": clips["folder"].to_numpy()[clip]}  # fmt: skip
        for name, det in detectors.items():
            s = evaluate.score_waveforms(det, frames, batch_size)
            low, high = metrics.eer_ci(y, s, groups, n_boot, seed=seed)
            rows.append([name, kind, strength, unit, len(y), metrics.eer(y, s), low, high])
            frame_scores[name] = s
        scored.append(pd.DataFrame(frame_scores))
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS), pd.concat(scored, ignore_index=True)


def gain_sweep(
    detectors: Mapping[str, torch.nn.Module],
    store: Any,
    gains_db: Sequence[float],
    generators: Sequence[str] | None = None,
    split: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> pd.DataFrame:
    """EER of every detector on the same store frames scaled by each gain.

    The frames (:func:`gpwave.evaluate.split_frames`: real and ``generators``' frames of
    ``split``, ``limit`` per folder) are multiplied by ``10 ** (dB / 20)`` without
    clipping and scored again; a detector whose EER moves reads the absolute level.

    Notebook: notebooks/04_generalization.py

    Args:
        detectors: Name -> detector.
        store: A :class:`gpwave.store.FrameStore`.
        gains_db: Gains in dB.
        generators: Fake generators to include (None: all).
        split: "train", "val", "test", or None for every frame.
        limit: At most this many frames per folder (seeded sample; None: all).
        seed: Seed of the ``limit`` sample.
        batch_size: Frames per forward pass.

    Returns:
        EER per gain (index ``gain_db``, in the given order) and detector (columns).
    """
    frames = evaluate.split_frames(store, split, generators, limit, seed)
    rows, y = frames["row"].to_numpy(), frames["label"].to_numpy(int)
    table = {
        name: [
            metrics.eer(
                y, evaluate.score_frames(det, store, rows, batch_size, gain=10 ** (db / 20))
            )
            for db in gains_db
        ]
        for name, det in detectors.items()
    }
    index = pd.Index(list(gains_db), name="gain_db")
    return pd.DataFrame(table, index=index).rename_axis(columns="detector")


def worst_case(table: pd.DataFrame) -> pd.DataFrame:
    """Each detector's clean EER, its worst perturbed EER and which condition that was.

    Notebook: notebooks/07_robustness.py

    Args:
        table: :func:`perturbation_sweep`'s table.

    Returns:
        One row per detector (in the table's order): ``clean``, ``worst``,
        ``worst_condition``, ``mean_perturbed`` (the mean EER over the perturbed
        conditions).
    """
    rows = []
    for name, t in table.groupby("detector", sort=False):
        clean, pert = t[t["kind"] == CLEAN], t[t["kind"] != CLEAN]
        w = pert.loc[pert["eer"].idxmax()] if len(pert) else None
        rows.append({
            "detector": name,
            "clean": float(clean["eer"].iloc[0]) if len(clean) else float("nan"),
            "worst": float("nan") if w is None else float(w["eer"]),
            "worst_condition": "" if w is None else condition_label(w["kind"], w["strength"]),
            "mean_perturbed": float(pert["eer"].mean()) if len(pert) else float("nan"),
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("detector")


def condition_label(kind: str, strength: float) -> str:
    """A condition as text: ``"clean"`` or ``"mp3 32 kbit/s"``.

    Args:
        kind: A perturbation kind or :data:`CLEAN`.
        strength: Its strength.

    Returns:
        The label tables and figures use.
    """
    if kind == CLEAN:
        return CLEAN
    return f"{kind} {strength:g} {perturb.PERTURBATIONS[kind].unit}"


def plot_sweep(table: pd.DataFrame, ncols: int = 3) -> Figure:
    """EER against strength, one panel per perturbation kind, one line per detector.

    Each panel starts with the clean EER; shading is the 95 % bootstrap interval.

    Notebook: notebooks/07_robustness.py

    Args:
        table: :func:`perturbation_sweep`'s table.
        ncols: Panels per row.

    Returns:
        The figure.
    """
    import matplotlib.pyplot as plt

    kinds = [k for k in dict.fromkeys(table["kind"]) if k != CLEAN]
    nrows = max(1, -(-len(kinds) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(11, 3 * nrows), sharey=True, squeeze=False)
    clean = table[table["kind"] == CLEAN].set_index("detector")
    for ax, kind in zip(axes.flat, kinds, strict=False):
        t = table[table["kind"] == kind]
        strengths = list(dict.fromkeys(t["strength"]))
        for name, d in t.groupby("detector", sort=False):
            cols = ["eer", "eer_ci_low", "eer_ci_high"]
            y, lo, hi = (100 * np.r_[clean.loc[name, c], d[c]] for c in cols)
            (line,) = ax.plot(range(len(y)), y, marker="o", ms=3, lw=1, label=name)
            ax.fill_between(range(len(y)), lo, hi, color=line.get_color(), alpha=0.08)
        ax.axhline(50, color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(strengths) + 1), [CLEAN, *[f"{s:g}" for s in strengths]])
        ax.set(title=f"{kind} ({perturb.PERTURBATIONS[kind].unit})", ylim=(-2, 102))
    for ax in axes.flat[len(kinds) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("EER (%)")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_folder_eers(table: pd.DataFrame, rows: str = "folder") -> Figure:
    """EER with its 95 % interval per row (e.g. folder), one marker per detector.

    Notebook: notebooks/07_robustness.py

    Args:
        table: Long table with ``detector``, ``rows``, ``eer``, ``eer_ci_low``,
            ``eer_ci_high`` (e.g. :func:`gpwave.evaluate.score_trees`'s rows).
        rows: The column that names the rows of the plot.

    Returns:
        The figure.
    """
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(table[rows]))
    detectors = list(dict.fromkeys(table["detector"]))
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(names) + 1))
    offsets = np.linspace(-0.3, 0.3, len(detectors))
    for off, name in zip(offsets, detectors, strict=True):
        d = table[table["detector"] == name].set_index(rows).loc[names]
        ci = d[["eer_ci_low", "eer_ci_high"]].to_numpy().T - d["eer"].to_numpy()
        y = np.arange(len(names)) + off
        ax.errorbar(100 * d["eer"], y, xerr=100 * np.abs(ci), fmt="o", ms=3, lw=0.8, label=name)
    ax.axvline(50, color="grey", lw=0.8, ls="--")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set(xlabel="EER (%)", xlim=(-2, 102))
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def listening_rows(
    clips: pd.DataFrame,
    audio: Sequence[np.ndarray],
    frame_scores: pd.DataFrame,
    listen: Sequence[tuple[str, float]],
    chosen: Mapping[str, int],
    detectors: Sequence[str],
    seed: int = 0,
) -> list[dict]:
    """Rows of players: some clips' first frame under some conditions, with their scores.

    Each row holds, for :func:`gpwave.widgets.audio_table`, the first frame of each
    chosen clip under one condition of a sweep and each detector's fake probability of
    that frame. The audio is perturbed again exactly as the sweep did (clip ``i`` with
    ``seed + i``), so what plays is what was scored.

    Notebook: notebooks/07_robustness.py

    Args:
        clips: The sweep's clips.
        audio: Their audio.
        frame_scores: :func:`perturbation_sweep`'s per-frame scores.
        listen: ``(kind, strength)`` conditions of the sweep to show.
        chosen: Column title -> clip number, e.g. ``{"real": 0, "fake": 17}``.
        detectors: Detectors (columns of ``frame_scores``) whose scores to show.
        seed: The sweep's seed.

    Returns:
        One row per condition: the condition, one audio column per chosen clip, and
        ``"<detector>: p(fake) <title>"`` columns.
    """
    rows = []
    for kind, strength in listen:
        at = frame_scores[(frame_scores["kind"] == kind) & (frame_scores["strength"] == strength)]
        row: dict = {"perturbation": condition_label(kind, strength)}
        for title, i in chosen.items():
            frames, _ = perturbed_frames([audio[i]], kind, strength, 1, seed=seed + i)
            row[title] = frames[0]
            first = at[at["clip"] == i].iloc[0]
            p = metrics.probability([first[name] for name in detectors])
            named = zip(detectors, p, strict=True)
            row.update({f"{n}: p(fake) {title}": float(v) for n, v in named})
        rows.append(row)
    return rows
