"""Findings computed from the book's numbers: sentences, verdicts and the scoreboard.

Every chapter of the book ends with "What we found": a few sentences written by the
functions here from the chapter's own tables, so the prose cannot drift from the
numbers. Each chapter that tests a claim of the paper also saves a scoreboard row
(:class:`ScoreRow`) under ``<results>/findings/``; :mod:`gpwave.book` turns the rows of
all chapters into the paper-vs-book scoreboard of the introduction.

A verdict compares an interval with the value the claim needs (:func:`direction`):

- ``reproduced``: the whole interval lies on the claim's side;
- ``contradicted``: the whole interval lies on the other side, for detectors at the
  paper's scale (the released weights);
- ``not at this scale``: the interval contains the value, the detector did not learn its
  training generator, or a book-trained detector (mini benchmark, CPU budget) falls on the
  other side: the mini benchmark cannot decide a claim made at paper scale;
- ``not measured``: nothing to compare.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gpwave.constants import Verdict

#: The paper and the reference implementation.
PAPER = {
    "cite": "Gasenzer & Wolter, *Towards generalizing deep-audio fake detection networks*, "
    "TMLR 2024",
    "arxiv": "https://arxiv.org/abs/2305.13033",
    "repository": "https://github.com/gan-police/audiodeepfake-detection",
}
#: Where "high frequencies" start for the fingerprint and attribution shares (Hz).
HIGH_CUT_HZ = 5500.0
#: Pooled unseen EER at or below which a detector counts as generalising.
GENERALIZES_EER = 0.10
#: Best validation EER above which a run did not learn its training generator.
CONVERGED_EER = 0.2
#: The four deliverables of the paper, in scoreboard order, with the paper's claim: a
#: quotation of its abstract where the abstract states it, else marked as our summary.
CLAIMS = {
    "fingerprints": '"We study the frequency domain fingerprints of current audio '
    'generators." (abstract); the fingerprints lie above all in the high frequencies '
    "(our summary of the paper's spectra)",
    "generalisation": '"Building on top of the discovered frequency footprints, we train '
    'excellent lightweight detectors that generalize." (abstract)',
    "dilation": "Our summary: the dilated convolutions over frequency help the detector "
    "generalise to unseen generators (the paper's ablation drops them)",
    "attribution": "Our summary: integrated gradients show that the detector relies on "
    "high-frequency bands",
}


@dataclass
class ScoreRow:
    """One deliverable of the paper as the book measured it.

    Attributes:
        deliverable: A key of :data:`CLAIMS`.
        chapter: The notebook that measured it (e.g. ``"04_generalization"``).
        released: What the paper's released weights show here ("—" if not applicable).
        trained: What the book's own training shows here ("—" if not applicable).
        verdict_released: Verdict on the released weights' evidence.
        verdict_trained: Verdict on the book's own training.
    """

    deliverable: str
    chapter: str
    released: str
    trained: str
    verdict_released: Verdict = "not measured"
    verdict_trained: Verdict = "not measured"


@dataclass
class ChapterFindings:
    """What one chapter found: its sentences, scoreboard rows and key numbers.

    Attributes:
        chapter: Notebook stem, e.g. ``"05_dilation"``.
        sentences: Two to five sentences, computed from the chapter's numbers.
        rows: Scoreboard rows the chapter measured.
        numbers: Named numbers other pages quote (fractions, not percent).
        quick: Whether the numbers come from a quick (CI) build.
    """

    chapter: str
    sentences: list[str]
    rows: list[ScoreRow] = field(default_factory=list)
    numbers: dict[str, float | str] = field(default_factory=dict)
    quick: bool = False

    def markdown(self) -> str:
        """The sentences as one Markdown paragraph (with a warning for quick builds)."""
        text = " ".join(self.sentences)
        if self.quick:
            text = QUICK_NOTE + " " + text
        return text


#: Said first in every finding of a quick build.
QUICK_NOTE = (
    "**Quick build:** the book's detectors trained on a handful of frames for one epoch "
    "and most numbers come from a few frames: these findings only show that the "
    "pipeline runs."
)


def pct(x: float) -> str:
    """A fraction as percent with one decimal ("12.5 %"); "n/a" for NaN."""
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f} %"


def interval(low: float, high: float) -> str:
    """A 95 % interval in percent ("CI 5.4–13.5 %"); empty if it is unknown."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "no interval"
    return f"95 % CI {100 * low:.1f}–{100 * high:.1f} %"


