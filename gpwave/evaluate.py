"""Scoring: detectors on waveforms, frame stores, splits, folder trees and files.

Scores are the detector's continuous fake log-odds (fake logit minus real logit), never
argmax labels, and never probabilities: a float32 softmax rounds every log-odds above
about 17 to 1.0, and frames a detector is sure of would tie (under noise the paper's
models put *every* frame there, which reads as EER 0.5 though their order still holds
information). The metrics of those scores are in :mod:`gpwave.metrics`, the tables in
:mod:`gpwave.report`; :func:`score_split` is the one path from a split to a table.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from gpwave import dist, hub, report
from gpwave.config import TrainConfig, resolve_device
from gpwave.constants import ScoreKind, check_option
from gpwave.frames import batch_loader, loader_workers, to_device

# --- scoring --------------------------------------------------------------------------
#: Frames per forward pass when none is given: 256 on CUDA (a GPU idles on 64), 64
#: elsewhere (the CPU's numbers are those of every table scored before).
BATCH_SIZE = {"cuda": 256, "cpu": 64}


def scoring_batch_size(device: str | torch.device) -> int:
    """The default frames per forward pass on ``device`` (:data:`BATCH_SIZE`).

    Example:
        >>> scoring_batch_size("cpu"), scoring_batch_size("cuda:1")
        (64, 256)
    """
    return BATCH_SIZE.get(torch.device(device).type, BATCH_SIZE["cpu"])


def autocast_dtype(device: str | torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype of scoring: float16 with ``amp`` on CUDA, else None (float32).

    The CPU always scores in float32, so its tables stay those of every earlier run.

    Example:
        >>> autocast_dtype("cuda:0", True), autocast_dtype("cpu", True)
        (torch.float16, None)
    """
    return torch.float16 if amp and torch.device(device).type == "cuda" else None


@contextmanager
def float32_head(model: torch.nn.Module) -> Iterator[None]:
    """Run ``model.fc`` (the last layer) in float32 inside an autocast region.

    Under float16 autocast the logits would be float16: 11 significant bits, so log-odds
    near 20 come in steps of 1/64 and frames the detector is sure of tie, and ties move
    the EER (an EER of tied scores is 0.5 whatever their order). The trunk's output is
    cast up and the head's weights are float32, so the logits keep float32's resolution.

    Args:
        model: A model with a linear ``fc`` head (:class:`gpwave.models.DCNN`, LCNN,
            linear probe).
    """
    head = model.fc
    plain = head.forward

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return plain(x.float())

    head.forward = forward
    try:
        yield
    finally:
        del head.forward


@contextmanager
def scoring_precision(detector: Any, device: str | torch.device, amp: bool) -> Iterator[None]:
    """Autocast of :func:`autocast_dtype` for the trunk, the head in float32; else nothing.

    The features are float32 either way (:meth:`gpwave.models.Detector.raw_features`);
    a model without a linear ``fc`` head (the GMM) scores in float32.

    Args:
        detector: The detector.
        device: Where it scores.
        amp: Mixed precision asked for (the run's ``amp``).
    """
    dtype = autocast_dtype(device, amp)
    model = getattr(detector, "model", None)
    if dtype is None or not isinstance(getattr(model, "fc", None), torch.nn.Linear):
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=dtype), float32_head(model):
        yield


def _score_batch(
    detector: Any, w: torch.Tensor, gain: float, kind: ScoreKind, amp: bool
) -> torch.Tensor:
    with torch.no_grad(), scoring_precision(detector, w.device, amp):
        w = w * gain
        return detector.fake_log_odds(w) if kind == "log-odds" else detector.fake_probability(w)


