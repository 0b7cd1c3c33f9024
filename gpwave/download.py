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

import json
import logging
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import soundfile as sf
from tqdm.auto import tqdm

from gpwave.constants import DatasetName, check_option
from gpwave.errors import ChecksumError, DataError
from gpwave.transfer import (
    UnreachableError,
    check_free_space,
    download_file,
    is_url,
    is_verified,
    safe_extract,
    space_needed,
    verify,
)

log = logging.getLogger(__name__)

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


def default_data_dir() -> Path:
    """Where data lives: ``$GPWAVE_DATA``, else ``./data``.

    Returns:
        The data folder (not created).

    Raises:
        DataError: ``$GPWAVE_DATA`` names something that is not a folder (e.g. a file).
    """
    path = Path(os.environ.get("GPWAVE_DATA") or Path.cwd() / "data").expanduser()
    if path.exists() and not path.is_dir():
        raise DataError(f"GPWAVE_DATA={path}: not a folder; point it at a (new) data folder")
    return path


def make_dir(path: Path, what: str = "", hint: str = "GPWAVE_DATA or --dest") -> None:
    """``mkdir -p`` or a one-line :class:`DataError` (a file in the way, no permission).

    Args:
        path: The folder.
        what: What the folder is for, for the message (e.g. "the frame store").
        hint: The settings that choose where it goes, for the message.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        of = f" of {what}" if what else ""
        raise DataError(
            f"{path}: cannot create the folder{of} ({err.strerror}); set {hint} to a "
            "writable folder"
        ) from None


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


# --- the mini benchmark -------------------------------------------------------------------
def _mirror(name: DatasetName) -> str | None:
    """The mirror of a data set: its registry entry's ``mirror_env`` (else GPWAVE_DATA_MIRROR)."""
    var = registry()[name].get("mirror_env", "GPWAVE_DATA_MIRROR")
    return os.environ.get(var) or None


def _source(rel: str, upstream: str, mirror: str | Path | None) -> str:
    if mirror is None:
        return upstream
    if is_url(str(mirror)):
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
    if is_verified(target, row["md5"], "md5"):
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
    if mirror is not None and not is_url(str(mirror)) and not Path(mirror).is_dir():
        raise DataError(f"{mirror}: the mirror folder does not exist")
    root = Path(root)
    make_dir(root)
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
    plan = [(downloads / f["name"], f.get("size") or 0, out / f["name"].split(".")[0])
            for f in files]  # fmt: skip
    check_free_space(dest, space_needed(plan), name)
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
    plan = [(dest / "downloads" / fname, entry.get("size", 0), dest / entry["folder"])]
    check_free_space(dest, space_needed(plan), name)
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