def direction(low: float, high: float, value: float) -> int:
    """Where an interval lies relative to a value: +1 above, -1 below, 0 containing it.

    Args:
        low: Lower end of the interval.
        high: Upper end of the interval.
        value: The value the claim is compared with.

    Returns:
        +1 if ``low > value``, -1 if ``high < value``, else 0 (also for NaN ends).
    """
    if np.isfinite(low) and low > value:
        return 1
    if np.isfinite(high) and high < value:
        return -1
    return 0


def verdict(side: int, paper_scale: bool, converged: bool = True) -> Verdict:
    """The verdict on a claim from the side of the interval it lies on.

    Args:
        side: +1 the evidence supports the claim, -1 it goes against it, 0 undecided.
        paper_scale: The detector was trained at the paper's scale (released weights).
        converged: The detector learned its training generator.

    Returns:
        "reproduced", "contradicted" or "not at this scale".
    """
    if not converged:
        return "not at this scale"
    if side > 0:
        return "reproduced"
    if side < 0 and paper_scale:
        return "contradicted"
    return "not at this scale"


def high_share(values: np.ndarray, freqs_hz: np.ndarray, cut_hz: float = HIGH_CUT_HZ) -> float:
    """Share of the total absolute ``values`` in bands at or above ``cut_hz``.

    Args:
        values: One value per band (a spectral difference, an attribution marginal).
        freqs_hz: Centre frequency of each band.
        cut_hz: Where the high bands start.

    Returns:
        ``sum |values[f >= cut]| / sum |values|`` (NaN if all values are 0).
    """
    v = np.abs(np.asarray(values, float))
    total = v.sum()
    return float(v[np.asarray(freqs_hz) >= cut_hz].sum() / total) if total > 0 else float("nan")


def uniform_share(freqs_hz: np.ndarray, cut_hz: float = HIGH_CUT_HZ) -> float:
    """The :func:`high_share` of a flat profile: the fraction of bands at or above the cut."""
    return float(np.mean(np.asarray(freqs_hz) >= cut_hz))


def share_interval(
    per_frame: np.ndarray,
    freqs_hz: np.ndarray,
    cut_hz: float = HIGH_CUT_HZ,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """:func:`high_share` of the frames' mean profile, with a 95 % bootstrap interval.

    Frames are resampled with replacement; each resample's share is that of its summed
    absolute profiles, so the point estimate equals the share of the mean profile.

    Args:
        per_frame: Absolute profile (e.g. attribution marginal) per frame, ``(N, F)``.
        freqs_hz: Centre frequency of each band, ``(F,)``.
        cut_hz: Where the high bands start.
        n_boot: Bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        ``(share, low, high)``; the interval is NaN with fewer than two frames.
    """
    p = np.abs(np.asarray(per_frame, float))
    high = np.asarray(freqs_hz) >= cut_hz
    above, total = p[:, high].sum(axis=1), p.sum(axis=1)
    share = float(above.sum() / total.sum())
    if len(p) < 2 or n_boot < 1:
        return share, float("nan"), float("nan")
    pick = np.random.default_rng(seed).integers(0, len(p), size=(n_boot, len(p)))
    boot = above[pick].sum(axis=1) / total[pick].sum(axis=1)
    return share, float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))


def save(found: ChapterFindings, results_dir: str | Path) -> Path:
    """Write a chapter's findings to ``<results_dir>/findings/<chapter>.json``.

    Args:
        found: The chapter's findings.
        results_dir: The build's results folder.

    Returns:
        The JSON file.
    """
    path = Path(results_dir) / "findings" / f"{found.chapter}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(found), indent=1, default=float) + "\n")
    return path


