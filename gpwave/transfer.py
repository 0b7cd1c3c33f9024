"""Transfers: resumable, retried, checksummed downloads and safe archive extraction.

A download resumes from a ``.part`` file with an HTTP Range request (or a copy from a
local mirror folder), is retried with exponential backoff while it makes progress
(:data:`RETRIES` failed attempts or :data:`RETRY_SECONDS` without a new byte end it),
and is verified against its checksum before it is moved into place; a kill during the
verification keeps the part. Archives are extracted safely (no absolute paths, no
``..``, no links leaving the target). The registries that say *what* to fetch are in
:mod:`gpwave.download`.

Notebook: notebooks/02_data.py
"""

from __future__ import annotations

import http.client
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
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from gpwave.errors import ChecksumError, DataError

log = logging.getLogger(__name__)

#: Seconds before the first retry; doubled after every failed attempt.
BACKOFF = 1.0

#: Failed attempts in a row without a new byte before giving up on a file.
RETRIES = 5

#: Socket timeout of one request, seconds.
TIMEOUT = 60.0

#: No new attempt on a file starts later than this many seconds after the last attempt
#: that brought new bytes (or the first attempt), so an unreachable source costs at most
#: about ``RETRY_SECONDS + TIMEOUT``, while a long transfer that stalls now and then keeps
#: retrying as long as it progresses; :func:`fetch_manifest` stops at the first
#: unreachable file instead of trying the rest. :data:`RETRIES` counts failed attempts
#: since the last progress, the same way.
RETRY_SECONDS = 30.0

CHUNK = 1 << 20


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


def is_url(s: str) -> bool:
    """Whether ``s`` is an http(s) URL (else a local path)."""
    return urllib.parse.urlparse(str(s)).scheme in ("http", "https")


def is_verified(path: Path, expected: str | None, algorithm: str) -> bool:
    """Whether ``path`` is a file whose checksum is ``expected`` (None: any file)."""
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
            total = re.fullmatch(r"bytes \*/(\d+)", err.headers.get("Content-Range") or "")
            if total and int(total[1]) == start:
                return  # complete (e.g. killed while verifying): nothing to fetch
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


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _attempts(source: str | Path, part: Path, progress: bool) -> None:
    """Fetch ``source`` into ``part`` with retries (see :func:`download_file`).

    Retries are bounded by :data:`RETRIES` failed attempts in a row and by
    :data:`RETRY_SECONDS` without progress: an attempt that adds bytes to ``part``
    resets both, so an hour-long transfer that stalls is resumed, not abandoned.
    """
    failures, unreachable = 0, True
    size, since = _size(part), time.monotonic()
    while True:
        try:
            if is_url(str(source)):
                _http_attempt(str(source), part, progress)
            else:
                _copy_attempt(Path(source), part)
            return
        except _Retryable as err:
            unreachable &= err.unreachable
            if _size(part) > size:  # progress: a new stall starts now
                failures, size, since = 0, _size(part), time.monotonic()
            failures += 1
            log.warning("attempt %d/%d without progress failed: %s", failures, RETRIES, err)
            wait = BACKOFF * 2 ** (failures - 1)
            if failures >= RETRIES or time.monotonic() - since + wait > RETRY_SECONDS:
                kind = UnreachableError if unreachable else DataError
                raise kind(f"{source}: failed after {failures} attempts: {err}") from err
            time.sleep(wait)


def _hand_over(part: Path, output_file: Path) -> None:
    """Give pooch the finished part as a hard link, so the part survives its hash check.

    pooch hashes ``output_file`` and moves it into place; a process killed meanwhile
    leaves ``part`` intact (resumable) and the link an orphan that
    :func:`_remove_orphans` recognises. Where hard links are not supported the part
    is moved, as before.
    """
    try:
        output_file.unlink(missing_ok=True)
        os.link(part, output_file)
    except OSError:
        os.replace(part, output_file)


def _remove_orphans(dest: Path) -> None:
    """Remove pooch temporary files (``tmp*``) that are hard links of ``dest``'s part.

    Only files that *are* the part (same inode) are removed; nothing else in the folder
    is touched.
    """
    part = dest.with_name(dest.name + ".part")
    if not part.is_file() or not dest.parent.is_dir():
        return
    for p in dest.parent.glob("tmp*"):
        try:
            if p.is_file() and os.path.samefile(p, part):
                p.unlink()
        except OSError:
            continue


