"""The few collectives the ensemble engine needs, and single-process fallbacks.

Every function works unchanged in a single process (no process group): then it only calls
the local code. With a process group (gloo on CPU, NCCL on GPU) the tensors of a reduction
live on ``device`` (NCCL reduces device tensors only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist

from hens.forecast.errors import HensError

T = TypeVar("T")


def distributed() -> bool:
    """Whether a process group of more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def agree(fn: Callable[[], T], *, root_only: bool = False) -> T | None:
    """Run ``fn`` (on every rank, or on rank 0 only with ``root_only``) and agree on failure.

    If ``fn`` raises a :class:`HensError` on any rank, every rank raises a ``HensError`` of
    that type and message (the lowest failing rank's), so no rank is left waiting in a later
    collective when another one found bad input. Other exceptions are bugs: they propagate
    from their rank and the launcher (torchrun, srun) stops the others.

    Returns
    -------
    This rank's return value of ``fn`` (``None`` where it did not run).
    """
    if not distributed():
        return fn()
    error, value = None, None
    if not root_only or dist.get_rank() == 0:
        try:
            value = fn()
        except HensError as err:
            error = (type(err), str(err))
    outcomes: list = [None] * dist.get_world_size()
    dist.all_gather_object(outcomes, error)
    for failure in outcomes:
        if failure is not None:
            kind, message = failure
            raise kind(message)
    return value


def share(value: T) -> T:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if not distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(value: int, device: torch.device) -> int:
    """Sum of ``value`` over ranks."""
    if not distributed():
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t)
    return int(t.item())


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if distributed():
        dist.barrier()