def load(path: str | Path) -> ChapterFindings:
    """Read what :func:`save` wrote.

    Args:
        path: A ``findings/<chapter>.json`` file.

    Returns:
        The chapter's findings.
    """
    raw = json.loads(Path(path).read_text())
    raw["rows"] = [ScoreRow(**r) for r in raw.get("rows", [])]
    return ChapterFindings(**raw)


def load_all(results_dir: str | Path) -> dict[str, ChapterFindings]:
    """Every chapter's findings under ``<results_dir>/findings``, by chapter, sorted.

    Args:
        results_dir: The build's results folder.

    Returns:
        Chapter -> findings (empty if nothing was saved).
    """
    files = sorted(Path(results_dir, "findings").glob("*.json"))
    return {p.stem: load(p) for p in files}


# --- chapter 01: fingerprints -----------------------------------------------------------
def fingerprint_findings(
    shares: Mapping[str, float], uniform: float, n_frames: Mapping[str, int], quick: bool = False
) -> ChapterFindings:
    """What the fingerprint spectra show: each generator's share of difference up high.

    Notebook: notebooks/01_fingerprints.py

    Args:
        shares: Generator -> :func:`high_share` of its |difference to real| in dB.
        uniform: :func:`uniform_share` of the bands (a flat difference's share).
        n_frames: Generator -> frames averaged (the real folder included).
        quick: Quick (CI) build.

    Returns:
        The chapter's findings and its ``fingerprints`` scoreboard row.
    """
    s = pd.Series(shares, dtype=float).sort_values()
    above = int((s > uniform).sum())
    cut = f"{HIGH_CUT_HZ / 1000:g} kHz"
    measured = (
        f"{above} of {len(s)} generators have more than the flat share ({pct(uniform)}) "
        f"of their spectral difference above {cut} (from {pct(s.min())}, {s.index[0]}, "
        f"to {pct(s.max())}, {s.index[-1]})"
    )
    side = 1 if above > 2 * len(s) / 3 else (-1 if above < len(s) / 3 else 0)
    few = min(n_frames.values()) if n_frames else 0
    sentences = [
        f"Every generator's mean packet spectrum differs from real speech; {measured}.",
        f"The spectra average between {few} and {max(n_frames.values(), default=0)} "
        "frames of one second per folder.",
    ]
    if side > 0:
        sentences.append("The fingerprints lie above all in the high frequencies.")
    row = ScoreRow("fingerprints", "01_fingerprints", "—", measured + " (data, no model)",
                   verdict_trained=verdict(side, paper_scale=True))  # fmt: skip
    numbers = {"high_share_min": float(s.min()), "high_share_max": float(s.max()),
               "uniform_share": uniform, "generators_above": above}  # fmt: skip
    return ChapterFindings("01_fingerprints", sentences, [row], numbers, quick)


# --- chapter 04: generalisation ---------------------------------------------------------
def _row(table: pd.DataFrame, generator: str) -> pd.Series | None:
    """The row of ``generator`` in a per-generator table, or None."""
    hit = table[table["generator"] == generator]
    return None if hit.empty else hit.iloc[0]


def _eer_text(row: pd.Series | None, mean: str = "eer") -> str:
    if row is None:
        return "n/a"
    return f"{pct(row[mean])} ({interval(row['eer_ci_low'], row['eer_ci_high'])})"


def released_generalization(
    table: pd.DataFrame, pool: str, uz_pool: str | None = None
) -> tuple[str, Verdict, dict[str, float]]:
    """What a released model's per-folder table says about generalisation.

    Args:
        table: :func:`gpwave.evaluate.score_split` table of the released model, whose
            pooled rows leave out the generator it was trained on.
        pool: Name of the pooled row the verdict rests on (the paper's generators).
        uz_pool: Name of the pooled row with every unseen folder, if it differs.

    Returns:
        ``(text, verdict, numbers)``: verdict "reproduced" if the pool's interval lies
        below :data:`GENERALIZES_EER`.
    """
    row = _row(table, pool)
    if row is None:
        return "not measured", "not measured", {}
    side = -direction(row["eer_ci_low"], row["eer_ci_high"], GENERALIZES_EER)
    folders = table[~table["generator"].str.startswith("pooled")]
    text = f"pooled EER of {_eer_text(row)} on the folders it never saw"
    every = _row(table, uz_pool) if uz_pool else None
    if every is not None:
        text += f" without the r9y9 folders U–Z, {_eer_text(every)} with them"
    worst = folders.loc[folders["eer"].idxmax()] if len(folders) else None
    numbers = {
        "pooled": float(row["eer"]),
        "worst_folder": float("nan") if worst is None else float(worst["eer"]),
        "worst_name": "" if worst is None else str(worst["generator"]),
    }
    return text, verdict(side, paper_scale=True), numbers


