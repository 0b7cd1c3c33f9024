"""How a model is fitted: by gradient steps, or in closed form on a stream of frames.

A model declares its way in a class attribute ``fitting``
(:data:`gpwave.constants.Fitting`); :data:`FITTERS` maps it to a :class:`Fitter`, so the
training loop (:class:`gpwave.train.Trainer`) never asks which model it trains. A
closed-form model also has ``fit(features, labels, seed)`` (scikit-learn's estimators
declare ``fit`` the same way): :class:`gpwave.models.GMMDetector` does.

Notebook: notebooks/03_train.py
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from gpwave.config import TrainConfig
from gpwave.constants import Fitting, Precision
from gpwave.models import Detector

if TYPE_CHECKING:
    from gpwave.frames import Frames

#: A :class:`gpwave.train.Trainer` (not imported: the trainer imports this module).
Trainer = Any


class Fitter:
    """How a kind of model is fitted; :data:`FITTERS` maps a model's ``fitting`` to one."""

    def epochs(self, cfg: TrainConfig, steps_per_epoch: int) -> int:
        """Epochs to run."""
        raise NotImplementedError

    def stops(self, cfg: TrainConfig, state: dict[str, Any]) -> str | None:
        """Why training stops before the next epoch (None: it goes on)."""
        return None

    def wrap(self, t: Trainer) -> torch.nn.Module:
        """The module the epochs call (the model itself unless wrapped for training)."""
        return t.det.model

    def fit_epoch(self, t: Trainer, epoch: int) -> float:
        """Fit one epoch; returns the training loss (NaN where there is none)."""
        raise NotImplementedError


class GradientFitter(Fitter):
    """Adam steps on cross-entropy, ``epochs`` or ``max_steps``; DDP and compile apply."""

    def epochs(self, cfg: TrainConfig, steps_per_epoch: int) -> int:
        """``epochs``, or enough for ``max_steps`` when a step budget is set."""
        if cfg.max_steps is None:
            return cfg.epochs
        return -(-cfg.max_steps // max(1, steps_per_epoch))

    def stops(self, cfg: TrainConfig, state: dict[str, Any]) -> str | None:
        """``max_steps`` or ``patience`` once the budget or the patience is used up."""
        if cfg.max_steps is not None and state["step"] >= cfg.max_steps:
            return "max_steps"
        best = state["best"].get("epoch")
        if cfg.patience is not None and best is not None and state["epoch"] - best >= cfg.patience:
            return "patience"
        return None

    def wrap(self, t: Trainer) -> torch.nn.Module:
        """DistributedDataParallel across ranks, then ``torch.compile`` if asked for."""
        net: torch.nn.Module = t.det.model
        if t.d.world > 1:
            ids = [t.device] if t.device.startswith("cuda") else None
            net = torch.nn.parallel.DistributedDataParallel(t.det.model, device_ids=ids)
        return torch.compile(net) if t.cfg.compile else net

    def fit_epoch(self, t: Trainer, epoch: int) -> float:
        """One pass of gradient steps (:meth:`Trainer.gradient_epoch`)."""
        left = None if t.cfg.max_steps is None else t.cfg.max_steps - t.state["step"]
        loss, steps = t.gradient_epoch(epoch, left)
        t.state["step"] += steps
        return loss


#: Frames whose features are computed at once when a closed-form model gathers its
#: training data (an LFCC frame's intermediates take ~0.4 MB: all of WaveFake at once
#: would not fit).
CHUNK = 256


class ClosedFormFitter(Fitter):
    """One pass: the model's ``fit(features, labels, seed)`` on every training frame."""

    def epochs(self, cfg: TrainConfig, steps_per_epoch: int) -> int:
        """One."""
        return 1

    def fit_epoch(self, t: Trainer, epoch: int) -> float:
        """Gather the features ``CHUNK`` frames at a time, then fit; no training loss."""
        fit_closed_form(t.det, t.train, t.seed)
        return float("nan")


def fit_closed_form(det: Detector, data: Frames, seed: int, chunk: int = CHUNK) -> None:
    """Fit a closed-form model on every training frame, ``chunk`` frames of features at a time.

    Args:
        det: The detector (its model has ``fit(features, labels, seed)``).
        data: The training frames.
        seed: The run's seed.
        chunk: Frames per feature computation.
    """
    parts = [data.features(np.arange(i, min(i + chunk, len(data))))
             for i in range(0, len(data), chunk)]  # fmt: skip
    feats = torch.cat([f.cpu() for f, _ in parts])
    labels = torch.cat([y.cpu() for _, y in parts])
    det.model.fit(feats, labels, seed=seed)


def step_autocast(device: str, amp: bool, precision: Precision) -> torch.autocast:
    """The autocast context of a training step: float16 on CUDA, bfloat16 on the CPU.

    On CUDA ``amp`` turns float16 autocast on (with a GradScaler); on the CPU
    ``precision="bf16"`` turns bfloat16 autocast on: oneDNN runs the convolutions and
    matmuls in bfloat16 (twice the throughput of float32 on AVX-512 BF16, half the
    memory traffic) while weights, gradients and the optimiser stay float32.

    Args:
        device: The training device (``cpu``, ``cuda:0``...).
        amp: The config's ``amp``.
        precision: The config's ``precision`` (:data:`gpwave.constants.Precision`).

    Returns:
        The (possibly disabled) autocast context.

    Example:
        >>> step_autocast("cpu", amp=True, precision="bf16").fast_dtype
        torch.bfloat16
    """
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.float16, enabled=amp)
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


#: The fitter of each kind of model (:data:`gpwave.constants.Fitting`).
FITTERS: dict[Fitting, Fitter] = {"gradient": GradientFitter(), "closed-form": ClosedFormFitter()}
