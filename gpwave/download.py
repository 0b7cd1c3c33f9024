"""Registries and downloads: the mini benchmark, LJSpeech, WaveFake, its extension, test sets.

Every file is verified against a checksum: the mini benchmark's md5s come from its
packaged manifest (``registry/wavefake_mini.tsv``), LJSpeech's sha256 is pinned in
``registry/datasets.json``, and Zenodo records (WaveFake, the extension) are read from
the record API at download time, which lists every file's md5. Downloads resume from a
``.part`` file with an HTTP Range request, are retried with exponential backoff within
a time budget, and a mismatching checksum is refused. ``GPWAVE_DATA_MIRROR`` (a folder
or an http(s) URL) replaces the upstream URLs: files then come from ``<mirror>/<file>``.
Archives are extracted safely (no absolute paths, no ``..``, no links leaving the target).

Where pooch fits and where not: :func:`pooch.retrieve` keeps verified files, hashes
(:func:`pooch.file_hash`) and moves new files into place atomically; the transfer is
:class:`ResumableDownloader` (pooch's downloaders restart interrupted transfers from
byte 0, see there). Unpacking stays :func:`safe_extract`: ``pooch.Untar``/``Unzip``
extract without refusing links that leave the target folder. Zenodo records stay
:func:`zenodo_files`: pooch's ``doi:`` URLs resolve through doi.org and zenodo.org only,
while gpwave caches the record and lets ``GPWAVE_ZENODO_API`` (tests, mirrors) replace it.
The paper's released detector checkpoints (``registry/reference_models.tsv``: upstream URLs
pinned to one commit, md5s) are fetched the same way into ``$GPWAVE_DATA/models``, with
their own mirror variable ``GPWAVE_MODELS_MIRROR``. speakers-tts-mini
(``registry/speakers_tts_mini.tsv``: HiFi-GAN's demo samples, unseen VCTK speakers and
Tacotron 2 TTS, pinned to one commit) goes to ``$GPWAVE_DATA/speakers-tts-mini`` with
``GPWAVE_SPEAKERS_MIRROR``; the registry marks it ``test_only`` (:func:`only_for_testing`),
and training refuses it. speakers-train (``registry/speakers_train.tsv``: vocoder demo
samples of seven GitHub repositories, each pinned to a commit; about 70 speakers, 31
vocoder folders) goes to ``$GPWAVE_DATA/speakers-train`` with
``GPWAVE_SPEAKERS_TRAIN_MIRROR``; it is for training and selection (:mod:`gpwave.pool`).

Notebook: notebooks/02_data.py
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import soundfile as sf
from tqdm.auto import tqdm

from gpwave.constants import DatasetName, check_option
from gpwave.errors import ChecksumError, DataError

log = logging.getLogger(__name__)

#: Seconds before the first retry; doubled after every failed attempt.
BACKOFF = 1.0
#: Attempts per file before giving up.
RETRIES = 5
#: Socket timeout of one request, seconds.
TIMEOUT = 60.0
#: No new attempt on a file starts later than this many seconds after its first one, so
#: an unreachable source costs at most about ``RETRY_SECONDS + TIMEOUT``; and
#: :func:`fetch_manifest` stops at the first unreachable file instead of trying the rest.
RETRY_SECONDS = 30.0
CHUNK = 1 << 20
ZENODO_API = "https://zenodo.org/api/records"

#: The letter-prefixed layout of the reference README: folder -> (source, candidate names).
LAYOUT: dict[str, tuple[str, tuple[str, ...]]] = {
    "B_melgan": ("wavefake", ("ljspeech_melgan",)),
    "C_hifigan": ("wavefake", ("ljspeech_hifiGAN", "ljspeech_hifigan")),
    "D_mbmelgan": ("wavefake", ("ljspeech_multi_band_melgan",)),
    "E_fbmelgan": ("wavefake", ("ljspeech_full_band_melgan",)),
    "F_waveglow": ("wavefake", ("ljspeech_waveglow",)),
    "G_pwg": ("wavefake", ("ljspeech_parallel_wavegan",)),
    "H_lmelgan": ("wavefake", ("ljspeech_melgan_large",)),
    "I_avocodo": ("extension", ("ljspeech_avocodo", "avocodo")),
    "J_bigvgan": ("extension", ("ljspeech_bigvgan", "bigvgan")),
    "K_lbigvgan": (
        "extension",
        ("ljspeech_bigvgan_large", "ljspeech_lbigvgan", "ljspeech_large_bigvgan", "lbigvgan"),
    ),
    "L_conformer": (
        "wavefake",
        ("common_voices_prompts_from_conformer_fastspeech2_pwg_ljspeech",),
    ),
    "M_jsutmbmelgan": ("wavefake", ("jsut_multi_band_melgan",)),
    "N_jsutpwg": ("wavefake", ("jsut_parallel_wavegan",)),
}


class _Retryable(Exception):
    """A transient download failure worth another attempt.

    Args:
        message: What failed.
        unreachable: No connection could be made (as opposed to a dropped transfer).
    """

    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


class UnreachableError(DataError):
    """A source that could not be connected to in any attempt (host down, no network)."""


def default_data_dir() -> Path:
    """Where data lives: ``$GPWAVE_DATA``, else ``./data``.

    Returns:
        The data folder (not created).
    """
    return Path(os.environ.get("GPWAVE_DATA") or Path.cwd() / "data").expanduser()


def registry() -> dict:
    """The packaged registry of the data sets (manifests, URLs, pinned checksums, Zenodo ids).

    Returns:
        Dataset name -> entry, from ``gpwave/registry/datasets.json``.
    """
    text = resources.files("gpwave").joinpath("registry/datasets.json").read_text()
    return json.loads(text)


def _packaged(entry: dict) -> Any:
    """The packaged manifest file (a :mod:`importlib.resources` traversable) of an entry."""
    return resources.files("gpwave").joinpath(f"registry/{entry['manifest']}")


def manifest(name: DatasetName) -> pd.DataFrame:
    """The packaged manifest of a manifest-registered set (file, md5, source_url, ...).

    Args:
        name: A registry entry with a ``manifest`` ("mini", "models", "speakers").

    Returns:
        One row per file.

    Raises:
        DataError: A data set that is not fetched by a manifest.
    """
    entry = registry()[check_option(name, DatasetName, "name")]
    if "manifest" not in entry:
        source = f"Zenodo record {entry['zenodo']}" if "zenodo" in entry else entry.get("url")
        raise DataError(f"{name}: not a manifest data set (it comes from {source})")
    with resources.as_file(_packaged(entry)) as p:
        return read_manifest(p)


def mini_manifest() -> pd.DataFrame:
    """The packaged manifest of the mini benchmark (file, md5, source_url, conversion, ...).

    Returns:
        One row per file.
    """
    return manifest("mini")


def models_manifest() -> pd.DataFrame:
    """The packaged manifest of the paper's released checkpoints (file, md5, source_url, ...).

    Returns:
        One row per checkpoint, with its feature, source commit and licence.
    """
    return manifest("models")


def speakers_manifest() -> pd.DataFrame:
    """The packaged manifest of speakers-tts-mini (test only; ``vctk/`` and ``tts/`` trees).

    Returns:
        One row per file: file (``vctk/D_melgan/ms_mg_1.wav``), sample_rate, channels,
        seconds, subtype (PCM_16 or PCM_32), md5, and the source repository, path,
        commit and URL (jik876/hifi-gan-demo, pinned to one commit).
    """
    return manifest("speakers")


def only_for_testing(path: str | Path) -> str | None:
    """The test-only data set (registry ``test_only``) that holds ``path``, if any.

    A folder counts as that set if it, or a folder above it, has the set's folder name
    (``speakers-tts-mini``) or holds a ``MANIFEST.tsv`` identical to the set's manifest
    (a renamed copy).

    Args:
        path: A data folder or file (need not exist).

    Returns:
        The registry name ("speakers"), or None for a path outside every test-only set.
    """
    p = Path(path).expanduser().resolve()
    for name, entry in registry().items():
        if not entry.get("test_only"):
            continue
        packaged = _packaged(entry).read_bytes()
        for d in (p, *p.parents):
            copy = d / "MANIFEST.tsv"
            if d.name == entry["folder"] or (copy.is_file() and copy.read_bytes() == packaged):
                return name
    return None


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest TSV (columns at least ``file``, ``md5``, ``source_url``).

    Args:
        path: The TSV file.

    Returns:
        The manifest, empty strings for missing values.

    Raises:
        DataError: Missing file or columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: manifest does not exist")
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = {"file", "md5", "source_url"} - set(df.columns)
    if missing:
        raise DataError(f"{path}: manifest lacks column(s) {sorted(missing)}")
    return df


# --- checksums ----------------------------------------------------------------------------
def file_hash(path: str | Path, algorithm: str = "md5") -> str:
    """Hex digest of a file, read in chunks.

    Args:
        path: The file.
        algorithm: Any :mod:`hashlib` name ("md5", "sha256").

    Returns:
        The hex digest.
    """
    import pooch

    return pooch.file_hash(str(path), alg=algorithm)


def verify(path: str | Path, expected: str, algorithm: str = "md5", name: str = "") -> None:
    """Refuse a file whose checksum is not ``expected``.

    Args:
        path: The file.
        expected: The expected hex digest.
        algorithm: Hash algorithm.
        name: How to name the file in the message (default: its path).

    Raises:
        ChecksumError: Naming the file, the expected and the actual digest.
    """
    actual = file_hash(path, algorithm)
    if actual != expected.lower():
        raise ChecksumError(
            f"{name or path}: {algorithm} mismatch: expected {expected}, got {actual}"
        )


def _is_url(s: str) -> bool:
    return urllib.parse.urlparse(str(s)).scheme in ("http", "https")


def _ok(path: Path, expected: str | None, algorithm: str) -> bool:
    return path.is_file() and (expected is None or file_hash(path, algorithm) == expected.lower())


# --- one file -----------------------------------------------------------------------------
def _http_attempt(url: str, part: Path, progress: bool) -> None:
    """One GET into ``part``, resuming with a Range request when it already has bytes."""
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "gpwave"}
    if start:
        headers["Range"] = f"bytes={start}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT)
    except urllib.error.HTTPError as err:
        if err.code == 416:  # the part is already complete, or garbage: start over
            part.unlink(missing_ok=True)
            raise _Retryable(f"HTTP 416 for {url}") from err
        if err.code >= 500 or err.code in (408, 429):
            raise _Retryable(f"HTTP {err.code} for {url}") from err
        raise DataError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise _Retryable(f"{url}: {getattr(err, 'reason', err)}", unreachable=True) from err
    except http.client.HTTPException as err:
        raise _Retryable(f"{url}: {err!r}") from err
    with resp:
        if start and resp.status != 206:
            start = 0  # the server ignored Range: download from the beginning
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        mode = "ab" if start else "wb"
        bar = tqdm(
            total=total,
            initial=start,
            unit="B",
            unit_scale=True,
            leave=False,
            desc=part.name.removesuffix(".part"),
            disable=not progress,
        )
        try:
            with part.open(mode) as fh:
                for block in iter(lambda: resp.read(CHUNK), b""):
                    fh.write(block)
                    bar.update(len(block))
        except (OSError, http.client.HTTPException) as err:
            raise _Retryable(f"{url}: connection lost ({err!r})") from err
        finally:
            bar.close()
    if total is not None and part.stat().st_size < total:
        raise _Retryable(f"{url}: got {part.stat().st_size} of {total} bytes")


def _copy_attempt(src: Path, part: Path) -> None:
    if not src.is_file():
        raise DataError(f"{src}: not found in the mirror folder")
    shutil.copyfile(src, part)


def _attempts(source: str | Path, part: Path, progress: bool) -> None:
    """Fetch ``source`` into ``part`` with retries (see :func:`download_file`)."""
    start, unreachable = time.monotonic(), True
    for attempt in range(RETRIES):
        try:
            if _is_url(str(source)):
                _http_attempt(str(source), part, progress)
            else:
                _copy_attempt(Path(source), part)
            return
        except _Retryable as err:
            unreachable &= err.unreachable
            log.warning("attempt %d/%d failed: %s", attempt + 1, RETRIES, err)
            wait = BACKOFF * 2**attempt
            if attempt == RETRIES - 1 or time.monotonic() - start + wait > RETRY_SECONDS:
                kind = UnreachableError if unreachable else DataError
                raise kind(f"{source}: failed after {attempt + 1} attempts: {err}") from err
            time.sleep(wait)


class ResumableDownloader:
    """A pooch downloader that resumes from a stable ``.part`` file and retries.

    :func:`pooch.retrieve` hands every download a fresh temporary file and deletes it on
    failure, so pooch's own downloaders restart an interrupted 28 GB transfer from
    byte 0, and its retries do not distinguish a dead host from a dropped connection.
    This downloader keeps the bytes in ``<dest>.part`` (stable across processes),
    resumes it with an HTTP Range request, retries with backoff within
    :data:`RETRY_SECONDS`, copies from mirror folders, and finally moves the part onto
    pooch's temporary file; pooch then checks the hash and moves it into place
    atomically.

    Args:
        dest: The final file (its ``.part`` sits next to it).
        progress: Show a tqdm bar.
    """

    def __init__(self, dest: Path, progress: bool = True):
        self.part = dest.with_name(dest.name + ".part")
        self.progress = progress

    def __call__(self, url: str, output_file: str, pooch: object, check_only: bool = False) -> bool:
        """Fetch ``url`` into ``output_file`` (pooch's downloader protocol)."""
        if check_only:
            return _is_url(url) or Path(url).is_file()
        _attempts(url, self.part, self.progress)
        os.replace(self.part, output_file)
        return True


def download_file(
    source: str | Path,
    dest: str | Path,
    expected: str | None = None,
    algorithm: str = "md5",
    progress: bool = True,
) -> Path:
    """Fetch one file (URL or local path) to ``dest``, resuming, retrying and verifying.

    :func:`pooch.retrieve` does the bookkeeping (keep an existing ``dest`` whose
    checksum matches, hash the new file, move it into place atomically only if it
    verifies); :class:`ResumableDownloader` does the transfer: bytes go to
    ``dest.part`` first, an interrupted HTTP transfer resumes with a Range request,
    transient failures are retried :data:`RETRIES` times with exponential backoff from
    :data:`BACKOFF` seconds, within :data:`RETRY_SECONDS`.

    Args:
        source: An http(s) URL or a local file.
        dest: Where the file goes.
        expected: Expected hex digest (None: no check; use only where none is known).
        algorithm: Hash algorithm of ``expected``.
        progress: Show a tqdm progress bar.

    Returns:
        ``dest``.

    Raises:
        ChecksumError: The fetched file does not match ``expected`` (it is deleted).
        UnreachableError: No attempt could connect.
        DataError: Not found, or still failing after the retries.
    """
    import pooch

    dest = Path(dest)
    known = f"{algorithm}:{expected.lower()}" if expected else None
    logger = pooch.get_logger()
    level, _ = logger.level, logger.setLevel(logging.WARNING)  # no line per file
    try:
        pooch.retrieve(
            str(source), known, fname=dest.name, path=dest.parent,
            downloader=ResumableDownloader(dest, progress),
        )  # fmt: skip
    except DataError:  # from the downloader (a ValueError, as pooch's hash mismatch is)
        raise
    except ValueError as err:  # pooch's hash mismatch
        got = re.search(r"but got ([0-9a-fA-F]+)", str(err))
        raise ChecksumError(
            f"{dest}: {algorithm} mismatch: expected {expected}, got {got[1] if got else '?'}"
        ) from None
    finally:
        logger.setLevel(level)
    return dest


# --- the mini benchmark -------------------------------------------------------------------
def _mirror(name: DatasetName) -> str | None:
    """The mirror of a data set: its registry entry's ``mirror_env`` (else GPWAVE_DATA_MIRROR)."""
    var = registry()[name].get("mirror_env", "GPWAVE_DATA_MIRROR")
    return os.environ.get(var) or None


def _source(rel: str, upstream: str, mirror: str | Path | None) -> str:
    if mirror is None:
        return upstream
    if _is_url(str(mirror)):
        return f"{str(mirror).rstrip('/')}/{urllib.parse.quote(rel)}"
    return str(Path(mirror) / rel)


def to_pcm16(path: str | Path) -> None:
    """Rewrite a float wav as 16-bit PCM in place (libsndfile's conversion, as the manifest).

    Args:
        path: The wav file; left unchanged if it is not a float wav.
    """
    path = Path(path)
    info = sf.info(str(path))
    if info.subtype not in ("FLOAT", "DOUBLE"):
        return
    x, rate = sf.read(str(path), dtype="float32")
    tmp = path.with_name(path.name + ".pcm16")
    sf.write(str(tmp), x, rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def _fetch_row(row: pd.Series, root: Path, mirror: str | Path | None, progress: bool) -> None:
    target = root / row["file"]
    if _ok(target, row["md5"], "md5"):
        return
    src = _source(row["file"], row["source_url"], mirror)
    if not row.get("conversion", ""):
        download_file(src, target, row["md5"], progress=progress)
        return
    raw = target.with_name(target.name + ".upstream")
    download_file(src, raw, None, progress=progress)
    try:
        to_pcm16(raw)
        verify(raw, row["md5"], name=str(target))
    except ChecksumError:
        raw.unlink(missing_ok=True)
        raise
    except Exception as err:  # libsndfile errors on garbage: report this file, go on
        raw.unlink(missing_ok=True)
        reason = str(err).split(":")[-1].strip() or type(err).__name__
        raise DataError(f"{target}: cannot convert {src} to 16-bit PCM ({reason})") from err
    os.replace(raw, target)


def fetch_manifest(
    manifest: str | Path | pd.DataFrame,
    root: str | Path,
    mirror: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Fetch every file of a manifest into ``root``, verifying each md5.

    Files already present with the right md5 are skipped; files the manifest marks for
    conversion are converted to 16-bit PCM before their md5 is checked. A failing file
    (not found, wrong md5, not convertible) does not stop the others; the failures are
    raised together at the end, one line per file. A source that cannot be connected to
    at all stops the fetch at once (the other files would wait for it too).

    Args:
        manifest: A manifest TSV or its DataFrame.
        root: Target folder.
        mirror: Folder or http(s) URL replacing the ``source_url`` column.
        progress: Show progress bars.

    Returns:
        ``root``.

    Raises:
        ChecksumError: At least one file did not verify (all are named).
        DataError: At least one file could not be fetched.
    """
    df = manifest if isinstance(manifest, pd.DataFrame) else read_manifest(manifest)
    if mirror is not None and not _is_url(str(mirror)) and not Path(mirror).is_dir():
        raise DataError(f"{mirror}: the mirror folder does not exist")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    errors: list[Exception] = []
    for i, (_, row) in enumerate(
        tqdm(df.iterrows(), total=len(df), desc="files", disable=not progress)
    ):
        try:
            _fetch_row(row, root, mirror, progress=False)
        except UnreachableError as err:
            errors.append(err)
            errors.append(
                DataError(f"{len(df) - i - 1} more file(s) not tried: source unreachable")
            )
            break
        except (ChecksumError, DataError) as err:
            errors.append(err)
    if errors:
        kind = ChecksumError if any(isinstance(e, ChecksumError) for e in errors) else DataError
        n = sum(not str(e).endswith("source unreachable") for e in errors)
        raise kind(f"{n} of {len(df)} file(s) failed:\n" + "\n".join(map(str, errors)))
    return root


# --- archives -----------------------------------------------------------------------------
def _check_member(archive: Path, name: str) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise DataError(f"{archive}: refusing unsafe archive entry {name!r}")


def _check_tar(archive: Path, tf: tarfile.TarFile) -> None:
    for m in tf.getmembers():
        _check_member(archive, m.name)
        if m.issym() or m.islnk():
            target = PurePosixPath(m.name).parent / m.linkname
            if (
                PurePosixPath(m.linkname).is_absolute()
                or ".." in PurePosixPath(os.path.normpath(str(target))).parts
            ):
                raise DataError(f"{archive}: refusing link {m.name!r} -> {m.linkname!r}")
        elif not (m.isfile() or m.isdir()):
            raise DataError(f"{archive}: refusing special entry {m.name!r}")


def safe_extract(archive: str | Path, out: str | Path) -> Path:
    """Extract a zip or tar archive, refusing absolute paths, ``..`` and escaping links.

    Every entry is checked before anything is written. Extraction happens in a hidden
    folder next to ``out`` that is renamed into place, with a marker, when complete.

    Args:
        archive: A .zip, .tar, .tar.gz or .tar.bz2 file.
        out: The folder to extract into (reused if already complete).

    Returns:
        ``out``.

    Raises:
        DataError: An unsafe entry (named), or not an archive.
    """
    archive, out = Path(archive), Path(out)
    marker = out / ".gpwave-extracted"
    if marker.is_file() and marker.read_text() == archive.name:
        return out
    for stale in out.parent.glob(f".{out.name}.*.partial"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                _check_member(archive, name)
            zf.extractall(tmp)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            _check_tar(archive, tf)
            tf.extractall(tmp, filter="data")
    else:
        raise DataError(f"{archive}: neither a zip nor a tar archive")
    tmp.mkdir(parents=True, exist_ok=True)  # an empty archive creates nothing
    (tmp / marker.name).write_text(archive.name)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


# --- full data sets -----------------------------------------------------------------------
def _json(url: str, cache: Path) -> dict:
    """GET a JSON document, caching it; the cache is used when the network fails."""
    try:
        download_file(url, cache.with_suffix(".new"), None, progress=False)
        os.replace(cache.with_suffix(".new"), cache)
    except DataError:
        if not cache.is_file():
            raise
        log.warning("using cached %s", cache)
    return json.loads(cache.read_text())


def zenodo_files(record: int | str, cache_dir: Path, api: str | None = None) -> list[dict]:
    """The files of a Zenodo record with their md5 and download URL, from the record API.

    Args:
        record: The record id, e.g. 5642694.
        cache_dir: Where the record JSON is cached.
        api: Base URL of the records API (default ``$GPWAVE_ZENODO_API`` or Zenodo's).

    Returns:
        Dicts with keys name, md5, size, url.

    Raises:
        DataError: A record without files, or a file without an md5 checksum.
    """
    api = (api or os.environ.get("GPWAVE_ZENODO_API") or ZENODO_API).rstrip("/")
    url = f"{api}/{record}"
    rec = _json(url, Path(cache_dir) / f"zenodo-{record}.json")
    files = rec.get("files")
    if isinstance(files, dict):  # newer API shape: {"entries": {...}} or {"entries": [...]}
        files = files.get("entries", files)
        files = list(files.values()) if isinstance(files, dict) else files
    if not files:
        raise DataError(f"{url}: record lists no files")
    out = []
    for f in files:
        name = f.get("key") or f.get("filename")
        algo, _, digest = str(f.get("checksum", "")).partition(":")
        if algo != "md5" or not digest:
            raise DataError(f"{url}: file {name!r} has no md5 checksum ({f.get('checksum')!r})")
        links = f.get("links", {})
        link = links.get("content") or links.get("self") or links.get("download")
        link = link or f"{api}/{record}/files/{urllib.parse.quote(name)}/content"
        out.append({"name": name, "md5": digest, "size": f.get("size"), "url": link})
    return out


def _fetch_zenodo(name: str, entry: dict, dest: Path, mirror, progress: bool) -> Path:
    downloads = dest / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    files = zenodo_files(entry["zenodo"], downloads)
    wanted = entry.get("files")
    if wanted:
        missing = set(wanted) - {f["name"] for f in files}
        if missing:
            raise DataError(f"Zenodo record {entry['zenodo']} lacks {sorted(missing)}")
        files = [f for f in files if f["name"] in wanted]
    out = dest / entry["folder"]
    for f in files:
        src = _source(f["name"], f["url"], mirror)
        archive = download_file(src, downloads / f["name"], f["md5"], progress=progress)
        if zipfile.is_zipfile(archive) or tarfile.is_tarfile(archive):
            safe_extract(archive, out / Path(f["name"]).name.split(".")[0])
    return out


def fetch(
    name: DatasetName,
    dest: str | Path | None = None,
    mirror: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Download a data set, verifying every checksum; already verified files are kept.

    ``mini`` lands in ``<dest>/wavefake-mini`` (by the packaged manifest); ``ljspeech``
    in ``<dest>/ljspeech`` (the pinned sha256 of LJSpeech-1.1.tar.bz2); ``wavefake`` and
    ``extension`` in ``<dest>/wavefake`` and ``<dest>/extension`` (md5s from the Zenodo
    record API); ``models`` (the paper's three released checkpoints) in
    ``<dest>/models``; ``speakers`` (speakers-tts-mini, test only) in
    ``<dest>/speakers-tts-mini/{vctk,tts}``. Archives are kept in ``<dest>/downloads``.
    Manifest sets (mini, models, speakers) also get a copy of their manifest,
    ``MANIFEST.tsv``, like their mirrors.

    Args:
        name: "mini", "wavefake", "ljspeech", "extension", "models" or "speakers".
        dest: Data folder (default :func:`default_data_dir`).
        mirror: Folder or http(s) URL holding the files by name (default: the variable
            the registry names, ``$GPWAVE_DATA_MIRROR``; ``$GPWAVE_MODELS_MIRROR`` for
            ``models``, ``$GPWAVE_SPEAKERS_MIRROR`` for ``speakers``); replaces the
            upstream URLs.
        progress: Show progress bars.

    Returns:
        The folder holding the data set.

    Raises:
        ChecksumError: A file that does not match its checksum.
        DataError: A file that cannot be fetched, or an unsafe archive.
    """
    check_option(name, DatasetName, "name")
    dest = Path(dest) if dest is not None else default_data_dir()
    mirror = mirror if mirror is not None else _mirror(name)
    entry = registry()[name]
    if "manifest" in entry:
        root = fetch_manifest(manifest(name), dest / entry["folder"], mirror, progress)
        (root / "MANIFEST.tsv").write_bytes(_packaged(entry).read_bytes())
        return root
    if "zenodo" in entry:
        return _fetch_zenodo(name, entry, dest, mirror, progress)
    fname = entry["url"].rsplit("/", 1)[-1]
    src = _source(fname, entry["url"], mirror)
    archive = download_file(src, dest / "downloads" / fname, entry["sha256"], "sha256", progress)
    return safe_extract(archive, dest / entry["folder"])


# --- the letter-prefixed layout -----------------------------------------------------------
def _find_dir(root: Path, names: tuple[str, ...], depth: int = 4) -> Path | None:
    lower = {n.lower() for n in names}
    frontier = [root]
    for _ in range(depth):
        nxt = []
        for d in frontier:
            for p in sorted(d.iterdir()):
                if p.is_dir():
                    if p.name.lower() in lower:
                        return p
                    nxt.append(p)
        frontier = nxt
    return None


def _find_ljspeech(root: Path) -> Path:
    if any(root.glob("LJ*.wav")):
        return root
    wavs = _find_dir(root, ("wavs",))
    if wavs is None or not any(wavs.glob("LJ*.wav")):
        raise DataError(f"{root}: no LJSpeech wavs (LJ*.wav) found")
    return wavs


def _link(target: Path, link: Path) -> None:
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise DataError(f"{link}: exists and is not a symlink; refusing to replace it")
    link.symlink_to(target.resolve(), target_is_directory=True)


def arrange(
    wavefake: str | Path,
    ljspeech: str | Path,
    extension: str | Path | None,
    out: str | Path,
) -> Path:
    """Lay out LJSpeech, WaveFake and the extension as the reference's letter folders.

    ``A_ljspeech`` links to LJSpeech's ``wavs``; ``B_melgan`` ... ``N_jsutpwg`` link to
    WaveFake's and the extension's generator folders (see :data:`LAYOUT`). Symlinks
    only, nothing is copied; generator folders that are not found are warned about.

    Args:
        wavefake: Extracted WaveFake (``generated_audio`` somewhere inside).
        ljspeech: Extracted LJSpeech 1.1 (``wavs`` somewhere inside).
        extension: Extracted extension (Avocodo, BigVGAN, large BigVGAN), or None.
        out: The data root to create.

    Returns:
        ``out``.

    Raises:
        DataError: A missing input folder, no LJSpeech wavs, or no generator at all.
    """
    roots = {"wavefake": wavefake, "extension": extension}
    for key, p in [("wavefake", wavefake), ("ljspeech", ljspeech), ("extension", extension)]:
        if p is not None and not Path(p).is_dir():
            raise DataError(f"{p}: {key} folder does not exist")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _link(_find_ljspeech(Path(ljspeech)), out / "A_ljspeech")
    linked = 0
    for folder, (key, names) in LAYOUT.items():
        if roots[key] is None:
            continue
        found = _find_dir(Path(roots[key]), names)
        if found is None:
            log.warning("%s: no %s folder (looked for %s)", roots[key], folder, ", ".join(names))
            continue
        _link(found, out / folder)
        linked += 1
    if linked == 0:
        raise DataError(f"{wavefake}: no WaveFake generator folder found (e.g. ljspeech_melgan)")
    return out