def trained_generalization(
    table: pd.DataFrame, seen: str, converged: bool
) -> tuple[str, Verdict, dict[str, float]]:
    """What a book-trained detector's seed-aggregated table says about generalisation.

    Args:
        table: :func:`gpwave.evaluate.aggregate_seeds` table (``eer_mean``, CI columns).
        seen: The training generator.
        converged: Every seed of the run learned its training generator.

    Returns:
        ``(text, verdict, numbers)`` as :func:`released_generalization`.
    """
    seen_row, pooled = _row(table, seen), _row(table, "pooled_unseen")
    if seen_row is None or pooled is None:
        return "not measured", "not measured", {}
    text = (f"{seen} (seen) {_eer_text(seen_row, 'eer_mean')}, pooled unseen "
            f"{_eer_text(pooled, 'eer_mean')}")  # fmt: skip
    if not converged:
        text += " — did not converge"
    side = -direction(pooled["eer_ci_low"], pooled["eer_ci_high"], GENERALIZES_EER)
    numbers = {"seen": float(seen_row["eer_mean"]), "pooled": float(pooled["eer_mean"])}
    return text, verdict(side, paper_scale=False, converged=converged), numbers


def _converged(overview: pd.DataFrame, run: str) -> bool:
    rows = overview[overview["run"] == run]
    return bool(len(rows)) and bool(rows["converged"].all())


def generalization_findings(
    paper_table: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    overview: pd.DataFrame,
    seen: str,
    quick: bool = False,
) -> ChapterFindings:
    """Chapter 04's findings: the released sym5 model and the book's detectors.

    Notebook: notebooks/04_generalization.py

    Args:
        paper_table: The released sym5 model's table (pooled rows without full-band
            MelGAN: ``pooled_unseen`` and ``pooled_without_U-Z``).
        tables: Run name -> seed-aggregated table of each book-trained detector; the
            run ``dcnn_packets`` is the one the scoreboard reports.
        overview: :func:`gpwave.train.runs_overview` of those runs.
        seen: The book's training generator.
        quick: Quick (CI) build.

    Returns:
        The findings, the ``generalisation`` scoreboard row and the numbers the page
        ``reproduce`` quotes (``cnn_max_val_eer``, ``cnn_max_seen_eer``, ...).
    """
    rel_text, rel_verdict, rel = released_generalization(
        paper_table, "pooled_without_U-Z", "pooled_unseen"
    )
    run = "dcnn_packets" if "dcnn_packets" in tables else next(iter(tables))
    own_text, own_verdict, own = trained_generalization(
        tables[run], seen, _converged(overview, run)
    )
    n_conv = int(overview.groupby("run")["converged"].all().sum())
    sentences = [
        f"The paper's released sym5 model, trained on full-band MelGAN, scores a {rel_text} "
        f"(verdict: {rel_verdict}).",
        f"The book's DCNN on packets, trained on {seen} on the mini benchmark: {own_text} "
        f"(verdict: {own_verdict}).",
        f"{n_conv} of {overview['run'].nunique()} book-trained detectors learned their "
        f"training generator (best validation EER at most {pct(CONVERGED_EER)}).",
    ]
    pooled = {r: _row(t, "pooled_unseen") for r, t in tables.items()}
    pooled = {r: float(p["eer_mean"]) for r, p in pooled.items() if p is not None}
    if pooled:
        best = min(pooled, key=pooled.get)
        sentences.append(f"The lowest pooled unseen EER of a book-trained detector is "
                         f"{pct(pooled[best])} ({best}).")  # fmt: skip
    row = ScoreRow("generalisation", "04_generalization", "paper-sym5: " + rel_text,
                   f"DCNN, packets: {own_text}", rel_verdict, own_verdict)  # fmt: skip
    numbers = {**{f"released_{k}": v for k, v in rel.items()},
               **{f"dcnn_packets_{k}": v for k, v in own.items()},
               **_cnn_numbers(tables, overview, seen)}  # fmt: skip
    return ChapterFindings("04_generalization", sentences, [row], numbers, quick)


