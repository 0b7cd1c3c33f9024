"""Training: real vs one generator, seeded, checkpointed every epoch, resumable, DDP.

One run trains a :class:`gpwave.models.Detector` on the frames of one real source and one
generator (frames from :mod:`gpwave.frames`, features computed on the device inside the
detector), validates every epoch, keeps the best checkpoint by validation EER (verdicts
calibrated on its validation scores) and at the end scores the test split of every
generator. A YAML config whose list-valued keys are expanded to their cartesian product
describes a grid of runs (like the reference's grid search); each run x seed writes the
files :class:`gpwave.runs.SeedRun` names.

Where each job lives: the config and its defaults in :mod:`gpwave.config`
(:class:`~gpwave.config.TrainConfig`), run folders, checkpoints and provenance in
:mod:`gpwave.runs`, frames, loaders and the normaliser fit in :mod:`gpwave.frames`, the
process group in :mod:`gpwave.dist`, detectors by name or path in :mod:`gpwave.hub`.
This module holds the loop: a :class:`Trainer` per run and seed; how each epoch fits
the model is the model's own choice (its ``fitting``: gradient steps, or a closed-form
fit on a stream of frames such as the GMMs'), carried out by :mod:`gpwave.fitting`.

Reproducibility: weights are initialised from ``seed``; the shuffling and dropout of
epoch ``e`` are seeded from ``(seed, e)`` alone, so a run resumed after epoch k ends with
the same weights as an uninterrupted one (on the CPU; CUDA kernels may not be
bit-deterministic). Under ``torchrun`` the model is wrapped in DistributedDataParallel
(NCCL on GPU, gloo on CPU) with SyncBatchNorm; every step's global batch is the same set
of frames as in a single-process run, split across ranks. ``--resume`` refuses settings
outside :data:`gpwave.config.RESUMABLE` that differ from the checkpoint's and applies
those inside it.

Fine-tuning and augmentation: ``init`` starts a run from a released or published model
or a checkpoint (:func:`initial_detector`, through :func:`gpwave.hub.resolve`),
``augment`` perturbs the training waveforms of both classes on the fly
(:func:`gpwave.frames.augment_batch`), ``freeze`` keeps parameters fixed, and
``publish`` copies the best checkpoint with its provenance to ``$GPWAVE_DATA/models``
as a named model (:func:`gpwave.hub.publish`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm.auto import tqdm

from gpwave import dist, evaluate, frames, hub, metrics, report, runs
from gpwave.config import (
    TrainConfig,
    apply_overrides,
    expand_grid,
    load_yaml,
    resolve_device,
    resume_changes,
    run_name,
)
from gpwave.errors import CheckpointError, ConfigError, DataError
from gpwave.fitting import FITTERS, Fitter, step_autocast
from gpwave.frames import Frames
from gpwave.models import Detector, count_parameters, load_checkpoint, log_odds, sync_batchnorm
from gpwave.runs import ConvergenceWarning, SeedRun

__all__ = ["ConvergenceWarning", "Trainer", "read_config", "run_config", "train_one"]


# --- configs and the starting detector ------------------------------------------------
def read_config(
    path: str | Path | dict[str, Any], overrides: dict[str, Any] | None = None
) -> list[tuple[str, TrainConfig]]:
    """Read, override, expand and validate a training config, before any data work.

    Notebook: notebooks/03_train.py

    Args:
        path: The YAML file (or an already loaded dict).
        overrides: ``key=value`` overrides (see :func:`apply_overrides`).

    Returns:
        ``(run name, config)`` per grid point (the name is empty without a grid).

    Raises:
        ConfigError: A missing or invalid file, an unknown key, a bad value.
    """
    raw = path if isinstance(path, dict) else load_yaml(Path(path))
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a training config is a mapping of keys to values")
    points = []
    for point in expand_grid(apply_overrides(raw, overrides)):
        name = run_name(point.pop("_grid"))
        try:
            points.append((name, check_model(TrainConfig.from_dict(point))))
        except ConfigError as err:
            where = f"{path}" if not isinstance(path, dict) else "config"
            raise ConfigError(f"{where}{f' (grid point {name})' if name else ''}: {err}") from None
    return points


def check_model(cfg: TrainConfig) -> TrainConfig:
    """Build the run's detector once, so bad ``model_kwargs`` fail before any data work.

    Args:
        cfg: A training config.

    Returns:
        ``cfg``.

    Raises:
        ConfigError: The model refuses its ``model_kwargs`` (or the feature settings).
    """
    if cfg.init is not None:
        _check_init(cfg, _init_spec(cfg.init))
        return cfg
    try:
        det = Detector(cfg.feature_config, cfg.model, cfg.n_samples, cfg.model_kwargs)
    except (TypeError, ValueError, CheckpointError) as err:
        raise ConfigError(
            f"model={cfg.model!r}, model_kwargs={cfg.model_kwargs!r}: {err}"
        ) from None
    _check_freeze(cfg, det)
    return cfg


def _init_spec(init: str) -> dict[str, Any]:
    """``init``'s detector spec; a missing or unusable one is a ConfigError."""
    try:
        return hub.spec(init)
    except CheckpointError as err:
        raise ConfigError(f"init={init!r}: {err}") from None