class ResumableDownloader:
    """A pooch downloader that resumes from a stable ``.part`` file and retries.

    :func:`pooch.retrieve` hands every download a fresh temporary file and deletes it on
    failure, so pooch's own downloaders restart an interrupted 28 GB transfer from
    byte 0, and its retries do not distinguish a dead host from a dropped connection.
    This downloader keeps the bytes in ``<dest>.part`` (stable across processes),
    resumes it with an HTTP Range request, retries with backoff while the transfer
    progresses (:data:`RETRIES`, :data:`RETRY_SECONDS`), copies from mirror folders, and
    finally hard-links the part onto pooch's temporary file; pooch then checks the hash
    and moves it into place atomically, and the part is removed only after that.

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
            return is_url(url) or Path(url).is_file()
        _attempts(url, self.part, self.progress)
        _hand_over(self.part, Path(output_file))
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
    transient failures are retried with exponential backoff from :data:`BACKOFF` seconds,
    up to :data:`RETRIES` attempts and :data:`RETRY_SECONDS` without progress. The part
    outlives pooch's hash check (a kill there loses nothing), and is removed once the
    file is verified in place or found wrong; pooch temporaries left by a killed run are
    removed.

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
    downloader = ResumableDownloader(dest, progress)
    _remove_orphans(dest)
    try:
        pooch.retrieve(str(source), known, fname=dest.name, path=dest.parent, downloader=downloader)
        downloader.part.unlink(missing_ok=True)  # verified and in place (or already there)
    except DataError:  # from the downloader (a ValueError, as pooch's hash mismatch is)
        raise
    except ValueError as err:  # pooch's hash mismatch: these bytes must not be resumed
        downloader.part.unlink(missing_ok=True)
        got = re.search(r"but got ([0-9a-fA-F]+)", str(err))
        raise ChecksumError(
            f"{dest}: {algorithm} mismatch: expected {expected}, got {got[1] if got else '?'}"
        ) from None
    finally:
        logger.setLevel(level)
    return dest


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


#: Extracted size per archive byte (WAV audio barely compresses: WaveFake's zip; LJSpeech's
#: tar.bz2 of 2.7 GB unpacks to about 3.8 GB), with a margin.
EXTRACT_FACTOR = {"zip": 1.15, "tar": 1.5}


def space_needed(archives: list[tuple[Path, int, Path]]) -> int:
    """Bytes a fetch still needs: the missing bytes of each archive and its extraction.

    Args:
        archives: ``(archive path, archive size, extraction folder)`` per archive; a
            verified archive or a ``.part`` counts what is already there, an existing
            extraction folder counts as done.

    Returns:
        Bytes still to be written.

    Example:
        >>> space_needed([(Path("/nonexistent/a.zip"), 1000, Path("/nonexistent/a"))])
        2150
    """
    need = 0
    for archive, size, out in archives:
        part = archive.with_name(archive.name + ".part")
        have = max(_size(archive), _size(part)) if size else 0
        need += max(0, int(size or 0) - have)
        if not out.exists():
            kind = "zip" if archive.suffix == ".zip" else "tar"
            need += int(EXTRACT_FACTOR[kind] * int(size or 0))
    return need


def check_free_space(folder: Path, need: int, what: str) -> None:
    """Refuse to start a transfer that cannot fit (``GPWAVE_SKIP_SPACE_CHECK=1`` skips it).

    Args:
        folder: Where the data go (its file system is asked).
        need: Bytes still to be written (:func:`space_needed`).
        what: What is fetched, for the message.

    Raises:
        DataError: Less free space than ``need``, with both numbers.
    """
    if os.environ.get("GPWAVE_SKIP_SPACE_CHECK") == "1" or need <= 0:
        return
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need:
        raise DataError(
            f"{what}: needs about {need / 1e9:.1f} GB more in {folder} (download and "
            f"extraction), {free / 1e9:.1f} GB are free; free space, point GPWAVE_DATA "
            "elsewhere, or set GPWAVE_SKIP_SPACE_CHECK=1"
        )