def _cnn_numbers(
    tables: Mapping[str, pd.DataFrame], overview: pd.DataFrame, seen: str
) -> dict[str, float]:
    """Worst best-validation and seen-generator test EER over the CNN runs."""
    cnn = overview[overview["model"].astype(str).str.contains("cnn")]
    seen_eers = [float(r["eer_mean"]) for run, t in tables.items()
                 if run in set(cnn["run"]) and (r := _row(t, seen)) is not None]  # fmt: skip
    return {
        "cnn_runs": int(cnn["run"].nunique()),
        "cnn_max_val_eer": float(cnn["best_val_eer"].max()) if len(cnn) else float("nan"),
        "cnn_max_seen_eer": max(seen_eers, default=float("nan")),
    }


# --- chapter 05: the dilation ablation ---------------------------------------------------
def paired_sentence(row: pd.Series, name: str) -> str:
    """One sentence on a paired EER difference (with dilation minus without).

    Args:
        row: A row of :func:`gpwave.evaluate.paired_table` (``difference``, ``ci_low``,
            ``ci_high``).
        name: What the row's frames are ("the seen generator, melgan").

    Returns:
        Which model was better there, by how many points, with the interval; "no
        difference" when the interval contains 0.
    """
    d, lo, hi = float(row["difference"]), float(row["ci_low"]), float(row["ci_high"])
    points = f"{100 * abs(d):.1f} points of EER (paired 95 % CI of the difference " \
             f"{100 * lo:+.1f} to {100 * hi:+.1f})"  # fmt: skip
    side = direction(lo, hi, 0.0)
    if side > 0:
        return f"On {name} the model without dilation was better by {points}."
    if side < 0:
        return f"On {name} the model with dilation was better by {points}."
    return (f"On {name} the two cannot be told apart: the difference is {100 * d:+.1f} points "
            f"(paired 95 % CI {100 * lo:+.1f} to {100 * hi:+.1f}), which contains 0.")  # fmt: skip


def ablation_findings(
    paired: pd.DataFrame, overview: pd.DataFrame, seen: str, quick: bool = False
) -> ChapterFindings:
    """Chapter 05's findings from the paired difference of one seed.

    Notebook: notebooks/05_dilation.py

    Args:
        paired: :func:`gpwave.evaluate.paired_table` rows of one seed (``test_frames``
            is the seen generator or ``pooled_unseen``).
        overview: :func:`gpwave.train.runs_overview` of both runs.
        seen: The training generator.
        quick: Quick (CI) build.

    Returns:
        The findings and the ``dilation`` scoreboard row.
    """
    by = paired.set_index("test_frames")
    converged = bool(len(overview)) and bool(overview["converged"].all())
    sentences = []
    if seen in by.index:
        sentences.append(paired_sentence(by.loc[seen], f"the seen generator ({seen})"))
    side = 0
    if "pooled_unseen" in by.index:
        u = by.loc["pooled_unseen"]
        sentences.append(paired_sentence(u, "the unseen generators (pooled)"))
        side = -direction(float(u["ci_low"]), float(u["ci_high"]), 0.0)
    if not converged:
        sentences.append("At least one of the two runs did not learn its training generator, "
                         "so the comparison says nothing about dilation.")  # fmt: skip
    v = verdict(side, paper_scale=False, converged=converged)
    sentences.append(f"The paper's claim that dilation helps on unseen generators: {v} here.")
    row = ScoreRow("dilation", "05_dilation", "— (no released ablation weights)",
                   " ".join(sentences[:2]), verdict_trained=v)  # fmt: skip
    numbers = {f"{k}_{c}": float(by.loc[k, c]) for k in by.index
               for c in ("difference", "ci_low", "ci_high")}  # fmt: skip
    return ChapterFindings("05_dilation", sentences, [row], numbers, quick)


