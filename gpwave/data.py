"""Folders -> utterances -> fixed-length frames -> splits; protocol readers.

A data root holds one folder per source, named ``<LETTER>_<name>`` as in the reference
implementation: ``A_ljspeech`` is real (label 0), every other letter is a generator
(label 1) called ``<name>``. Each file is cut into non-overlapping windows of ``seconds``
at ``sample_rate`` (never padded) and the split is a function of the utterance id only.
The frame store (:func:`gpwave.store.prepare_store`: every file decoded once into
memory-mapped shards) lives in :mod:`gpwave.store`. Protocol readers of other corpora
are here too.

Silence: all-zero frames are kept (they are valid audio and cannot produce NaN here) and
flagged in the index column ``silent`` so a caller can drop them. Files with NaN or
infinite samples are refused (reported in ``store.skipped``).

Notebook: notebooks/02_data.py
"""

from __future__ import annotations

import errno
import hashlib
import logging
import math
import os
import re
import stat
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import soxr

from gpwave.constants import REAL_LETTER, SAMPLE_RATE, StoreDtype
from gpwave.errors import AudioError, AudioWarning, DataError

log = logging.getLogger(__name__)

FOLDER_RE = re.compile(r"^([A-Z])_(.+)$")
LJ_RE = re.compile(r"^(LJ\d{3}-\d{4})")
SUFFIX_RE = re.compile(r"(?:_\d+s)?(?:_gen|_generated)?$")
AUDIO_SUFFIXES = (".wav", ".flac")
INDEX_COLUMNS = ["row", "file", "offset", "label", "generator", "folder", "utterance", "split"]


