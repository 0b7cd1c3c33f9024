"""A training pool of several letter-prefixed trees: speakers, vocoder families, splits.

speakers-train (seven trees, one per vocoder demo repository) is one pool of
utterances, optionally joined by other trees such as the mini benchmark's training
folders. Its traps (its README) shape every function here: the split goes by
*speaker* across all trees (``*:unknown`` speakers one utterance each, an utterance
shared by two trees in one split); every file, real or fake, is resampled to the
model's rate by the same function; 1 s frames are cut inside both a real file and its
re-syntheses; the classes are balanced by weights (real speech is about a fifth of the
audio); vocoder families come from folder names, so that a family can be left out.

Notebook: notebooks/08_generalization_needs.py
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from gpwave.constants import REAL_LETTER, SAMPLE_RATE
from gpwave.data import discover_sources, frame_audio, load_audio, split_of, utterance_id
from gpwave.errors import DataError

#: Columns of a pool table (one row per file).
POOL_COLUMNS = [
    "tree",
    "folder",
    "file",
    "utterance",
    "speaker",
    "label",
    "family",
    "rate",
    "split",
]
#: Family of a real folder.
REAL = "real"
#: Folder-name fragments -> vocoder family, tried in order (``qppwg`` before ``pwg``,
#: ``univnet`` before nothing that contains it, ``taco2waveglow`` is WaveGlow...).
FAMILY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("qppwg", "qppwg"),
    ("qpnet", "qpnet"),
    ("usfgan", "usfgan"),
    ("fwgan", "fwgan"),
    ("lpcnet", "lpcnet"),
    ("nsf", "nsf"),
    ("univnet", "univnet"),
    ("wavehax", "wavehax"),
    ("vocos", "vocos"),
    ("singgan", "singgan"),
    ("bigvgan", "bigvgan"),
    ("avocodo", "avocodo"),
    ("hifigan", "hifigan"),
    ("melgan", "melgan"),
    ("pwg", "pwg"),
    ("conformer", "pwg"),
    ("waveglow", "waveglow"),
    ("wavenet", "wavenet"),
    ("wavernn", "wavernn"),
    ("clarinet", "clarinet"),
)


def family_of(folder: str) -> str:
    """The vocoder family of a letter-prefixed folder name.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        folder: E.g. ``"B_universalmelgan_en"``, ``"E_qppwg16"``, ``"A_libritts"``.

    Returns:
        ``"real"`` for an ``A_`` folder, else the family (``"melgan"``, ``"qppwg"``...).

    Raises:
        DataError: A fake folder whose name matches no known family.

    Example:
        >>> family_of("C_fbmelgan_en"), family_of("E_qppwg16"), family_of("A_jvs")
        ('melgan', 'qppwg', 'real')
    """
    if folder.startswith(f"{REAL_LETTER}_"):
        return REAL
    name = folder.split("_", 1)[-1].lower()
    for fragment, family in FAMILY_PATTERNS:
        if fragment in name:
            return family
    raise DataError(f"{folder}: no known vocoder family in the folder name")


def _speakers(manifest: pd.DataFrame | None) -> dict[str, tuple[str, str]]:
    """``tree/folder/name`` -> (speaker, utterance) from a manifest's columns."""
    if manifest is None or "speaker" not in manifest.columns:
        return {}
    return dict(
        zip(
            manifest["file"],
            zip(manifest["speaker"], manifest["utterance"], strict=True),
            strict=True,
        )
    )


def tree_table(
    root: str | Path, tree: str, manifest: pd.DataFrame | None = None, speaker: str | None = None
) -> pd.DataFrame:
    """One pool row per audio file of one letter-prefixed tree.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        root: The tree's folder (holding ``A_*``, ``B_*``...).
        tree: Its name in the pool (``"umelgan"``); manifest files are ``<tree>/<folder>/<name>``.
        manifest: A manifest with ``file``, ``speaker`` and ``utterance`` columns, or None.
        speaker: Speaker of every file when there is no manifest (``"ljspeech:LJ"``).

    Returns:
        :data:`POOL_COLUMNS`, ``split`` empty.

    Raises:
        DataError: A file the manifest does not list, or no speaker at all.
    """
    lookup, rows = _speakers(manifest), []
    for src in discover_sources(root):
        for f in src.files():
            key = f"{tree}/{src.folder}/{f.name}"
            if lookup:
                if key not in lookup:
                    raise DataError(f"{f}: not in the manifest (as {key})")
                spk, utt = lookup[key]
            elif speaker is not None:
                spk, utt = speaker, utterance_id(f)
            else:
                raise DataError(f"{root}: no manifest with a speaker column and no speaker given")
            rows.append(
                (
                    tree,
                    src.folder,
                    str(f),
                    utt,
                    spk,
                    src.label,
                    family_of(src.folder),
                    sf.info(str(f)).samplerate,
                    "",
                )
            )
    return pd.DataFrame(rows, columns=POOL_COLUMNS)


