"""File-level detection: per-window fake scores and a verdict for each audio file.

``gpwave detect`` calls :func:`detect_files`. Each file is read in blocks and resampled
as a stream (soxr's ``ResampleStream``), so memory is bounded by a constant, not by the
file's length; each 1 s window (the detector's frame) is scored as soon as it is
complete. Windows without speech energy are not evidence either way
(:func:`scorable_windows`): the file's score is the mean fake probability of the other
windows, so appending silence or near-silent padding cannot move a verdict. A file
that cannot be used gets its error in its :class:`DetectionReport` instead of stopping
the others.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
from tqdm.auto import tqdm

from gpwave import hub
from gpwave.config import resolve_device
from gpwave.constants import SILENCE_FLOOR_DBFS, SILENCE_RELATIVE_DB
from gpwave.errors import AudioError, AudioWarning
from gpwave.evaluate import score_waveforms
from gpwave.report import jsonable

#: Files with more windows than this get their own progress bar in :func:`detect_files`.
LONG_FILE_WINDOWS = 256
#: Windows decoded, resampled and scored at a time (memory: about this many windows).
BLOCK_WINDOWS = 64
#: What a report says of a file none of whose windows is scorable.
NO_VERDICT = "no verdict: no window with speech energy"


# --- the silence rule ------------------------------------------------------------------
def window_dbfs(frames: np.ndarray) -> np.ndarray:
    """RMS level of each window in dB relative to full scale: ``20 * log10(rms)``.

    Args:
        frames: Float waveform windows ``(n, N)`` at the detector's rate (full scale 1.0).

    Returns:
        float64 levels ``(n,)``; ``-inf`` for an all-zero window.
    """
    x = np.asarray(frames, dtype=np.float64)
    rms = np.sqrt(np.mean(x * x, axis=1)) if x.size else np.zeros(len(x))
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(rms)


def scorable_levels(levels_dbfs: np.ndarray) -> np.ndarray:
    """The silence rule on window levels (see :func:`scorable_windows`).

    Args:
        levels_dbfs: Window levels from :func:`window_dbfs` (``-inf`` allowed).

    Returns:
        Boolean mask, True where a window is scorable (not silent).
    """
    levels = np.asarray(levels_dbfs, dtype=np.float64)
    if levels.size == 0:
        return np.zeros(0, dtype=bool)
    loudest = levels.max()
    return (levels >= SILENCE_FLOOR_DBFS) & (levels >= loudest - SILENCE_RELATIVE_DB)


def scorable_windows(frames: np.ndarray) -> np.ndarray:
    """Which windows of one file carry speech energy: the silence rule of ``detect``.

    The rule, exactly: let ``rms`` be the root mean square of a window's float waveform
    at the detector's rate (computed in float64) and ``level = 20 * log10(rms)`` its
    level in dBFS (``-inf`` for an all-zero window). A window is *silent* when
    ``level < SILENCE_FLOOR_DBFS`` (-70 dBFS) or ``level < loudest - SILENCE_RELATIVE_DB``
    (more than 40 dB below the loudest window of the same file); every other window is
    scorable. Silent windows are not evidence either way: a file's score is the mean
    fake probability of its scorable windows, and a file without one gets no verdict.
    The browser page mirrors this function; both read the constants from
    :mod:`gpwave.constants`.

    Args:
        frames: All windows ``(n, N)`` of one file, float, full scale 1.0.

    Returns:
        Boolean mask ``(n,)``, True for scorable windows.

    Example:
        >>> import numpy as np
        >>> loud, quiet = np.full(4, 0.1), np.full(4, 1e-4)  # -20 and -80 dBFS
        >>> scorable_windows(np.stack([loud, quiet, np.zeros(4)])).tolist()
        [True, False, False]
    """
    return scorable_levels(window_dbfs(frames))


# --- reports ---------------------------------------------------------------------------
@dataclass
class DetectionReport:
    """Per-second fake scores and the verdict for one file.

    Attributes:
        file: The audio file.
        scores: Fake probability of each non-overlapping window; None for a silent one
            (see :func:`scorable_windows`).
        score: Mean of the scorable windows' scores (the file's score; NaN if none).
        verdict: ``fake`` if ``score >= threshold``, else ``real``; None when no window
            is scorable (:data:`NO_VERDICT`); ``error`` on failure.
        threshold: The decision threshold.
        seconds: Seconds of audio scored (every window, silent ones included).
        n_silent: Windows left out of the score as silent.
        error: Why the file could not be scored (empty when it could).
        warning: Why the result may mislead or covers only part of the file (truncated,
            low bit depth; else empty).
    """

    file: str
    scores: list[float | None] = field(default_factory=list)
    score: float = float("nan")
    verdict: str | None = "error"
    threshold: float = 0.5
    seconds: float = 0.0
    n_silent: int = 0
    error: str = ""
    warning: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for strict JSON (a missing score is None, never NaN)."""
        return jsonable(asdict(self))

    def __str__(self) -> str:
        if self.error:
            return f"{self.file}: error: {self.error}"
        per = " ".join("--" if s is None else f"{s:.2f}" for s in self.scores)
        silent = f"; {self.n_silent} silent window(s) left out" if self.n_silent else ""
        note = f" [warning: {self.warning}]" if self.warning else ""
        if self.verdict is None:
            return f"{self.file}: {NO_VERDICT} ({self.n_silent} silent window(s)){note}"
        return (
            f"{self.file}: {self.verdict} (score {self.score:.3f}{silent}; per window: {per}){note}"
        )


