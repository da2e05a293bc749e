"""Process setup for training: torch.distributed from torchrun or SLURM, CPU allocator tuning.

Launchers: ``torchrun --nproc_per_node=N ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``. Under SLURM (``srun -n N hens train ...``) the same
variables are derived from ``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``, the first
host of ``SLURM_JOB_NODELIST`` (127.0.0.1 on one node) and a port from ``SLURM_JOB_ID`` (so
concurrent jobs on a node do not collide). The backend is NCCL with CUDA, gloo otherwise.

Every collective gives up after :func:`dist_timeout` (``HENS_DIST_TIMEOUT_S``, default
:data:`DEFAULT_DIST_TIMEOUT_S`): a rank whose peer died fails instead of waiting forever, even
where no launcher stops it.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from hens.forecast.errors import ConfigError


@dataclass(frozen=True)
class Distributed:
    """Where this process sits: ``rank`` of ``world_size``, its device and the backend."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = "none"

    @property
    def main(self) -> bool:
        return self.rank == 0


def first_host(nodelist: str) -> str:
    """First host of a SLURM node list: ``"gpu[03-05,9],cpu1"`` -> ``"gpu03"``."""
    head = re.match(r"([^,\[]+)(\[([^\]]+)\])?", nodelist.strip())
    if head is None:
        raise ConfigError(f"cannot read SLURM_JOB_NODELIST={nodelist!r}")
    prefix, ranges = head[1], head[3]
    return prefix if ranges is None else prefix + ranges.split(",")[0].split("-")[0]


def slurm_environment(env: dict[str, str]) -> dict[str, str]:
    """torch.distributed variables derived from SLURM's (empty unless a multi-task SLURM step)."""
    if "RANK" in env or "SLURM_PROCID" not in env or int(env.get("SLURM_NTASKS", "1")) < 2:
        return {}
    nodes = int(env.get("SLURM_JOB_NUM_NODES", env.get("SLURM_NNODES", "1")))
    host = "127.0.0.1" if nodes <= 1 else first_host(env.get("SLURM_JOB_NODELIST", "127.0.0.1"))
    return {
        "RANK": env["SLURM_PROCID"],
        "WORLD_SIZE": env["SLURM_NTASKS"],
        "LOCAL_RANK": env.get("SLURM_LOCALID", "0"),
        "MASTER_ADDR": env.get("MASTER_ADDR", host),
        "MASTER_PORT": env.get("MASTER_PORT", str(15000 + int(env.get("SLURM_JOB_ID", "0")) % 40000)),
    }


#: seconds a collective (and the rendezvous of init_process_group) waits for the other ranks
DEFAULT_DIST_TIMEOUT_S = 1800
#: environment variable overriding :data:`DEFAULT_DIST_TIMEOUT_S`
TIMEOUT_ENV = "HENS_DIST_TIMEOUT_S"


def dist_timeout(env: dict[str, str]) -> timedelta:
    """How long a collective waits for a peer: ``HENS_DIST_TIMEOUT_S`` seconds (> 0), default 30 min.

    Long enough for the slowest rank's batch between two collectives of the engine; a dead peer
    is usually noticed sooner (torchrun and srun stop the job when one rank dies).
    """
    raw = env.get(TIMEOUT_ENV, str(DEFAULT_DIST_TIMEOUT_S))
    try:
        seconds = float(raw)
        valid = math.isfinite(seconds) and seconds > 0
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r}: give a number of seconds > 0, e.g. {DEFAULT_DIST_TIMEOUT_S}")
    return timedelta(seconds=seconds)


def setup_distributed() -> Distributed:
    """Initialise torch.distributed if launched with several processes; else a single process.

    Collectives time out after :func:`dist_timeout` (:class:`ConfigError` for a bad
    ``HENS_DIST_TIMEOUT_S``)."""
    os.environ.update(slurm_environment(dict(os.environ)))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world < 2:
        device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
        return Distributed(device=device)
    timeout = dist_timeout(dict(os.environ))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world, timeout=timeout)
    return Distributed(rank, world, local, device, backend)


def teardown(info: Distributed) -> None:
    if info.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(tensors: list[torch.Tensor], info: Distributed) -> None:
    """Average ``tensors`` (real or complex) over ranks in place with one flattened all-reduce."""
    if info.world_size < 2 or not tensors:
        return
    flat = [torch.view_as_real(t).reshape(-1) if t.is_complex() else t.reshape(-1) for t in tensors]
    buffer = torch.cat(flat).to(info.device)  # NCCL reduces device tensors only
    dist.all_reduce(buffer)
    buffer /= info.world_size
    offset = 0
    for t, f in zip(tensors, flat):
        view = torch.view_as_real(t) if t.is_complex() else t
        view.copy_(buffer[offset : offset + f.numel()].view_as(view))
        offset += f.numel()