def _check_init(cfg: TrainConfig, spec: dict[str, Any]) -> None:
    """Refuse ``feature``/``model``/``model_kwargs``/frame settings that contradict ``init``."""
    fdict = spec["feature"]
    given = {"sample_rate": cfg.sample_rate, **cfg.feature}
    clash = {k: (v, fdict.get(k)) for k, v in given.items() if fdict.get(k) != v}
    if cfg.model != spec["model"]:
        clash["model"] = (cfg.model, spec["model"])
    if cfg.model_kwargs and cfg.model_kwargs != spec.get("model_kwargs", {}):
        clash["model_kwargs"] = (cfg.model_kwargs, spec.get("model_kwargs"))
    if cfg.n_samples != spec["n_samples"]:
        clash["seconds"] = (cfg.seconds, spec["n_samples"] / fdict["sample_rate"])
    if clash:
        what = ", ".join(f"{k}={a!r} but init has {b!r}" for k, (a, b) in clash.items())
        raise ConfigError(f"init={cfg.init!r} conflicts with the config: {what}")
    _check_freeze(cfg, Detector.from_spec(spec))


def _check_freeze(cfg: TrainConfig, det: Detector) -> None:
    names = [n for n, _ in det.model.named_parameters()]
    for prefix in cfg.freeze:
        if not any(_matches(n, prefix) for n in names):
            raise ConfigError(
                f"freeze={prefix!r}: no parameter of {cfg.model} starts with it "
                f"(its parameters: {', '.join(names[:6])}, ...)"
            )


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def initial_detector(cfg: TrainConfig, n_samples: int) -> tuple[Detector, str | None]:
    """The detector a run starts from: random (seeded by the caller) or ``init``'s weights.

    Args:
        cfg: The run's config.
        n_samples: Samples per frame.

    Returns:
        ``(detector, fit)``: how its normaliser still has to be fitted on the training
        frames: ``"bands"`` (per band: a random start, or an ``init`` with per-band
        statistics), ``"global"`` (one mean/std: a paper model) or None (an ``init``
        whose ``level_norm`` matches: its normaliser is kept). Before a refit the
        normaliser is reset.
    """
    from gpwave.transforms import Normalizer

    if cfg.init is None:
        det = Detector(cfg.feature_config, cfg.model, n_samples, cfg.model_kwargs, cfg.level_norm)
        return det, "bands"
    det = hub.resolve(cfg.init)
    if det.level_norm == cfg.level_norm:
        return det.train(), None
    fit = "global" if _is_global(det) else "bands"
    det.level_norm = cfg.level_norm
    det.normalizer = Normalizer(det.input_shape)
    return det.train(), fit


def teacher_targets(cfg: TrainConfig, store: Any, rows: np.ndarray, device: str) -> torch.Tensor:
    """Soft targets of ``distill``: the init model's class probabilities on clean frames.

    Args:
        cfg: The run's config (``init`` set).
        store: The frame store.
        rows: Training rows.
        device: Where to compute.

    Returns:
        ``(len(rows), 2)`` probabilities (real, fake), float32, on ``device``.
    """
    init = hub.resolve(cfg.init, device)
    p = metrics.probability(evaluate.score_frames(init, store, rows, device=device))  # softmax
    return torch.as_tensor(np.stack([1 - p, p], axis=1), dtype=torch.float32, device=device)


def _is_global(det: Detector) -> bool:
    """Does the detector normalise with one scalar mean/std (a paper model)?"""
    mean = det.normalizer.mean
    return bool(det.normalizer.count > 0) and bool((mean == mean.flatten()[0]).all())