def pool_table(root: str | Path, trees: Iterable[str] | None = None) -> pd.DataFrame:
    """The pool of a multi-tree set with a ``MANIFEST.tsv`` (speakers-train).

    Notebook: notebooks/08_generalization_needs.py

    Args:
        root: The set's folder: one sub-folder per tree and ``MANIFEST.tsv``.
        trees: Trees to include (default: every sub-folder).

    Returns:
        :data:`POOL_COLUMNS`, one row per file, ``split`` empty.

    Raises:
        DataError: No manifest, or a file it does not list.
    """
    root = Path(root)
    if not (root / "MANIFEST.tsv").is_file():
        raise DataError(f"{root}: no MANIFEST.tsv (fetch it: gpwave data fetch speakers-train)")
    manifest = pd.read_csv(root / "MANIFEST.tsv", sep="\t", dtype=str, keep_default_na=False)
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if trees is None else trees
    return pd.concat([tree_table(root / t, t, manifest) for t in names], ignore_index=True)


def mini_train_table(
    root: str | Path,
    folders: Sequence[str] = ("A_ljspeech", "B_melgan"),
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> pd.DataFrame:
    """The mini benchmark's training folders as pool rows, split as its protocol splits them.

    LJSpeech is one speaker, so its utterances keep the protocol's utterance split
    (:func:`gpwave.data.split_of`) instead of a speaker split; :func:`speaker_splits`
    leaves rows with a split alone.

    Args:
        root: The mini benchmark's root.
        folders: Folders to include.
        fractions: Train, val, test fractions of the protocol.
        seed: Seed of the protocol's split.

    Returns:
        :data:`POOL_COLUMNS` with ``split`` set.
    """
    t = tree_table(root, "mini", speaker="ljspeech:LJ")
    t = t[t["folder"].isin(folders)].reset_index(drop=True)
    return t.assign(split=[split_of(u, fractions, seed) for u in t["utterance"]])


def _components(keys: Sequence[str], utterances: Sequence[str]) -> dict[str, str]:
    """Union-find: group key -> component root, joining keys that share an utterance."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for k, u in zip(keys, utterances, strict=True):
        ra, rb = find(f"k:{k}"), find(f"u:{u}")
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {k: find(f"k:{k}") for k in keys}


def speaker_groups(pool: pd.DataFrame) -> pd.Series:
    """The group of each row that a split must keep together.

    A known speaker is one group; each utterance of an ``*:unknown`` speaker is its own;
    groups that share an utterance id (one sentence in two trees) are merged.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        pool: A pool table.

    Returns:
        Group ids aligned with ``pool``.
    """
    unknown = pool["speaker"].str.endswith(":unknown")
    keys = pool["speaker"].where(~unknown, pool["speaker"] + "/" + pool["utterance"])
    roots = _components(list(keys), list(pool["utterance"]))
    return keys.map(roots)


def speaker_splits(
    pool: pd.DataFrame, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> pd.DataFrame:
    """Assign train/val/test by speaker group, across all trees; preset splits are kept.

    Groups are shuffled by ``seed`` and each goes to the split furthest below its share
    of utterances, so the split is deterministic and roughly ``fractions``.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        pool: A pool table (rows with a non-empty ``split`` keep it).
        fractions: Train, val, test shares of the utterances.
        seed: Seed of the shuffle.

    Returns:
        A copy with ``split`` and ``group`` set.
    """
    out = pool.assign(group=speaker_groups(pool))
    free = out["split"] == ""
    sizes = out[free].groupby("group")["utterance"].nunique()
    order = np.random.default_rng(seed).permutation(sorted(sizes.index))
    share = np.asarray(fractions, dtype=float) / float(sum(fractions))
    names, counts, table = ("train", "val", "test"), np.zeros(3), {}
    for g in order:
        total = counts.sum() + sizes[g]
        k = int(np.argmax(share * total - counts))
        table[g], counts[k] = names[k], counts[k] + sizes[g]
    out.loc[free, "split"] = out.loc[free, "group"].map(table)
    return out


def group_folds(pool: pd.DataFrame, n_folds: int = 5, seed: int = 0) -> pd.Series:
    """Cross-validation folds by speaker group (:func:`speaker_groups`), across all trees.

    Groups are shuffled by ``seed`` and dealt to the fold with the fewest utterances so
    far, so every file is held out exactly once, by a model that never heard its speaker.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        pool: A pool table.
        n_folds: Number of folds.
        seed: Seed of the shuffle.

    Returns:
        Fold number (0 .. n_folds - 1) of each row, aligned with ``pool``.
    """
    groups = speaker_groups(pool)
    sizes = pool.groupby(groups)["utterance"].nunique()
    counts, table = np.zeros(n_folds), {}
    for g in np.random.default_rng(seed).permutation(sorted(sizes.index)):
        k = int(np.argmin(counts))
        table[g], counts[k] = k, counts[k] + sizes[g]
    return groups.map(table).astype(int)


def load_resampled(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a file and resample it to ``sample_rate``, up or down, with soxr (HQ).

    Real and fake files go through this same function, so the rate of a file (and the
    resampler's band edge) cannot tell the classes apart; upsampling a 16 kHz file adds
    no content above 8 kHz, on either side: :func:`gpwave.data.load_audio` with
    ``upsample``, as the frame store decodes a pool's trees (:mod:`gpwave.poolstore`).

    Notebook: notebooks/08_generalization_needs.py

    Args:
        path: The audio file.
        sample_rate: Target rate in Hz.

    Returns:
        Mono float32 samples at ``sample_rate``.
    """
    return load_audio(path, sample_rate=sample_rate, upsample=True)


def pair_frames(
    pool: pd.DataFrame,
    sample_rate: int = SAMPLE_RATE,
    seconds: float = 1.0,
    max_frames: int | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """1 s frames of every file, cut only where a real file and all its re-syntheses exist.

    Files of one (tree, utterance) share a frame grid that ends at the shortest of them
    (the Wavehax outputs end about 0.2 s early), so a frame never compares speech with
    silence or padding.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        pool: A pool table.
        sample_rate: The model's rate.
        seconds: Frame length.
        max_frames: At most this many frames per file (evenly spaced; None: all).

    Returns:
        ``(frames, index)``: frames (k, N) float32 and one row per frame: the pool row
        (``pool_row``) with its columns and the frame's ``offset`` in samples.
    """
    n = int(round(seconds * sample_rate))
    audio = {i: load_resampled(f, sample_rate) for i, f in pool["file"].items()}
    shortest = (
        pool.assign(n=[len(audio[i]) for i in pool.index])
        .groupby(["tree", "utterance"])["n"]
        .transform("min")
    )
    frames, rows = [], []
    for i in pool.index:
        fr = frame_audio(audio[i][: int(shortest[i])], n)
        keep = np.arange(len(fr))
        if max_frames is not None and len(fr) > max_frames:
            keep = np.linspace(0, len(fr) - 1, max_frames).round().astype(int)
        frames.append(fr[keep])
        rows += [(i, int(k) * n) for k in keep]
    index = pd.DataFrame(rows, columns=["pool_row", "offset"])
    index = index.join(pool, on="pool_row")
    return np.concatenate(frames) if frames else np.zeros((0, n), np.float32), index


def class_weights(labels: Sequence[int]) -> np.ndarray:
    """Per-sample weights that give both classes the same total weight.

    scikit-learn's ``"balanced"`` rule, ``n / (2 * n_class)``: real speech is about a
    fifth of speakers-train's audio, and unweighted it would count a fifth.

    Notebook: notebooks/08_generalization_needs.py

    Args:
        labels: 0 real, 1 fake.

    Returns:
        One weight per sample.

    Raises:
        ValueError: Not both classes.

    Example:
        >>> class_weights([0, 1, 1, 1]).tolist()
        [2.0, 0.6666666666666666, 0.6666666666666666, 0.6666666666666666]
    """
    y = np.asarray(labels).astype(int)
    counts = np.bincount(y, minlength=2)
    if counts.min() == 0:
        raise ValueError(f"class weights need both classes, got counts {counts.tolist()}")
    return (len(y) / (2.0 * counts))[y]


def leave_family_out(pool: pd.DataFrame, families: Iterable[str]) -> pd.DataFrame:
    """The pool without every fake folder of the given families (real rows stay).

    Notebook: notebooks/08_generalization_needs.py

    Args:
        pool: A pool table.
        families: Families to hold out (``"melgan"`` removes Universal MelGAN, FB-MelGAN,
            the MelGAN of SingGAN's tree...).

    Returns:
        The remaining rows.
    """
    return pool[~pool["family"].isin(set(families))]


def families(pool: pd.DataFrame) -> list[str]:
    """The vocoder families of a pool's fake rows, sorted.

    Args:
        pool: A pool table.

    Returns:
        Family names.
    """
    return sorted(set(pool.loc[pool["label"] == 1, "family"]))


def family_folders(pool: pd.DataFrame) -> Mapping[str, list[str]]:
    """Family -> its ``tree/folder`` names in a pool.

    Args:
        pool: A pool table.

    Returns:
        A dict of sorted folder lists.
    """
    fakes = pool[pool["label"] == 1]
    keys = fakes["tree"] + "/" + fakes["folder"]
    return {f: sorted(set(k)) for f, k in keys.groupby(fakes["family"])}