# --- chapter 06: attribution ---------------------------------------------------------------
def share_text(share: tuple[float, float, float], uniform: float) -> str:
    """The share of attribution above the cut, with its interval, as words."""
    s, lo, hi = share
    return (f"{pct(s)} ({interval(lo, hi)}) of its integrated-gradients attribution above "
            f"{HIGH_CUT_HZ / 1000:g} kHz, against {pct(uniform)} if it were flat")  # fmt: skip


def attribution_findings(
    released: tuple[float, float, float],
    trained: tuple[float, float, float],
    uniform: float,
    converged: bool,
    top_khz: Sequence[float] = (),
    quick: bool = False,
) -> ChapterFindings:
    """Chapter 06's findings: the high-frequency share of attribution, with intervals.

    Notebook: notebooks/06_attribution.py

    Args:
        released: :func:`share_interval` of the released sym5 model (fake target).
        trained: :func:`share_interval` of the book-trained model (fake target).
        uniform: :func:`uniform_share` of the model's bands.
        converged: The book-trained model learned its training generator.
        top_khz: The released model's most attributed bands (kHz).
        quick: Quick (CI) build.

    Returns:
        The findings and the ``attribution`` scoreboard row.
    """
    v_rel = verdict(direction(released[1], released[2], uniform), paper_scale=True)
    v_own = verdict(direction(trained[1], trained[2], uniform), False, converged)
    rel, own = share_text(released, uniform), share_text(trained, uniform)
    sentences = [f"The released sym5 model puts {rel} (verdict: {v_rel}).",
                 f"The book-trained DCNN puts {own} (verdict: {v_own})."]  # fmt: skip
    if not converged:
        sentences.append("The book-trained DCNN did not learn its training generator, so "
                         "its attribution describes an untrained network.")  # fmt: skip
    if len(top_khz):
        high = sum(k >= HIGH_CUT_HZ / 1000 for k in top_khz)
        sentences.append(f"{high} of the released model's {len(top_khz)} most attributed "
                         f"bands lie above {HIGH_CUT_HZ / 1000:g} kHz.")  # fmt: skip
    row = ScoreRow("attribution", "06_attribution", "paper-sym5: " + rel,
                   "DCNN, packets: " + own, v_rel, v_own)  # fmt: skip
    numbers = {"released_share": released[0], "trained_share": trained[0],
               "uniform_share": uniform}  # fmt: skip
    return ChapterFindings("06_attribution", sentences, [row], numbers, quick)


# --- the scoreboard --------------------------------------------------------------------------
SCOREBOARD_HEADER = (
    "| Deliverable | The paper | Released weights, here | The book's own build, here | Verdict |",
    "|---|---|---|---|---|",
)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def scoreboard_rows(found: Mapping[str, ChapterFindings]) -> list[ScoreRow]:
    """The scoreboard rows of all chapters, in the order of :data:`CLAIMS`."""
    rows = {r.deliverable: r for f in found.values() for r in f.rows}
    return [rows[k] for k in CLAIMS if k in rows]


def scoreboard_markdown(found: Mapping[str, ChapterFindings], link: str = "/executed/{}") -> str:
    """The paper-vs-book scoreboard as a Markdown table (one row per deliverable).

    Args:
        found: Chapter -> findings (:func:`load_all`).
        link: Document path of a chapter, formatted with the chapter's stem.

    Returns:
        The table; deliverables no chapter measured say "not measured in this build".
    """
    rows = {r.deliverable: r for r in scoreboard_rows(found)}
    lines = list(SCOREBOARD_HEADER)
    for key, claim in CLAIMS.items():
        r = rows.get(key)
        if r is None:
            lines.append(f"| {key} | {_cell(claim)} | not measured in this build | | |")
            continue
        doc = "{doc}`" + key + " <" + link.format(r.chapter) + ">`"
        verdicts = f"released: **{r.verdict_released}**; book: **{r.verdict_trained}**"
        lines.append(f"| {doc} | {_cell(claim)} | {_cell(r.released)} | "
                     f"{_cell(r.trained)} | {verdicts} |")  # fmt: skip
    if any(f.quick for f in found.values()):
        lines.append("")
        lines.append(QUICK_NOTE)
    return "\n".join(lines) + "\n"


