"""Multi-process training helpers: the process group, barriers and reductions.

Under ``torchrun`` (``WORLD_SIZE`` > 1) :func:`setup` joins the process group (NCCL on
GPU, gloo on CPU) with a long timeout; a single process needs none of it, and every
helper here is then a no-op, so the training loop reads the same either way.

Notebook: notebooks/03_train.py
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as tdist


@dataclass(frozen=True)
class Dist:
    """Where this process stands in a (possibly one-process) run.

    Attributes:
        rank: Global rank.
        world: Number of processes.
        local_rank: Rank on this node (the CUDA device index).

    Example:
        >>> Dist().lead, Dist(rank=1, world=2).lead
        (True, False)
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def lead(self) -> bool:
        """The process that writes files (rank 0)."""
        return self.rank == 0


#: Process-group timeout (``$GPWAVE_DIST_TIMEOUT`` seconds overrides it). Rank 0 alone
#: decodes the frame store on a first run (minutes for all of WaveFake) while the other
#: ranks wait in a barrier: NCCL's 10-minute default watchdog would kill such a run.
#: (The test split is scored by all ranks, :func:`gpwave.evaluate.training_test_table`.)
DIST_TIMEOUT = timedelta(hours=2)


def timeout() -> timedelta:
    """The process-group timeout: ``$GPWAVE_DIST_TIMEOUT`` seconds, else :data:`DIST_TIMEOUT`.

    Raises:
        ValueError: The variable is not a number.
    """
    text = os.environ.get("GPWAVE_DIST_TIMEOUT")
    if not text:
        return DIST_TIMEOUT
    try:
        return timedelta(seconds=float(text))
    except ValueError as err:
        raise ValueError(f"GPWAVE_DIST_TIMEOUT={text!r} is not a number of seconds") from err


def setup(device: str) -> Dist:
    """Join the process group when ``WORLD_SIZE`` > 1 (once per process).

    Args:
        device: The run's device (``cuda...`` chooses NCCL, anything else gloo).

    Returns:
        This process's :class:`Dist`.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not tdist.is_initialized():
        if device.startswith("cuda"):  # bind the group to this rank's GPU from the start
            tdist.init_process_group(
                "nccl", timeout=timeout(), device_id=torch.device("cuda", local)
            )
        else:
            tdist.init_process_group("gloo", timeout=timeout())
    return Dist(tdist.get_rank(), tdist.get_world_size(), local)


def teardown() -> None:
    """Leave the process group, if this process joined one (at the end of a run)."""
    if tdist.is_initialized():
        tdist.destroy_process_group()


def env_lead() -> bool:
    """Is this the lead process, as ``torchrun``'s ``RANK`` says (before :func:`setup`)?"""
    return int(os.environ.get("RANK", "0")) == 0


def is_follower() -> bool:
    """Is this a process of a joined group other than rank 0?"""
    return tdist.is_initialized() and tdist.get_rank() != 0


def barrier(d: Dist) -> None:
    """Wait for every process (no-op in a one-process run)."""
    if d.world > 1:
        tdist.barrier()


def from_lead(obj: Any, d: Dist) -> Any:
    """The lead's ``obj`` on every process (``obj`` itself in a one-process run).

    Decisions taken from numbers that each rank could compute slightly differently (the
    validation metrics, hence the best epoch and early stopping) are taken once, by the
    lead, so the ranks can never disagree and wait for each other forever.

    Args:
        obj: A picklable object (the lead's is sent; the others' may be None).
        d: This process's place.

    Returns:
        The lead's object.

    Example:
        >>> from_lead({"val_eer": 0.1}, Dist())
        {'val_eer': 0.1}
    """
    if d.world <= 1:
        return obj
    box = [obj if d.lead else None]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(x: torch.Tensor, d: Dist) -> torch.Tensor:
    """The mean of ``x`` over the processes (``x`` itself in a one-process run).

    Args:
        x: A tensor of the same shape on every process.
        d: This process's place.

    Returns:
        The mean (a new tensor when reduced).
    """
    if d.world <= 1:
        return x
    x = x.clone()
    tdist.all_reduce(x)
    return x / d.world


def broadcast_module(module: torch.nn.Module, d: Dist) -> None:
    """Give every process the lead's parameters and buffers, in place (no-op alone).

    Args:
        module: The same architecture on every process (e.g. the detector whose best
            weights only the lead has loaded).
        d: This process's place.
    """
    if d.world <= 1:
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            buf = t.detach().contiguous()  # channels-last weights travel as plain ones
            tdist.broadcast(buf, src=0)
            t.copy_(buf)


def all_gather(obj: Any, d: Dist) -> list[Any]:
    """Every process's ``obj``, in rank order, on every process (``[obj]`` alone).

    Args:
        obj: A picklable object (e.g. this rank's scores).
        d: This process's place.

    Returns:
        The list of the ``world`` objects.

    Example:
        >>> all_gather([1.5], Dist())
        [[1.5]]
    """
    if d.world <= 1:
        return [obj]
    out: list[Any] = [None] * d.world
    tdist.all_gather_object(out, obj)
    return out