def _device_of(detector: Any, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    weights = next(iter(detector.parameters()), None)
    return weights.device if weights is not None else torch.device("cpu")


def score_waveforms(
    detector: torch.nn.Module,
    frames: np.ndarray | torch.Tensor,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    gain: float = 1.0,
    progress: bool = False,
    desc: str = "scoring",
    kind: ScoreKind = "log-odds",
    amp: bool = False,
) -> np.ndarray:
    """Fake log-odds (or probabilities) of waveform frames ``(n, N)``.

    Args:
        detector: A :class:`gpwave.models.Detector` (put in eval mode here).
        frames: Waveforms.
        batch_size: Frames per forward pass (None: :func:`scoring_batch_size`).
        device: Where to run (default: the detector's device).
        gain: Multiply the waveforms by this factor first (gain-invariance checks).
        progress: Show a progress bar over the frames.
        desc: The progress bar's label.
        kind: ``log-odds`` (every EER) or ``probability`` (saturates; for verdicts).
        amp: Mixed precision on CUDA (:func:`scoring_precision`); ignored on the CPU.

    Returns:
        float64 scores ``(n,)``.
    """
    check_option(kind, ScoreKind, "kind")
    detector.eval()
    device = _device_of(detector, device)
    batch_size = batch_size or scoring_batch_size(device)
    x = torch.as_tensor(np.asarray(frames, dtype=np.float32))
    starts = range(0, len(x), batch_size)
    bar = tqdm(starts, desc=desc, unit="batch", leave=False, disable=not progress)
    out = [_score_batch(detector, x[i : i + batch_size].to(device), gain, kind, amp) for i in bar]
    return torch.cat([z.cpu() for z in out]).double().numpy() if out else np.empty(0)


def _read_batches(
    store: Any, rows: np.ndarray, batches: list[np.ndarray], device: torch.device, workers: int
) -> Iterator[torch.Tensor]:
    """Float32 waveforms of each batch of positions into ``rows``, on the device.

    A frame store is read by training's input pipeline (:func:`gpwave.frames.batch_loader`:
    ``workers`` reader processes, pinned memory on CUDA, int16 until the device); any
    other object with ``read(rows)`` (float32 frames) is read in this process.
    """
    if not hasattr(store, "read_stored"):
        for idx in batches:
            yield torch.as_tensor(np.asarray(store.read(rows[idx]), np.float32)).to(device)
        return
    labels = torch.zeros(len(rows), dtype=torch.long)
    for x, y in batch_loader(store, rows, labels, batches, str(device), workers):
        yield to_device(x, y, str(device))[0]


def rank_batches(n: int, batch_size: int, d: dist.Dist) -> list[np.ndarray]:
    """This rank's batches of positions ``0..n-1``: batches ``rank, rank + world, ...``.

    Every batch is one that a single process scores (consecutive positions,
    ``batch_size`` each), so the scores do not depend on how many processes share them.

    Example:
        >>> [b.tolist() for b in rank_batches(7, 2, dist.Dist(rank=1, world=2))]
        [[2, 3], [6]]
    """
    starts = range(0, n, batch_size)[d.rank :: d.world]
    return [np.arange(i, min(i + batch_size, n)) for i in starts]


def score_frames(
    detector: torch.nn.Module,
    store: Any,
    rows: Sequence[int],
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    gain: float = 1.0,
    progress: bool = False,
    kind: ScoreKind = "log-odds",
    *,
    workers: int = 0,
    amp: bool = False,
    d: dist.Dist | None = None,
) -> np.ndarray:
    """Fake log-odds (or probabilities) of frame-store rows, read ahead batch by batch.

    In a multi-process run every rank scores its share (:func:`rank_batches`) and
    every rank receives all scores (:func:`gpwave.dist.all_gather`): the same scores in
    the same order as one process's, bit for bit on the same kind of device.

    Args:
        detector: A trained detector (each rank's copy must hold the same weights).
        store: A :class:`gpwave.store.FrameStore` (or anything with ``read(rows)``).
        rows: Row numbers.
        batch_size: Frames per forward pass (None: :func:`scoring_batch_size`).
        device: Where to run (default: the detector's device).
        gain: Multiply the waveforms by this factor first.
        progress: Show a progress bar (on the lead process).
        kind: ``log-odds`` or ``probability`` (:func:`score_waveforms`).
        workers: Reader processes (:func:`gpwave.frames.loader_workers` in training).
        amp: Mixed precision on CUDA (:func:`scoring_precision`); ignored on the CPU.
        d: This process's place in a multi-process run (None: one process).

    Returns:
        float64 scores aligned with ``rows``.
    """
    check_option(kind, ScoreKind, "kind")
    rows = np.asarray(rows, dtype=np.int64)
    d = d or dist.Dist()
    detector.eval()
    device = _device_of(detector, device)
    mine = rank_batches(len(rows), batch_size or scoring_batch_size(device), d)
    bar = tqdm(mine, desc="scoring", unit="batch", disable=not (progress and d.lead))
    out = [
        _score_batch(detector, w, gain, kind, amp)
        for w, _ in zip(_read_batches(store, rows, mine, device, workers), bar, strict=True)
    ]
    mine_scores = [z.double().cpu().numpy() for z in out]  # one sync at the end
    parts = dist.all_gather(mine_scores, d)  # rank r holds batches r, r + world, ...
    batches = [parts[k % d.world][k // d.world] for k in range(sum(map(len, parts)))]
    return np.concatenate(batches) if batches else np.empty(0)


def split_frames(
    store: Any,
    split: str | None = "test",
    generators: Sequence[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """The index rows :func:`score_split` scores: a split's real and fake frames.

    Args:
        store: A :class:`gpwave.store.FrameStore`.
        split: "train", "val", "test", or None for every frame.
        generators: Fake generators to include (None: all); real frames always are.
        limit: At most this many frames per folder (seeded sample; None: all).
        seed: Seed of the sample.

    Returns:
        The selected rows of ``store.index``, in store order.
    """
    idx = store.index
    keep = np.ones(len(idx), bool) if split is None else (idx["split"] == split).to_numpy()
    if generators is not None:
        keep = keep & ((idx["label"] == 0) | idx["generator"].isin(list(generators))).to_numpy()
    frames = idx[keep]
    if limit is None or frames.empty:
        return frames
    rng = np.random.default_rng(seed)
    pick = [
        rng.choice(pos, min(len(pos), limit), replace=False)
        for pos in frames.groupby("generator", sort=False).indices.values()
    ]
    return frames.iloc[np.sort(np.concatenate(pick))]


def split_scores(
    detector: torch.nn.Module,
    store: Any,
    split: str | None = "test",
    generators: Sequence[str] | None = None,
    seed: int = 0,
    gain: float = 1.0,
    batch_size: int | None = None,
    progress: bool = False,
    limit: int | None = None,
    **kwargs: Any,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Index rows and fake log-odds of the frames :func:`split_frames` selects.

    Args:
        detector: A trained detector.
        store: A :class:`gpwave.store.FrameStore`.
        split: "train", "val", "test", or None for every frame.
        generators: Fake generators to include (None: all).
        seed: Seed of the ``limit`` sample.
        gain: Multiply test audio by this factor (gain-invariance checks).
        batch_size: Frames per forward pass (None: :func:`scoring_batch_size`).
        progress: Show a progress bar.
        limit: At most this many frames per folder (seeded sample; None: all).
        **kwargs: Passed to :func:`score_frames` (``device``, ``workers``, ``amp``, ``d``).

    Returns:
        ``(frames, scores)``: the store's index rows and their scores, aligned.
    """
    frames = split_frames(store, split, generators, limit, seed)
    rows = frames["row"].to_numpy()
    scores = score_frames(detector, store, rows, batch_size, gain=gain, progress=progress,
                          **kwargs)  # fmt: skip
    return frames, scores


def score_split(
    detector: torch.nn.Module,
    store: Any,
    split: str | None = "test",
    generators: Sequence[str] | None = None,
    seen: Sequence[str] = (),
    n_boot: int = 1000,
    seed: int = 0,
    gain: float = 1.0,
    batch_size: int | None = None,
    progress: bool = False,
    limit: int | None = None,
    pools: dict[str, Sequence[str]] | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Score the real and fake frames of a split and tabulate per generator.

    The one evaluation path: training's test table, ``gpwave evaluate`` and the
    notebooks all come from here (:func:`split_scores`, then
    :func:`gpwave.report.table_from_scores`).
    Every real frame of the split is compared with each generator's frames (no class
    balancing: the EER does not depend on it).

    Notebook: notebooks/04_generalization.py

    Args:
        detector: A trained detector.
        store: A :class:`gpwave.store.FrameStore`.
        split: "train", "val", "test", or None for every frame.
        generators: Fake generators to include (None: all).
        seen: Generators seen in training (excluded from the pooled row).
        n_boot: Bootstrap resamples for the CIs.
        seed: Seed of the bootstrap and of the ``limit`` sample.
        gain: Multiply test audio by this factor (gain-invariance checks).
        batch_size: Frames per forward pass (None: :func:`scoring_batch_size`).
        progress: Show a progress bar.
        limit: At most this many frames per folder (seeded sample; None: all).
        pools: Extra pooled rows (see :func:`gpwave.report.table_from_scores`).
        **kwargs: Passed to :func:`score_frames` (``device``, ``workers``, ``amp``, ``d``).

    Returns:
        DataFrame with :data:`gpwave.report.TABLE_COLUMNS`; the bootstrap runs on the
        scoring device when that is CUDA (:func:`gpwave.metrics.bootstrap_eers`).
    """
    frames, scores = split_scores(
        detector, store, split, generators, seed, gain, batch_size, progress, limit, **kwargs
    )
    device = _device_of(detector, kwargs.get("device"))
    return report.table_from_scores(frames, scores, seen, n_boot, seed, pools, device=device)


def training_test_table(
    detector: torch.nn.Module, store: Any, cfg: TrainConfig, seed: int, device: str, d: dist.Dist
) -> pd.DataFrame | None:
    """A training run's test table, scored by all of its processes; on the lead only.

    Every rank scores its share of the test frames with the lead's weights (broadcast
    first, :func:`gpwave.dist.broadcast_module`), with the run's reader workers
    (:func:`gpwave.frames.loader_workers`), the device's batch size
    (:func:`scoring_batch_size`) and, on CUDA with ``cfg.amp``, float16 autocast with
    a float32 head (:func:`scoring_precision`); the lead gathers the scores in order and
    bootstraps the table on its device. On the CPU the table is bit for bit the one
    process's of :func:`score_split`.

    Notebook: notebooks/03_train.py

    Args:
        detector: The run's detector, best weights loaded on the lead.
        store: The frame store.
        cfg: The run's config (``eval_test``, ``test_generators``, ``limit_test``...).
        seed: The run's seed (bootstrap and ``limit_test`` sample).
        device: This process's device.
        d: This process's place.

    Returns:
        The table on the lead when ``cfg.eval_test``; None otherwise.
    """
    if not cfg.eval_test:
        return None
    dist.broadcast_module(detector, d)
    frames, scores = split_scores(
        detector, store, "test", cfg.test_generators, seed, progress=cfg.progress,
        limit=cfg.limit_test, device=device, workers=loader_workers(cfg, device),
        amp=cfg.amp, d=d,
    )  # fmt: skip
    if not d.lead:
        return None
    return report.table_from_scores(frames, scores, [cfg.train_generator], cfg.n_boot, seed,
                                    device=device)  # fmt: skip


def tree_utterances(
    frames: pd.DataFrame, root: str | Path, utterance_pattern: str | None = None
) -> np.ndarray:
    """The utterance of each frame of a letter-prefixed tree, read from its file names.

    A file and its counterparts in the other folders (the same sentence) share an
    utterance, so a bootstrap over utterances draws them together
    (:func:`gpwave.data.file_table` and the registry's ``utterance_pattern``).

    Args:
        frames: Store index rows (columns folder, file) of frames under ``root``.
        root: The tree's root.
        utterance_pattern: Regex whose first group is the utterance (None: LJSpeech ids).

    Returns:
        Utterance ids aligned with ``frames``.
    """
    from gpwave.data import file_table

    def key(folder: pd.Series, file: pd.Series) -> pd.Series:
        return folder + "/" + file.map(lambda f: Path(f).name)

    files = file_table(root, utterance_pattern)
    utterance = dict(zip(key(files["folder"], files["file"]), files["utterance"], strict=True))
    return key(frames["folder"], frames["file"]).map(utterance).to_numpy()


def score_tree(
    detectors: Mapping[str, torch.nn.Module],
    root: str | Path,
    utterance_pattern: str | None = None,
    by: str = "generator",
    n_boot: int = 1000,
    seed: int = 0,
    limit: int | None = None,
    store_dir: str | Path | None = None,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Per-group tables of several detectors on every frame of a letter-prefixed tree.

    Every detector scores the same frames (all of them, or ``limit`` per folder); the
    fake frames of each value of ``by`` are compared with all real frames of the tree;
    the 95 % intervals resample utterances (:func:`tree_utterances`).

    Args:
        detectors: Name -> detector.
        root: Root of letter-prefixed folders (one real ``A_...`` folder).
        utterance_pattern: Regex whose first group is a file's utterance (None: LJSpeech).
        by: Column of the frames that makes the rows (``generator``, ``folder``...).
        n_boot: Bootstrap resamples of each CI.
        seed: Seed of the ``limit`` sample and of the bootstrap.
        limit: At most this many frames per folder (None: all).
        store_dir: Frame-store location (default: the data module's default).
        batch_size: Frames per forward pass (None: :func:`scoring_batch_size`).

    Returns:
        :data:`gpwave.report.TABLE_COLUMNS` plus ``detector``, detector by detector.
    """
    from gpwave.data import DataConfig
    from gpwave.store import prepare_store

    store = prepare_store(DataConfig(root=root), store_dir=store_dir, progress=False)
    frames = split_frames(store, None, limit=limit, seed=seed)
    frames = frames.assign(utterance=tree_utterances(frames, root, utterance_pattern))
    tables = []
    for name, det in detectors.items():
        scores = score_frames(det, store, frames["row"].to_numpy(), batch_size)
        t = report.table_from_scores(frames, scores, n_boot=n_boot, seed=seed, by=by)
        tables.append(t.assign(detector=name))
    return pd.concat(tables, ignore_index=True)


def score_trees(
    detectors: Mapping[str, torch.nn.Module],
    roots: Mapping[str, str | Path],
    utterance_pattern: str | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`score_tree` on several trees, in one long table with a ``folder`` label.

    Notebook: notebooks/07_robustness.py

    Args:
        detectors: Name -> detector.
        roots: Tree name -> root, e.g. ``{"vctk": ..., "tts": ...}``.
        utterance_pattern: Regex whose first group is a file's utterance.
        **kwargs: Passed to :func:`score_tree` (``by``, ``n_boot``, ``seed``, ``limit``...).

    Returns:
        :func:`score_tree`'s rows plus ``tree`` and ``folder`` (``<tree>/<row name>``,
        ``<tree>/pooled`` for the pooled row).
    """
    tables = [
        score_tree(detectors, root, utterance_pattern, **kwargs).assign(tree=tree)
        for tree, root in roots.items()
    ]
    out = pd.concat(tables, ignore_index=True)
    out.insert(len(report.TABLE_COLUMNS), "tree", out.pop("tree"))
    pooled = out["generator"] == report.POOLED
    out["folder"] = out["tree"] + "/" + out["generator"].where(~pooled, "pooled")
    return out


# --- checkpoints on folders and files -------------------------------------------------
def evaluate_checkpoint(
    checkpoint: str | Path | Any,
    data_dir: str | Path,
    store_dir: str | Path | None = None,
    n_boot: int = 1000,
    device: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Per-folder table of a trained detector on any letter-prefixed folder tree.

    Every frame of every folder is scored; each generator folder is compared with all
    frames of the real folder (``A_...``).

    Args:
        checkpoint: A checkpoint written by :mod:`gpwave.train`, or a loaded detector
            (anything :func:`gpwave.hub.resolve` takes).
        data_dir: Root of letter-prefixed folders.
        store_dir: Frame-store location (default: the data module's default).
        n_boot: Bootstrap resamples for the CIs.
        device: Where to run (default: CUDA if available).
        progress: Progress bars.

    Returns:
        DataFrame with :data:`gpwave.report.TABLE_COLUMNS` (plus the pooled row).
    """
    from gpwave.data import DataConfig
    from gpwave.store import prepare_store

    device = resolve_device(device)
    det = hub.resolve(checkpoint, device)
    cfg = DataConfig(
        root=data_dir,
        sample_rate=det.feature_config.sample_rate,
        seconds=det.n_samples / det.feature_config.sample_rate,
    )
    store = prepare_store(cfg, store_dir=store_dir, progress=progress)
    return score_split(det, store, split=None, n_boot=n_boot, progress=progress)


def inference_speed(detector: Any, n_frames: int = 32, batch_size: int = 32) -> float:
    """Seconds of audio scored per second of wall time (random frames).

    Measured on the device the detector's weights are on (not wherever CUDA is), so the
    number can be labelled with that device.

    Notebook: notebooks/03_train.py

    Args:
        detector: A detector.
        n_frames: Frames to score.
        batch_size: Frames per forward pass.

    Returns:
        Audio seconds per wall second.
    """
    weights = next(iter(detector.parameters()), None)
    device = weights.device if weights is not None else torch.device("cpu")
    x = np.random.default_rng(0).standard_normal((n_frames, detector.n_samples)) * 0.1
    score_waveforms(detector, x[:2], batch_size, device=device)  # warm-up
    t0 = time.perf_counter()
    score_waveforms(detector, x, batch_size, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    audio = n_frames * detector.n_samples / detector.feature_config.sample_rate
    return audio / (time.perf_counter() - t0)