# --- chapters 02, 03 and 07 ------------------------------------------------------------------
def data_findings(
    summary: pd.DataFrame | None, splits_per_utterance: pd.Series, seen: str, paper_seen: str,
    quick: bool = False,
) -> ChapterFindings:  # fmt: skip
    """Chapter 02's findings: how much audio there is, and that no sentence leaks.

    Notebook: notebooks/02_data.py

    Args:
        summary: :func:`gpwave.data.summarize` (folder, generator, label, seconds, ...).
        splits_per_utterance: Number of splits each utterance appears in.
        seen: The book's training generator.
        paper_seen: The paper's training generator.
        quick: Quick (CI) build.

    Returns:
        The chapter's findings.
    """
    sec = summary.groupby("generator")["seconds"].sum()
    real = float(summary.loc[summary["label"] == 0, "seconds"].sum())
    fake = float(summary.loc[summary["label"] == 1, "seconds"].sum())
    sentences = [
        f"The data holds {real / 60:.1f} minutes of real and {fake / 60:.1f} minutes of "
        f"generated speech in {summary['generator'].nunique() - 1} generator folders.",
        f"The book trains against {seen} ({sec.get(seen, 0):.0f} s of audio) rather than the "
        f"paper's {paper_seen} ({sec.get(paper_seen, 0):.0f} s): the mini benchmark holds "
        f"{sec.get(seen, 0) / max(sec.get(paper_seen, 0), 1):.1f} times as much of it.",
        f"No utterance appears in more than {int(splits_per_utterance.max())} split.",
    ]
    return ChapterFindings("02_data", sentences, [], {"real_seconds": real}, quick)


def training_findings(
    metrics: Mapping[int, Mapping],
    summary: pd.DataFrame,
    seen: str,
    run_name: str,
    quick: bool = False,
) -> ChapterFindings:
    """Chapter 03's findings: did the run learn, and what did it score.

    Notebook: notebooks/03_train.py

    Args:
        metrics: Seed -> the metrics :func:`gpwave.train.train_one` returned.
        summary: :func:`gpwave.evaluate.aggregate_seeds` of the run's test tables (None:
            the run had ``eval_test`` off).
        seen: The training generator.
        run_name: The run; the findings are saved as ``03_train-<run_name>``.
        quick: Quick (CI) build.

    Returns:
        The chapter's findings.
    """
    sentences = []
    for seed, m in metrics.items():
        state = "learned" if m.get("converged") else "did not learn"
        sentences.append(
            f"Seed {seed} trained {m.get('steps')} optimiser steps on {m.get('n_train_frames')} "
            f"frames and {state} its training generator (best validation EER "
            f"{pct(m['best']['val_eer'])}, the limit is {pct(CONVERGED_EER)})."
        )
    seen_row, pooled = (
        (None, None) if summary is None else (_row(summary, seen), _row(summary, "pooled_unseen"))
    )
    if seen_row is not None and pooled is not None:
        sentences.append(f"Its test EER is {_eer_text(seen_row, 'eer_mean')} on {seen} and "
                         f"{_eer_text(pooled, 'eer_mean')} pooled over unseen ones.")  # fmt: skip
    return ChapterFindings(f"03_train-{run_name}", sentences[:5], [], {}, quick)


def robustness_findings(
    wide: pd.DataFrame, clean: str, conditions: Sequence[str], quick: bool = False
) -> ChapterFindings:
    """Chapter 07's findings: how each detector's EER moves under some conditions.

    Notebook: notebooks/07_robustness.py

    Args:
        wide: EER per condition (rows, with ``clean``) and detector (columns).
        clean: The row of the unperturbed audio.
        conditions: Rows to report (those missing from ``wide`` are skipped).
        quick: Quick (CI) build.

    Returns:
        The chapter's findings: one sentence per condition.
    """
    sentences = []
    for cond in [c for c in conditions if c in wide.index][:4]:
        moves = ", ".join(f"{d} {pct(wide.loc[clean, d])} → {pct(wide.loc[cond, d])}"
                          for d in wide.columns)  # fmt: skip
        sentences.append(f"Under {cond} the EER goes from clean to perturbed: {moves}.")
    if not sentences:
        sentences.append("This build's sweep measured no perturbation to report.")
    return ChapterFindings("07_robustness", sentences, [], {}, quick)