# --- sources ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """One letter-prefixed folder of a data root.

    Args:
        letter: The prefix letter ("A" is real).
        name: The generator name after the prefix ("ljspeech", "melgan", ...).
        path: The folder.
        label: 0 for the real folder, 1 for a generator.
    """

    letter: str
    name: str
    path: Path
    label: int

    @property
    def folder(self) -> str:
        """The folder name, e.g. ``"B_melgan"``."""
        return f"{self.letter}_{self.name}"

    def files(self) -> list[Path]:
        """The audio files of this folder (``.wav``/``.flac``), sorted by name.

        The folder is listed once per :class:`Source` (one directory read, no stat per
        file where the file system reports entry types): discovering, keying and
        decoding a folder of a cluster file system then cost one listing, not three.

        Returns:
            Paths of the files directly inside the folder.
        """
        cached = self.__dict__.get("_files")
        if cached is None:
            with os.scandir(self.path) as entries:
                cached = sorted(
                    Path(e.path)
                    for e in entries
                    if Path(e.name).suffix.lower() in AUDIO_SUFFIXES and e.is_file()
                )
            object.__setattr__(self, "_files", cached)
        return list(cached)


def _warn(msg: str) -> None:
    log.warning(msg)
    warnings.warn(msg, UserWarning, stacklevel=3)


def _check_root(root: str | Path) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: data root does not exist or is not a folder")
    return root


def _matches(source: Source, names: Sequence[str]) -> bool:
    return source.name in names or source.folder in names


def discover_sources(root: str | Path, only_use: Sequence[str] | None = None) -> list[Source]:
    """Find the letter-prefixed source folders of a data root, like the reference.

    Folders without a ``<LETTER>_`` prefix and folders without audio files are ignored
    with a warning; if nothing valid is left, that is an error.

    Args:
        root: The data root.
        only_use: Generator names ("melgan") or folder names ("B_melgan") to keep;
            None keeps all.

    Returns:
        The sources, sorted by folder name.

    Raises:
        DataError: Missing root, an unknown name in ``only_use``, or no usable folder.
    """
    root = _check_root(root)
    sources = []
    for p in sorted(root.iterdir()):
        if not p.is_dir():
            continue
        m = FOLDER_RE.match(p.name)
        if m is None:
            _warn(f"{p}: ignored, folder name lacks the '<LETTER>_<name>' prefix")
            continue
        src = Source(m[1], m[2], p, 0 if m[1] == REAL_LETTER else 1)
        if not src.files():
            _warn(f"{p}: ignored, folder holds no .wav/.flac files")
            continue
        sources.append(src)
    if only_use is not None:
        names = [only_use] if isinstance(only_use, str) else list(only_use)
        known = {s.name for s in sources} | {s.folder for s in sources}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DataError(f"{root}: only_use names {unknown} match no folder with audio")
        sources = [s for s in sources if _matches(s, names)]
    if not sources:
        raise DataError(f"{root}: no letter-prefixed folder with audio files (e.g. A_ljspeech)")
    return sources


def utterance_id(path: str | Path) -> str:
    """The utterance id of a file: ``"LJ016-0433_1s_gen.wav"`` -> ``"LJ016-0433"``.

    Args:
        path: A file path or name.

    Returns:
        The LJSpeech id when the name starts with one, else the stem without the
        ``_1s``/``_gen``/``_generated`` suffixes.
    """
    stem = Path(path).stem
    m = LJ_RE.match(stem)
    return m[1] if m else SUFFIX_RE.sub("", stem)


# --- audio --------------------------------------------------------------------------------
def _stat(path: Path) -> os.stat_result:
    """``os.stat`` of an input file, or an :class:`AudioError` that says what is wrong."""
    try:
        st = path.stat()
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise AudioError(path, "symbolic link loop (the link points back to itself)") from None
        if path.is_symlink():
            raise AudioError(path, f"broken symbolic link (to {os.readlink(path)})") from None
        if err.errno == errno.EACCES:
            raise AudioError(path, "permission denied (a folder on the path)") from None
        raise AudioError(path, "no such file") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(path, "is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        raise AudioError(path, f"is {kind}, not a regular file; skipped without opening it")
    return st


def _info(path: Path) -> sf._SoundFileInfo:
    _stat(path)
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied (the file is not readable)")
    try:
        info = sf.info(str(path))
    except Exception as err:  # libsndfile raises RuntimeError/LibsndfileError
        reason = str(err).split(":")[-1].strip().rstrip(".") or type(err).__name__
        raise AudioError(path, f"cannot be decoded as audio ({reason})") from err
    if info.frames <= 0:
        raise AudioError(path, "holds no samples (empty or truncated header)")
    _warn_if_truncated(path, info)
    _warn_if_low_bit_depth(path, info)
    return info


#: Sample formats of 8 bits or fewer: quantisation noise at about -48 dBFS, which the
#: released detectors read as a vocoder's trace (real speech scores "fake").
LOW_BIT_DEPTH = {"PCM_S8": "8-bit PCM", "PCM_U8": "8-bit unsigned PCM (u8)",
                 "ULAW": "8-bit u-law", "ALAW": "8-bit A-law"}  # fmt: skip


def _warn_if_low_bit_depth(path: Path, info: sf._SoundFileInfo) -> None:
    """Warn when the file's samples have 8 bits or fewer (scores are not trustworthy)."""
    depth = LOW_BIT_DEPTH.get(info.subtype)
    if depth:
        warnings.warn(
            f"{path}: low bit depth: {depth} samples; its quantisation noise can make real "
            "speech score as fake (detectors were trained on 16-bit audio)",
            AudioWarning,
            stacklevel=3,
        )


def _warn_if_truncated(path: Path, info: sf._SoundFileInfo) -> None:
    """Warn when libsndfile reports fewer audio bytes than the header declares."""
    m = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", info.extra_info, re.M)
    if m and int(m.group(2)) < int(m.group(1)):
        warnings.warn(
            f"{path}: truncated: the header declares {int(m.group(1))} bytes of audio, the file "
            f"holds {int(m.group(2))}; only the first {info.duration:.2f} s are used",
            AudioWarning,
            stacklevel=3,
        )


def _resampled_length(n: int, rate: int, sample_rate: int) -> int:
    return n if rate == sample_rate else math.ceil(n * sample_rate / rate)