def run_config(
    path: str | Path | dict[str, Any],
    out: str | Path,
    resume: bool = False,
    overrides: dict[str, str] | None = None,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Train every grid point x seed of a YAML config.

    Every grid point is validated before the first run starts, and the run holds
    ``out`` (see :func:`gpwave.runs.own_folder`) until it ends. A folder that already holds a run
    is refused unless ``resume`` or ``overwrite`` says what to do with it, and
    ``resume`` into a folder without any checkpoint is refused (nothing to resume).

    Args:
        path: The YAML file (or an already loaded dict).
        out: Output folder; runs go to ``out/<grid point>/seed<k>``.
        resume: Continue interrupted runs from their ``last.pt``.
        overrides: ``key=value`` overrides (see :func:`apply_overrides`).
        overwrite: Train afresh over runs already in ``out`` (and replace a published
            model of the same name).

    Returns:
        One summary dict per run (run folder, seed, best epoch and val EER, pooled test EER).
    """
    points = read_config(path, overrides)
    if len(points) > 1 and any(cfg.publish for _, cfg in points):
        raise ConfigError(f"{path}: publish names one model; the config has {len(points)} runs")
    run_dirs = [runs.Run.folder(Path(out) / n).seed(s).dir for n, c in points for s in c.seeds]
    runs.check_out(Path(out), run_dirs, resume, overwrite)
    for _, cfg in points:
        if cfg.publish:
            hub.refuse_taken(cfg.publish, overwrite)
    results = []
    try:
        with runs.own_folder(out, lead=dist.env_lead()):
            for name, cfg in points:
                for seed in cfg.seeds:
                    run_dir = runs.Run.folder(Path(out) / name).seed(seed).dir
                    m = train_one(cfg, run_dir, seed, resume=resume)
                    if dist.is_follower():
                        continue
                    results.append(runs.summary(cfg, run_dir, seed, m))
                    if cfg.publish and seed == cfg.seeds[0]:
                        command = runs.command_line(path, out, overrides)
                        prov = runs.provenance(cfg, m, command)
                        dest = hub.publish(run_dir / "best.pt", cfg.publish, prov, overwrite)
                        results[-1]["published"] = str(dest)
    finally:
        dist.teardown()
    return results


# --- one run: the trainer ---------------------------------------------------------------
def train_one(
    cfg: TrainConfig,
    out_dir: str | Path,
    seed: int = 0,
    resume: bool = False,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train one detector (one seed) and write its checkpoints and metrics.

    The run holds ``out_dir`` (:func:`gpwave.runs.own_folder`) while it works. ``resume``
    refuses a config that differs from the checkpoint's outside
    :data:`gpwave.config.RESUMABLE`; resumable changes (e.g. ``lr``, ``epochs``) take
    effect from the next epoch and are recorded in the checkpoints, ``config.yaml`` and
    ``metrics.json`` (``resumes``).

    Notebook: notebooks/03_train.py

    Args:
        cfg: The run's configuration.
        out_dir: Folder for the files :class:`gpwave.runs.SeedRun` names.
        seed: Seed of initialisation, shuffling and dropout.
        resume: Continue from ``out_dir/last.pt`` if it exists.
        callback: Called as ``callback(epoch, metrics)`` after each epoch's checkpoint is
            written (progress hooks; tests use it to interrupt a run).

    Returns:
        The metrics dict also written to ``metrics.json``.

    Raises:
        ConfigError: Another run holds ``out_dir``, or ``resume`` would change a
            setting that is not resumable.
    """
    files = SeedRun(out_dir)
    if resume and files.last.is_file():  # before any data work
        resume_changes(load_checkpoint(files.last, map_location="cpu").get("config", {}), cfg,
                       files.last)  # fmt: skip
    with runs.own_folder(files.dir, lead=dist.env_lead()):
        return Trainer(cfg, files, seed, callback).run(resume)


class Trainer:
    """One run of one seed while it trains: its data, detector, optimiser and state.

    Notebook: notebooks/03_train.py

    Args:
        cfg: The run's configuration.
        files: Where the run's files go.
        seed: Seed of initialisation, shuffling and dropout.
        callback: Called as ``callback(epoch, metrics)`` after each epoch.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        files: SeedRun,
        seed: int,
        callback: Callable[[int, dict[str, Any]], None] | None = None,
    ):
        self.cfg, self.files, self.seed, self.callback = cfg, files, seed, callback
        self.device = resolve_device(cfg.device)
        self.d = dist.setup(self.device)
        if self.device.startswith("cuda") and self.d.world > 1:
            self.device = f"cuda:{self.d.local_rank}"
            torch.cuda.set_device(self.device)
        if self.device.startswith("cuda"):  # fixed frame shapes: let cuDNN pick its kernels
            torch.backends.cudnn.benchmark = True
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.progress = cfg.progress and self.d.lead
        self.workers = frames.loader_workers(cfg, self.device)
        self.amp = cfg.amp and self.device.startswith("cuda")
        self.state: dict[str, Any] = {"epoch": 0, "step": 0, "best": {"epoch": None}, "history": []}

    def run(self, resume: bool = False) -> dict[str, Any]:
        """Prepare, fit epoch by epoch (checkpointing each), then score and write metrics.

        Args:
            resume: Continue from ``last.pt`` if it exists.

        Returns:
            The run's metrics.
        """
        self.files.dir.mkdir(parents=True, exist_ok=True)
        t_start, commit = time.perf_counter(), runs.git_commit()  # the code this run starts with
        self.store = frames.open_store(self.cfg, self.d, self.progress)
        t_train = time.perf_counter()  # training time: normaliser fit, features, epochs
        self._select_rows()
        self._prepare(resume and self.files.last.is_file())
        fitter = FITTERS[self.det.fitting]
        per_epoch = len(self.batches(0))
        epochs = fitter.epochs(self.cfg, per_epoch)
        for epoch in tqdm(range(self.state["epoch"], epochs), desc="epochs",
                          disable=not self.progress):  # fmt: skip
            if fitter.stops(self.cfg, self.state):
                break
            self._epoch(fitter, epoch)
        train_seconds = time.perf_counter() - t_train
        self.state["stopped"] = fitter.stops(self.cfg, self.state) or "epochs"
        times = {"train_seconds": train_seconds, "total_seconds": time.perf_counter() - t_start}
        return self._finish(commit, times)

    def batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches of training positions in ``epoch``."""
        return frames.batch_positions(len(self.train_rows), self.cfg.batch_size, self.seed,
                                      epoch, self.d)  # fmt: skip

    def _select_rows(self) -> None:
        cfg, store = self.cfg, self.store
        self.train_rows = frames.select_rows(cfg, store, "train", cfg.limit_train)
        self.val_rows = frames.select_rows(cfg, store, "val", cfg.limit_val)
        for name, rows in (("train", self.train_rows), ("val", self.val_rows)):
            labels = set(store.index["label"].to_numpy()[rows])
            if labels != {0, 1}:
                missing = "both classes" if not labels else ("real" if 1 in labels else "fake")
                raise DataError(
                    f"{cfg.data_dir}: the {name} split has no frames of {missing} "
                    f"({cfg.real} vs {cfg.train_generator}); check split/only_test_folders"
                )

    def _prepare(self, resume: bool) -> None:
        """Detector, optimiser, resumed or fresh state, normaliser, frames, wrapped model."""
        cfg, device = self.cfg, self.device
        self.targets = None
        if cfg.distill:
            self.targets = teacher_targets(cfg, self.store, self.train_rows, device)
        torch.manual_seed(self.seed)
        self.det, fit = initial_detector(cfg, self.store.frame_length)
        self.det.to(device)
        self.opt = torch.optim.Adam(_trainable(self.det.model, cfg.freeze), lr=cfg.lr,
                                    weight_decay=cfg.weight_decay)  # fmt: skip
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        if resume:
            self._restore()
        elif fit is not None:
            frames.fit_normalizer(self.det, self.store, self.train_rows, device,
                                  workers=self.workers, cache=cfg.cache_features)  # fmt: skip
            if fit == "global":
                from gpwave.pretrained import globalize_normalization

                globalize_normalization(self.det)
        if self.d.world > 1:
            self.det.model = sync_batchnorm(self.det.model, device)
        cache = cfg.cache_features
        rows = self.train_rows
        self.train = Frames(self.store, rows, self.det, device, cache and not cfg.augment)
        self.val = Frames(self.store, self.val_rows, self.det, device, cache)
        self.net = FITTERS[self.det.fitting].wrap(self)

    def _restore(self) -> None:
        last = self.files.last
        ckpt = runs.restore(last, self.det, self.opt, self.scaler, self.device)
        self.state = {k: ckpt[k] for k in ("epoch", "best", "history")}
        changed = resume_changes(ckpt.get("config", {}), self.cfg, last)
        self.state["resumes"] = [*ckpt.get("resumes", []),
                                 {"epoch": self.state["epoch"], "changed": changed}]  # fmt: skip
        for group in self.opt.param_groups:  # resumable optimiser settings apply for real
            group.update(lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.state["step"] = int(ckpt.get("step", 0))

    def _epoch(self, fitter: Fitter, epoch: int) -> None:
        """Fit one epoch, validate, checkpoint (best and last), call the callback."""
        t0 = time.perf_counter()
        torch.manual_seed(self.seed * 1_000_003 + 7919 * (epoch + 1) + self.d.rank)
        self.det.model.train()
        _freeze_modes(self.det.model, self.cfg.freeze, self.cfg.freeze_batchnorm)
        train_loss = fitter.fit_epoch(self, epoch)
        # the lead validates and every rank takes its numbers: one best epoch, one stop
        val = _validate(self.det.model, self.val, 64, self.workers) if self.d.lead else None
        m = {"epoch": epoch + 1, "train_loss": train_loss, **dist.from_lead(val, self.d)}
        calibration, m["seconds"] = m.pop("calibration", None), time.perf_counter() - t0
        self.state["history"].append(m)
        self.state["epoch"] = epoch + 1
        is_best = _better(m, self.state["best"], self.cfg.min_delta)
        if is_best:
            self.state["best"] = {k: m[k] for k in ("epoch", "val_eer", "val_loss", "val_acc")}
            self.state["best"]["calibration"] = calibration
            self.det.calibration = calibration  # saved in best.pt's spec: verdicts use it
        if self.d.lead:
            self._save(is_best)
        dist.barrier(self.d)
        if self.callback is not None:
            self.callback(epoch + 1, m)

    def _save(self, is_best: bool) -> None:
        ck = runs.checkpoint(self.det, self.cfg, self.seed, self.state)
        if is_best:
            runs.save(ck, self.files.best)
        resume = {"optimizer": self.opt.state_dict(), "scaler": self.scaler.state_dict(),
                  "rng": torch.get_rng_state()}  # fmt: skip
        runs.save({**ck, **resume}, self.files.last)

    def gradient_epoch(self, epoch: int, limit: int | None = None) -> tuple[float, int]:
        """One pass of gradient steps over the training frames (at most ``limit`` steps).

        With ``targets`` (the teacher's probabilities per training position, ``distill``)
        the loss mixes cross-entropy and the KL divergence from them. The batch losses
        stay on the device (no per-step sync): they are gathered once at the end, and
        read every :data:`LOG_EVERY` steps for the progress bar.

        Returns:
            The mean loss of the global batches and the number of steps.
        """
        cfg, d = self.cfg, self.d
        losses: list[torch.Tensor] = []
        batches = self.batches(epoch)[:limit]
        bar = tqdm(total=len(batches), desc=f"epoch {epoch + 1}", leave=False,
                   disable=not self.progress)  # fmt: skip
        augment = self._augment(epoch) if cfg.augment else None
        for idx, (x, y) in zip(batches, self.train.stream(batches, self.workers, augment),
                               strict=True):  # fmt: skip
            loss = self._step(x, y, idx)
            losses.append(loss.detach())
            bar.update()
            if self.progress and len(losses) % LOG_EVERY == 0:
                bar.set_postfix(loss=f"{float(torch.stack(losses[-LOG_EVERY:]).mean()):.3f}")
        bar.close()
        if not losses:
            return float("nan"), 0
        total = dist.mean_over_ranks(torch.stack(losses).double(), d)  # the global batch's loss
        return float(total.mean()), len(losses)

    def _augment(self, epoch: int) -> Callable[[int, np.ndarray], np.ndarray]:
        sr, cfg = self.store.sample_rate, self.cfg

        def augment(k: int, x: np.ndarray) -> np.ndarray:
            return frames.augment_batch(x, cfg.augment, sr, self.seed, epoch, k, self.d.rank)

        return augment

    def _step(self, x: torch.Tensor, y: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
        """One optimiser step on a batch; returns its loss."""
        with step_autocast(self.device, self.amp, self.cfg.precision):  # bf16 on CPU if asked
            z = self.net(x).float()
            loss = F.cross_entropy(z, y)
            if self.targets is not None:
                target = self.targets[torch.as_tensor(idx)]
                kl = F.kl_div(F.log_softmax(z, -1), target, reduction="batchmean")
                loss = (1 - self.cfg.distill) * loss + self.cfg.distill * kl
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        return loss

    def _finish(self, commit: str, times: dict[str, float]) -> dict[str, Any]:
        """Reload the best weights, score the test split, write config.yaml + metrics.json."""
        cfg, det, d = self.cfg, self.det, self.d
        if d.lead:
            best = load_checkpoint(self.files.best, self.device)
            det.load_state_dict(best["model"], strict=False)
        det.eval()
        data_hash = runs.data_manifest_hash(self.store, self.train_rows)
        metrics: dict[str, Any] = {
            "seed": self.seed, "model": cfg.model, "feature": det.feature_config.to_dict(),
            "n_parameters": count_parameters(det.model), "input_shape": list(det.input_shape),
            "n_train_frames": int(len(self.train_rows)), "device": self.device,
            "world_size": d.world, "best": self.state["best"],
            "history": self.state["history"], "resumes": self.state.get("resumes", []),
            "steps": self.state["step"], "stopped": self.state["stopped"],
            **runs.convergence_check(self.state["best"], cfg, self.files.dir, d.lead),
            **times, "git_commit": commit, "data_manifest_hash": data_hash,
        }  # fmt: skip
        table = evaluate.training_test_table(det, self.store, cfg, self.seed, self.device, d)
        if table is not None:  # the lead's, scored by every rank (cfg.eval_test)
            report.save_table(table, self.files.test_table)
            metrics["test"] = json.loads(table.to_json(orient="records"))
        if d.lead:
            conf = {**cfg.to_dict(), "seed": self.seed, "git_commit": commit,
                    "data_manifest_hash": data_hash}  # fmt: skip
            runs.write_text(self.files.config, yaml.safe_dump(conf, sort_keys=False))
            runs.write_text(self.files.metrics, report.to_json(metrics))
        return metrics


# --- helpers of the loop ----------------------------------------------------------------
def _validate(
    model: torch.nn.Module, frames: Frames, batch: int = 64, workers: int = 0
) -> dict[str, float]:
    model.eval()
    logits = []
    batches = [np.arange(i, min(i + batch, len(frames))) for i in range(0, len(frames), batch)]
    with torch.no_grad():
        for f, _ in frames.stream(batches, workers):
            logits.append(model(f).float())
    z = torch.cat([z.cpu() for z in logits])  # one sync for the whole split
    model.train()
    y = frames.labels
    s = log_odds(z).double().numpy()  # not the softmax: it would tie the frames it is sure of
    both = 0 < int(y.sum()) < len(y)
    return {
        "val_loss": float(F.cross_entropy(z, y)),
        "val_acc": metrics.accuracy(y.numpy(), s),
        "val_eer": metrics.eer(y.numpy(), s) if both else float("nan"),
        "calibration": metrics.platt_calibration(y.numpy(), s),
    }


def _better(m: dict[str, float], best: dict[str, Any], min_delta: float = 0.0) -> bool:
    """Lower validation EER by more than ``min_delta``, or no worse EER and lower loss."""
    if best.get("epoch") is None:
        return True
    eer_new = m["val_eer"] if m["val_eer"] == m["val_eer"] else 1.0
    eer_old = best["val_eer"] if best["val_eer"] == best["val_eer"] else 1.0
    if eer_new < eer_old - min_delta:
        return True
    return eer_new <= eer_old and m["val_loss"] < best["val_loss"] - min_delta


def _trainable(model: torch.nn.Module, freeze: Sequence[str]) -> list[torch.nn.Parameter]:
    """The parameters outside ``freeze`` (those inside get ``requires_grad=False``)."""
    out = []
    for name, p in model.named_parameters():
        frozen = any(_matches(name, prefix) for prefix in freeze)
        p.requires_grad_(not frozen)
        if not frozen:
            out.append(p)
    return out


def _freeze_modes(model: torch.nn.Module, freeze: Sequence[str], batchnorm: bool = False) -> None:
    """Eval mode for the modules under ``freeze`` (and every BatchNorm if ``batchnorm``)."""
    for name, module in model.named_modules():
        is_bn = isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
        if any(_matches(name, prefix) for prefix in freeze) or (batchnorm and is_bn):
            module.eval()


#: Steps between progress-bar loss updates (each is one device-to-host sync).
LOG_EVERY = 50