def per_frame_marginals(
    model: object, frames: np.ndarray, n_steps: int, target: str = "fake"
) -> tuple[np.ndarray, np.ndarray]:
    """Integrated-gradients |attribution| per band, one frame at a time.

    The input of :func:`share_interval`: :func:`gpwave.attribution.attribute` averages
    over frames, so each frame is attributed on its own to resample frames afterwards.

    Notebook: notebooks/06_attribution.py

    Args:
        model: A detector (see :func:`gpwave.attribution.attribute`).
        frames: Audio frames ``(N, samples)``.
        n_steps: Integration steps.
        target: "real" or "fake".

    Returns:
        ``(marginals (N, F), band centre frequencies in Hz (F,))``.
    """
    from gpwave import attribution

    out, res = [], None
    for frame in frames:
        res = attribution.attribute(model, frame[None], "integrated_gradients", target,
                                    n_steps=n_steps, batch_size=1, max_frames=None)  # fmt: skip
        out.append(res.marginal(target))
    if res is None:
        raise ValueError("per_frame_marginals: no frames to attribute")
    return np.stack(out), res.frequencies


# --- tables for people ---------------------------------------------------------------------
def pct_text(values: pd.Series | np.ndarray, digits: int = 1) -> list[str]:
    """Fractions as percent strings with ``digits`` decimals (empty for NaN)."""
    return ["" if v is None or not np.isfinite(v) else f"{100 * v:.{digits}f}" for v in values]


def eer_with_ci(table: pd.DataFrame, eer: str = "eer") -> list[str]:
    """EER and its 95 % interval in percent per row: ``"12.5 (6.8–20.0)"``.

    Args:
        table: Rows with ``eer`` (or the column named by ``eer``), ``eer_ci_low`` and
            ``eer_ci_high``.
        eer: Column of the point estimate.

    Returns:
        One string per row (the interval is left out where it is unknown).
    """
    mid = pct_text(table[eer])
    lo, hi = pct_text(table["eer_ci_low"]), pct_text(table["eer_ci_high"])
    return [m if not (a and b) else f"{m} ({a}–{b})" for m, a, b in zip(mid, lo, hi, strict=True)]


def for_people(
    df: pd.DataFrame, percent: Sequence[str] = (), rename: Mapping[str, str] | None = None,
    index: bool = False,
) -> str:  # fmt: skip
    """A table as Markdown for the book: percent with one decimal, short headers.

    Notebook: notebooks/04_generalization.py

    Args:
        df: The table (flat column names).
        percent: Columns holding fractions, shown as percent with one decimal.
        rename: Old -> new (short) column names.
        index: Show the index as the first column.

    Returns:
        A Markdown (GFM) table.
    """
    out = df.copy()
    for c in percent:
        out[c] = pct_text(out[c])
    return out.rename(columns=dict(rename or {})).to_markdown(index=index, disable_numparse=True)


def overview_for_people(overview: pd.DataFrame) -> str:
    """:func:`gpwave.train.runs_overview` as a short Markdown table.

    Notebook: notebooks/04_generalization.py

    Args:
        overview: One row per run and seed.

    Returns:
        Markdown: run, seed, training frames, steps, seconds, best validation EER in %,
        converged (yes/no); the run's name says its model and feature.
    """
    df = overview.drop(columns=["reason", "epochs", "model", "feature"], errors="ignore").copy()
    df["converged"] = df["converged"].map({True: "yes", False: "**no**"})
    names = {"train_frames": "frames", "train_seconds": "seconds", "best_val_eer": "val. EER %"}
    return for_people(df, ["best_val_eer"], names)
