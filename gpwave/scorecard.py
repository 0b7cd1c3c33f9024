"""The targets of a detector that generalises, and each detector's scorecard against them.

A detector trained on many speakers and vocoders (chapter 08) is compared with the two
released models on the same frames: new VCTK speakers and end-to-end TTS
(speakers-tts-mini, pooled per tree), every WaveFake-style folder B-T and the mean over
folders U-Z of the mini benchmark's test split, and the mean EER over chapter 07's
perturbed conditions. Each number keeps its 95 % interval where one exists.

Notebook: notebooks/08_generalization_needs.py
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Target:
    """One target: a column of the scorecard and the EER it must not exceed.

    Args:
        column: The scorecard column.
        limit: The largest EER that meets the target.
        text: What the column measures, for a reader.
    """

    column: str
    limit: float
    text: str


#: The targets of issue 22, in the scorecard's column order.
TARGETS: tuple[Target, ...] = (
    Target("VCTK pooled", 0.07, "new VCTK speakers, six vocoders pooled"),
    Target("TTS pooled", 0.03, "end-to-end TTS (Tacotron 2 + WaveGlow/HiFi-GAN) pooled"),
    Target("B–T worst", 0.05, "the worst WaveFake-style folder B–T of the mini test split"),
    Target("U–Z mean", 0.20, "mean over the folders U–Z of the mini test split"),
    Target("perturbed mean", np.nan, "mean over chapter 07's perturbed conditions"),
)


def _pooled(speakers: pd.DataFrame, detector: str, tree: str) -> pd.Series:
    rows = speakers[(speakers["detector"] == detector) & (speakers["folder"] == f"{tree}/pooled")]
    if len(rows) != 1:
        raise ValueError(f"{detector}: no pooled row of tree {tree!r} in the speakers table")
    return rows.iloc[0]


def _mini(table: pd.DataFrame, letters: Mapping[str, str]) -> tuple[pd.Series, float]:
    """The worst B-T folder's row and the U-Z mean of one detector's mini test table."""
    letter = table["generator"].map(letters)
    bt = table[letter.between("B", "T")]
    uz = table[letter >= "U"]
    return bt.loc[bt["eer"].idxmax()], float(uz["eer"].mean())


def renamed(table: pd.DataFrame, prefix: str, name: str) -> pd.DataFrame:
    """A chapter table with every ``detector`` that starts with ``prefix`` renamed ``name``.

    Chapter 07 labels a run (``DCNN, STFT, many speakers (gpwave-speakers)``, with
    ``(NOT CONVERGED)`` appended when it is); the scorecard uses the model's name.

    Notebook: notebooks/08_generalization_needs.py

    Example:
        >>> t = pd.DataFrame({"detector": ["paper-stft", "DCNN, STFT (NOT CONVERGED)"]})
        >>> renamed(t, "DCNN, STFT", "mine")["detector"].tolist()
        ['paper-stft', 'mine']
    """
    ours = table["detector"].str.startswith(prefix)
    return table.assign(detector=table["detector"].where(~ours, name))


def scorecard(
    mini: Mapping[str, pd.DataFrame],
    letters: Mapping[str, str],
    speakers: pd.DataFrame,
    perturbed: pd.DataFrame,
) -> pd.DataFrame:
    """One row per detector: its EER against each target, with intervals where known.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        mini: Detector -> its table on the mini benchmark's test split (one row per
            generator: ``generator``, ``eer``, ``eer_ci_low``, ``eer_ci_high``), all
            on the same frames.
        letters: Generator name -> its folder's letter (``hifigan`` -> ``C``).
        speakers: :func:`gpwave.evaluate.score_trees`'s table (``detector``,
            ``folder`` with ``vctk/pooled`` and ``tts/pooled`` rows).
        perturbed: :func:`gpwave.robustness.perturbation_sweep`'s table (``detector``,
            ``kind``, ``eer``); its ``clean`` rows are left out of the mean.

    Returns:
        Columns per target (:data:`TARGETS`) with ``... low``/``... high`` intervals for
        the pooled ones, plus ``B–T worst folder``; one row per detector of ``mini``.

    Example:
        >>> t = pd.DataFrame({"generator": ["hifigan", "wavenet"], "eer": [0.04, 0.3],
        ...                   "eer_ci_low": [0.0, 0.2], "eer_ci_high": [0.1, 0.4]})
        >>> sp = pd.DataFrame({"detector": "d", "folder": ["vctk/pooled", "tts/pooled"],
        ...                    "eer": [0.05, 0.02], "eer_ci_low": 0.0, "eer_ci_high": 0.1})
        >>> pe = pd.DataFrame({"detector": "d", "kind": ["clean", "mp3"], "eer": [0.0, 0.1]})
        >>> card = scorecard({"d": t}, {"hifigan": "C", "wavenet": "U"}, sp, pe)
        >>> card.loc["d", ["VCTK pooled", "B–T worst", "U–Z mean", "perturbed mean"]].tolist()
        [0.05, 0.04, 0.3, 0.1]
    """
    rows = {}
    for det, table in mini.items():
        worst, uz = _mini(table, letters)
        row: dict[str, object] = {}
        for name, tree in (("VCTK pooled", "vctk"), ("TTS pooled", "tts")):
            p = _pooled(speakers, det, tree)
            row |= {name: p["eer"], f"{name} low": p["eer_ci_low"],
                    f"{name} high": p["eer_ci_high"]}  # fmt: skip
        row |= {"B–T worst": worst["eer"], "B–T worst low": worst["eer_ci_low"],
                "B–T worst high": worst["eer_ci_high"], "B–T worst folder": worst["generator"],
                "U–Z mean": uz}  # fmt: skip
        pert = perturbed[(perturbed["detector"] == det) & (perturbed["kind"] != "clean")]
        row["perturbed mean"] = float(pert["eer"].mean()) if len(pert) else np.nan
        rows[det] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def verdicts(card: pd.DataFrame, perturbed_limit: float) -> pd.DataFrame:
    """Whether each detector meets each target (True/False; NaN where not measured).

    Notebook: notebooks/08_generalization_needs.py

    Args:
        card: :func:`scorecard`'s table.
        perturbed_limit: The perturbed-mean target (paper-stft's own mean).

    Returns:
        One boolean column per target.

    Example:
        >>> card = pd.DataFrame({"VCTK pooled": [0.05], "TTS pooled": [0.04], "B–T worst": [0.05],
        ...                      "U–Z mean": [0.1], "perturbed mean": [np.nan]}, index=["d"])
        >>> verdicts(card, 0.2).loc["d"].tolist()
        [True, False, True, True, nan]
    """
    out = {}
    for t in TARGETS:
        limit = perturbed_limit if t.column == "perturbed mean" else t.limit
        v = card[t.column].astype(float)
        out[t.column] = [np.nan if np.isnan(x) else bool(x <= limit + 1e-12) for x in v]
    return pd.DataFrame(out, index=card.index, dtype=object)


def _cell(card: pd.DataFrame, det: str, column: str) -> str:
    v = card.loc[det, column]
    if pd.isna(v):
        return "not measured"
    text = f"{100 * v:.1f} %"
    if f"{column} low" in card.columns:
        low, high = card.loc[det, f"{column} low"], card.loc[det, f"{column} high"]
        text += f" [{100 * low:.1f}–{100 * high:.1f}]"
    if column == "B–T worst":
        text += f" ({card.loc[det, 'B–T worst folder']})"
    return text


def markdown(card: pd.DataFrame, met: pd.DataFrame, perturbed_limit: float) -> str:
    """The scorecard as a Markdown table: one row per target, one column per detector.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        card: :func:`scorecard`'s table.
        met: :func:`verdicts`'s table.
        perturbed_limit: The perturbed-mean target.

    Returns:
        Markdown; each cell is the EER in percent, its interval, and whether it meets
        the target ("meets" / "misses").

    Example:
        >>> card = pd.DataFrame({"VCTK pooled": [0.05], "VCTK pooled low": [0.0],
        ...     "VCTK pooled high": [0.1], "TTS pooled": [np.nan], "B–T worst": [0.05],
        ...     "B–T worst folder": ["hifigan"], "U–Z mean": [0.1],
        ...     "perturbed mean": [0.2]}, index=["d"])
        >>> print(markdown(card, verdicts(card, 0.2), 0.2).splitlines()[2])
        | VCTK pooled ≤ 7.0 % | 5.0 % [0.0–10.0], meets |
    """
    lines = ["| target | " + " | ".join(card.index) + " |",
             "|:--|" + "--:|" * len(card.index)]  # fmt: skip
    for t in TARGETS:
        limit = perturbed_limit if t.column == "perturbed mean" else t.limit
        cells = []
        for det in card.index:
            ok = met.loc[det, t.column]
            word = "" if pd.isna(ok) else (", meets" if ok else ", misses")
            cells.append(_cell(card, det, t.column) + word)
        bound = f"paper-stft's {100 * limit:.1f} %" if t.column == "perturbed mean" else (
            f"{100 * limit:.1f} %")  # fmt: skip
        lines.append(f"| {t.column} ≤ {bound} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(card: pd.DataFrame, met: pd.DataFrame, detector: str, reference: str) -> str:
    """One sentence: which targets ``detector`` meets and misses, next to ``reference``.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        card: :func:`scorecard`'s table.
        met: :func:`verdicts`'s table.
        detector: The detector the sentence is about.
        reference: The detector quoted beside it.

    Returns:
        The sentence.

    Example:
        >>> card = pd.DataFrame({"VCTK pooled": [0.05, 0.14], "TTS pooled": [0.04, 0.03],
        ...     "B–T worst": [0.05, 0.3], "U–Z mean": [0.1, 0.2],
        ...     "perturbed mean": [0.3, 0.2]}, index=["d", "r"])
        >>> print(summary(card, verdicts(card, 0.2), "d", "r"))  # doctest: +NORMALIZE_WHITESPACE
        d meets 3 of 5 targets (VCTK pooled 5.0 % against r's 14.0 %; B–T worst 5.0 %
        against 30.0 %; U–Z mean 10.0 % against 20.0 %) and misses 2 (TTS pooled 4.0 %
        against 3.0 %; perturbed mean 30.0 % against 20.0 %).
    """
    row, ref = met.loc[detector], card.loc[reference]

    def said(columns: list[str], first: bool) -> str:
        return "; ".join(
            f"{c} {100 * card.loc[detector, c]:.1f} % against "
            + (f"{reference}'s " if first and i == 0 else "")
            + f"{100 * ref[c]:.1f} %"
            for i, c in enumerate(columns)
        )

    hit = [t.column for t in TARGETS if row[t.column] is True]
    miss = [t.column for t in TARGETS if row[t.column] is False]
    text = f"{detector} meets {len(hit)} of {len(hit) + len(miss)} targets"
    if hit:
        text += f" ({said(hit, True)})"
    if miss:
        text += f" and misses {len(miss)} ({said(miss, not hit)})"
    return text + "."