# --- reading and scoring ---------------------------------------------------------------
def stream_windows(
    path: str | Path, sample_rate: int, n: int, info: Any = None, block_windows: int = BLOCK_WINDOWS
) -> Iterator[np.ndarray]:
    """Non-overlapping windows of a file, decoded and resampled block by block.

    The same samples as ``frame_audio(load_audio(path, sample_rate), n)``
    (:mod:`gpwave.data`): stereo is averaged, a higher rate resampled with soxr (HQ,
    as a stream), the incomplete tail dropped; memory stays at about ``block_windows``
    windows however long the file.

    Args:
        path: The audio file.
        sample_rate: The detector's rate in Hz (a lower file rate is refused).
        n: Samples per window.
        info: The file's ``soundfile`` info if already read (None: read it here).
        block_windows: Windows per block.

    Yields:
        float32 arrays ``(k, n)`` of consecutive windows.

    Raises:
        AudioError: Undecodable, a rate below ``sample_rate``, or NaN/inf samples.
    """
    from gpwave.data import _info

    path = Path(path)
    info = info if info is not None else _info(path)
    rate = info.samplerate
    if rate < sample_rate:
        raise AudioError(
            path, f"sample rate {rate} Hz is below {sample_rate} Hz; upsampling is refused"
        )
    stream = (
        soxr.ResampleStream(rate, sample_rate, 1, quality="HQ") if rate != sample_rate else None
    )
    block = max(1, math.ceil(block_windows * n * rate / sample_rate))
    rest = np.zeros(0, dtype=np.float32)
    with _open(path) as fh:
        while True:
            x, last = _read_block(fh, path, block)
            if stream is not None:
                x = stream.resample_chunk(x, last=last).astype(np.float32, copy=False)
            rest = np.concatenate([rest, x])
            k = len(rest) // n
            if k:
                yield rest[: k * n].reshape(k, n)
                rest = rest[k * n :].copy()
            if last:
                return


def _open(path: Path) -> sf.SoundFile:
    try:
        return sf.SoundFile(str(path))
    except Exception as err:  # libsndfile raises RuntimeError/LibsndfileError
        raise AudioError(path, f"cannot be decoded as audio ({err})") from err


def _read_block(fh: sf.SoundFile, path: Path, block: int) -> tuple[np.ndarray, bool]:
    """One block, mono float32, checked for NaN/inf; and whether it is the last."""
    try:
        x = fh.read(block, dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioError(path, f"cannot be decoded as audio ({err})") from err
    x = x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
    if not np.isfinite(x).all():
        raise AudioError(path, "contains NaN or infinite samples")
    return np.ascontiguousarray(x), len(x) < block


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
        threshold: Fake if the mean score of the scorable windows is at least this.
        device: Where to run (default: CUDA if available).
        progress: Progress bar over files, and over the windows of each long file.

    Returns:
        One :class:`DetectionReport` per file; a file that cannot be used gets its
        ``error`` set instead of stopping the others, one used only in part (e.g.
        truncated) its ``warning``.
    """
    if not (isinstance(threshold, int | float) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold={threshold!r}: expected a number in [0, 1]")
    device = resolve_device(device)
    det = hub.resolve(checkpoint, device)
    bar = tqdm(files, desc="detect", unit="file", disable=not progress)
    return [_detect_one(det, f, threshold, device, progress) for f in bar]


def _detect_one(
    det: Any, path: str | Path, threshold: float, device: str, progress: bool
) -> DetectionReport:
    """Score one file for :func:`detect_files` (errors and warnings go into the report)."""
    from gpwave.data import _info, _resampled_length

    rate, n = det.feature_config.sample_rate, det.n_samples
    rep = DetectionReport(file=str(path), threshold=threshold)
    scores, levels = [], []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AudioWarning)
            info = _info(Path(path))
        expected = _resampled_length(info.frames, info.samplerate, rate) // n
        bar = tqdm(
            total=expected, desc=Path(path).name, unit="window", leave=False,
            disable=not (progress and expected > LONG_FILE_WINDOWS),
        )  # fmt: skip
        with bar:
            for frames in stream_windows(path, rate, n, info=info):
                levels.append(window_dbfs(frames))
                scores.append(score_waveforms(det, frames, device=device, kind="probability"))
                bar.update(len(frames))
        if not scores:
            raise AudioError(path, f"shorter than one {n / rate:g} s window")
    except AudioError as err:
        rep.error = str(err)
        return rep
    rep.warning = "; ".join(str(w.message) for w in caught if w.category is AudioWarning)
    _verdict(rep, np.concatenate(scores), np.concatenate(levels), n / rate)
    return rep


def _verdict(rep: DetectionReport, scores: np.ndarray, levels: np.ndarray, seconds: float) -> None:
    """Fill a report's scores, score and verdict by the silence rule."""
    ok = scorable_levels(levels)
    rep.scores = [float(s) if k else None for s, k in zip(scores, ok, strict=True)]
    rep.n_silent = int((~ok).sum())
    rep.seconds = len(scores) * seconds
    if not ok.any():
        rep.verdict = None
        return
    rep.score = float(scores[ok].mean())
    rep.verdict = "fake" if rep.score >= rep.threshold else "real"