def load_audio(
    path: str | Path, sample_rate: int = SAMPLE_RATE, upsample: bool = False
) -> np.ndarray:
    """Decode an audio file to mono float32 at ``sample_rate``.

    Stereo is averaged to mono; a higher rate is downsampled with soxr (HQ); a lower
    rate is refused, since upsampling would invent a spectrum the detector must not see,
    unless ``upsample`` (a training pool whose real and fake files of one tree share
    their rate: both classes are resampled alike, and neither carries content above the
    old Nyquist frequency).

    Args:
        path: The audio file (any format libsndfile reads: 8/16/24-bit PCM, float, FLAC).
        sample_rate: The target rate in Hz.
        upsample: Resample a lower rate up instead of refusing it.

    Returns:
        The samples, shape (N,), float32.

    Raises:
        AudioError: Undecodable, empty, NaN/inf samples, or a rate below ``sample_rate``;
            the message names the file.
    """
    path = Path(path)
    info = _info(path)
    if info.samplerate < sample_rate and not upsample:
        raise AudioError(
            path,
            f"sample rate {info.samplerate} Hz is below {sample_rate} Hz; upsampling is refused",
        )
    try:
        x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioError(path, f"cannot be decoded as audio ({err})") from err
    if x.shape[0] == 0:
        raise AudioError(path, "holds no samples (empty or truncated)")
    x = x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
    if not np.isfinite(x).all():
        raise AudioError(path, "contains NaN or infinite samples")
    if rate != sample_rate:
        x = soxr.resample(x, rate, sample_rate, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(x)


def frame_audio(x: np.ndarray, frame_length: int) -> np.ndarray:
    """Cut a signal into non-overlapping frames; the incomplete tail is dropped, never padded.

    Args:
        x: Samples, shape (N,).
        frame_length: Samples per frame.

    Returns:
        Frames, shape (N // frame_length, frame_length), a view of ``x`` where possible.
    """
    if frame_length <= 0:
        raise ValueError(f"frame_length must be positive, got {frame_length}")
    k = len(x) // frame_length
    return x[: k * frame_length].reshape(k, frame_length)


# --- configuration and splits -------------------------------------------------------------
@dataclass
class DataConfig:
    """What to read and how to cut and split it.

    Args:
        root: The data root (letter-prefixed folders).
        sample_rate: Target rate in Hz.
        seconds: Frame length in seconds.
        only_use: Generator or folder names to use (None: all).
        only_test_folders: Folders (names or folder names) whose frames all go to test;
            their utterances are pinned to test in every folder.
        split: Fractions of utterances for train, val, test.
        seed: Seed of the utterance split.
        dtype: Sample format of the store, "int16" or "float16".
        upsample: Resample files below ``sample_rate`` up (a training pool's trees,
            :mod:`gpwave.poolstore`) instead of skipping them.
    """

    root: str | Path
    sample_rate: int = SAMPLE_RATE
    seconds: float = 1.0
    only_use: Sequence[str] | None = None
    only_test_folders: Sequence[str] = ()
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    dtype: StoreDtype = "int16"
    upsample: bool = False

    @property
    def frame_length(self) -> int:
        """Samples per frame."""
        return int(round(self.seconds * self.sample_rate))

    def to_dict(self) -> dict:
        """JSON-friendly dict of the config (root resolved to an absolute string)."""
        d = asdict(self)
        d["root"] = str(Path(self.root).expanduser().resolve())
        d["only_use"] = None if self.only_use is None else list(self.only_use)
        d["only_test_folders"] = list(self.only_test_folders)
        d["split"] = list(self.split)
        if not self.upsample:  # stores prepared before the option keep their key
            del d["upsample"]
        return d


def split_of(utterance: str, split: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> str:
    """The split of an utterance: a seeded hash of its id only, so it is the same in every folder.

    Args:
        utterance: Utterance id, e.g. "LJ050-0029".
        split: Fractions for train, val, test (normalised to sum 1).
        seed: Seed.

    Returns:
        "train", "val" or "test".
    """
    digest = hashlib.sha256(f"{seed}:{utterance}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    total = float(sum(split))
    if split[0] < 0 or split[1] < 0 or split[2] < 0 or total <= 0:
        raise ValueError(f"split fractions must be non-negative with a positive sum: {split}")
    if u < split[0] / total:
        return "train"
    return "val" if u < (split[0] + split[1]) / total else "test"


def assign_splits(index: pd.DataFrame, cfg: DataConfig) -> pd.Series:
    """Splits for every row of an index: by utterance, test-only folders pinned to test.

    Args:
        index: A table with columns ``utterance``, ``folder`` and ``generator``.
        cfg: The data config (split fractions, seed, ``only_test_folders``).

    Returns:
        A Series of "train"/"val"/"test" aligned with ``index``.
    """
    names = list(cfg.only_test_folders)
    test_only = index["folder"].isin(names) | index["generator"].isin(names)
    pinned = set(index.loc[test_only, "utterance"])
    utts = index["utterance"].unique()
    table = {u: "test" if u in pinned else split_of(u, cfg.split, cfg.seed) for u in utts}
    return index["utterance"].map(table).astype(object)


# --- planning a folder: headers only ------------------------------------------------------
def _plan_shard(
    src: Source, cfg: DataConfig
) -> tuple[list[tuple[Path, int]], list[dict[str, str]]]:
    """Read headers only: frames per file, and the files refused before decoding."""
    plan, skipped = [], []
    seconds = cfg.frame_length / cfg.sample_rate
    for f in src.files():
        try:
            info = _info(f)
            if info.samplerate < cfg.sample_rate and not cfg.upsample:
                raise AudioError(
                    f,
                    f"sample rate {info.samplerate} Hz is below {cfg.sample_rate} Hz; "
                    "upsampling is refused",
                )
            n = _resampled_length(info.frames, info.samplerate, cfg.sample_rate)
            if n < cfg.frame_length:
                raise AudioError(
                    f, f"shorter than one window ({info.duration:.3f} s < {seconds:g} s)"
                )
            plan.append((f, n // cfg.frame_length))
        except AudioError as err:
            skipped.append({"file": str(f), "problem": err.problem})
    return plan, skipped


# --- the frame store lives in gpwave.store; its names stay reachable from here --------------
# --- summaries and other corpora ----------------------------------------------------------
def summarize(
    root: str | Path, sample_rate: int = SAMPLE_RATE, seconds: float = 1.0
) -> pd.DataFrame:
    """One row per source folder: how much audio and how many frames it yields.

    Reads headers only, and the samples of floating-point files (which may hold NaN or
    inf). Files that cannot be used are not counted (``skipped`` column).

    Notebook: notebooks/02_data.py

    Args:
        root: The data root.
        sample_rate: Target rate in Hz.
        seconds: Frame length in seconds.

    Returns:
        DataFrame with columns folder, generator, label, files, seconds, frames, skipped.
    """
    cfg = DataConfig(root=root, sample_rate=sample_rate, seconds=seconds)
    rows = []
    for src in discover_sources(root):
        plan, skipped = _plan_shard(src, cfg)
        bad = [f for f, _ in plan if not _finite(f)]
        plan = [(f, n) for f, n in plan if f not in bad]
        secs = sum(sf.info(str(f)).duration for f, _ in plan)
        rows.append(
            {
                "folder": src.folder,
                "generator": src.name,
                "label": src.label,
                "files": len(plan),
                "seconds": round(secs, 3),
                "frames": sum(n for _, n in plan),
                "skipped": len(skipped) + len(bad),
            }
        )
    return pd.DataFrame(rows)


def _finite(path: Path, block: int = 1 << 20) -> bool:
    """False if a floating-point file holds NaN or infinite samples (read block by block).

    Integer formats (PCM, FLAC) cannot hold them and are not read.
    """
    if sf.info(str(path)).subtype not in ("FLOAT", "DOUBLE"):
        return True
    return all(np.isfinite(b).all() for b in sf.blocks(str(path), blocksize=block))


def utterance_rows(root: str | Path, utterance: str) -> list[dict]:
    """Every file of one utterance across the source folders, for a table of players.

    Notebook: notebooks/02_data.py

    Args:
        root: The data root.
        utterance: Utterance id, e.g. "LJ050-0029".

    Returns:
        One dict per file, real first: folder, generator, kind ("real"/"fake"),
        seconds, audio (the file's path, which ``widgets.audio_table`` renders as a player).

    Raises:
        DataError: No folder holds the utterance.
    """
    rows = []
    for src in discover_sources(root):
        for f in src.files():
            if utterance_id(f) == utterance:
                rows.append(
                    {
                        "folder": src.folder,
                        "generator": src.name,
                        "kind": "real" if src.label == 0 else "fake",
                        "seconds": round(float(sf.info(str(f)).duration), 3),
                        "audio": f,
                    }
                )
    if not rows:
        raise DataError(f"{root}: no file of utterance {utterance!r}")
    return sorted(rows, key=lambda r: (r["kind"] != "real", r["folder"]))


def file_table(root: str | Path, utterance_pattern: str | None = None) -> pd.DataFrame:
    """One row per audio file of a letter-prefixed data root, to score file by file.

    Utterance ids group a file with its counterparts in the other folders, so a bootstrap
    by utterance (:func:`gpwave.metrics.eer_ci` with ``groups``) resamples whole
    utterances. By default they are :func:`utterance_id` (LJSpeech ids); sets whose files
    carry only a shared number (speakers-tts-mini: ``ms_gt_1.wav``, ``ms_mg_1.wav``) pass
    a regex whose first group is that number: the registry's ``utterance_pattern``.

    Args:
        root: The data root, e.g. ``$GPWAVE_DATA/speakers-tts-mini/vctk``.
        utterance_pattern: A regex searched in each file's stem; its first group is the
            utterance (None: :func:`utterance_id`).

    Returns:
        DataFrame with columns file (path), folder, generator, label (0 real, 1 fake),
        utterance; sorted by folder and file name.

    Raises:
        DataError: No usable folder, or a file name the pattern does not match.
    """
    rows = []
    for src in discover_sources(root):
        for f in src.files():
            utt = utterance_id(f)
            if utterance_pattern is not None:
                m = re.search(utterance_pattern, f.stem)
                if m is None:
                    raise DataError(
                        f"{f}: name does not match utterance_pattern {utterance_pattern!r}"
                    )
                utt = m[1]
            rows.append(
                {
                    "file": str(f),
                    "folder": src.folder,
                    "generator": src.name,
                    "label": src.label,
                    "utterance": utt,
                }
            )
    return pd.DataFrame(rows, columns=["file", "folder", "generator", "label", "utterance"])


def _protocol_lines(path: Path) -> Iterable[tuple[int, list[str]]]:
    if not path.is_file():
        raise DataError(f"{path}: protocol file does not exist")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                yield lineno, line.split()


def read_asvspoof2019_la(
    protocol: str | Path, audio_dir: str | Path | None = None, ext: str = ".flac"
) -> pd.DataFrame:
    """Read an ASVspoof 2019 LA CM protocol (``LA_0079 LA_T_1138215 - - bonafide``).

    Args:
        protocol: The protocol file (e.g. ``ASVspoof2019.LA.cm.train.trn.txt``).
        audio_dir: Folder of the audio files (default: the protocol's folder).
        ext: Extension of the audio files.

    Returns:
        DataFrame with columns file, speaker, utterance, system ("-" for bona fide, else
        "A01".."A19"), label (0 bona fide, 1 spoof), key.

    Raises:
        DataError: Missing file, or a line without 5 fields or with an unknown key,
            naming the file and line number.
    """
    protocol = Path(protocol)
    audio_dir = Path(audio_dir) if audio_dir is not None else protocol.parent
    rows = []
    for lineno, parts in _protocol_lines(protocol):
        if len(parts) != 5:
            raise DataError(f"{protocol}:{lineno}: expected 5 fields, got {len(parts)}")
        speaker, utt, _, system, key = parts
        if key not in ("bonafide", "spoof"):
            raise DataError(f"{protocol}:{lineno}: key {key!r} is neither bonafide nor spoof")
        rows.append(
            {
                "file": str(audio_dir / f"{utt}{ext}"),
                "speaker": speaker,
                "utterance": utt,
                "system": system,
                "label": int(key == "spoof"),
                "key": key,
            }
        )
    if not rows:
        raise DataError(f"{protocol}: protocol holds no entries")
    return pd.DataFrame(rows)


def read_in_the_wild(meta: str | Path, audio_dir: str | Path | None = None) -> pd.DataFrame:
    """Read In-the-Wild's ``meta.csv`` (``file,speaker,label`` with bona-fide/spoof).

    Args:
        meta: The ``meta.csv`` file.
        audio_dir: Folder of the clips (default: the folder of ``meta.csv``).

    Returns:
        DataFrame with columns file, speaker, label (0 bona fide, 1 spoof), key.

    Raises:
        DataError: Missing file or columns, or an unknown label (file and line number).
    """
    meta = Path(meta)
    if not meta.is_file():
        raise DataError(f"{meta}: meta file does not exist")
    audio_dir = Path(audio_dir) if audio_dir is not None else meta.parent
    df = pd.read_csv(meta, dtype=str, keep_default_na=False)
    missing = {"file", "speaker", "label"} - set(df.columns)
    if missing:
        raise DataError(f"{meta}:1: missing column(s) {sorted(missing)} in the header")
    keys = df["label"].str.strip()
    bad = ~keys.isin(["bona-fide", "spoof"]) | (df["file"].str.strip() == "")
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise DataError(
            f"{meta}:{i + 2}: label {keys.iloc[i]!r} is neither bona-fide nor spoof "
            "or the file is empty"
        )
    return pd.DataFrame(
        {
            "file": [str(audio_dir / f.strip()) for f in df["file"]],
            "speaker": df["speaker"].str.strip(),
            "label": (keys == "spoof").astype(int),
            "key": keys,
        }
    )
