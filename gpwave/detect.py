"""File-level detection: per-window fake scores and a verdict for each audio file.

``gpwave detect`` calls :func:`detect_files`; each file gets a :class:`DetectionReport`
(an unusable file gets its error instead of stopping the others).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from gpwave.config import resolve_device
from gpwave.errors import AudioError, AudioWarning
from gpwave.evaluate import _loaded, jsonable, score_waveforms

#: Files with more windows than this get their own progress bar in :func:`detect_files`.
LONG_FILE_WINDOWS = 256


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
    det = _loaded(checkpoint, device)
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
