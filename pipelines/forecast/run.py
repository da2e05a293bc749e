"""``hens forecast``: run an ensemble from a YAML config into one Zarr store, on 1..N ranks.

Launch with ``hens forecast ens.yaml`` (one process), ``torchrun --nproc_per_node N $(which
hens) forecast ens.yaml`` or ``srun hens forecast ens.yaml`` (:mod:`hens.models.runtime` maps
SLURM's variables; NCCL with one GPU per rank when CUDA is available, gloo otherwise).

Order of work, so that bad input never touches an existing store:

1. every rank parses the YAML and checks the output path (before any process group);
2. every rank loads its models; rank 0 reads every analysis the run needs (NaN, missing
   times), then declares, replaces or reopens the store; a failure on any rank becomes the
   same one-line error on every rank (:func:`hens.forecast.ranks.agree`), so none hangs;
3. all ranks compute their contiguous share of the pending batches
   (:func:`hens.forecast.engine.run_ensemble`); rank 0 shows a progress bar of the batches
   written by all ranks, then finalizes the store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hens.forecast.errors import ConfigError, DataError, OutputExists
from hens.pipelines.forecast.config import ForecastConfig, load_config

if TYPE_CHECKING:
    import xarray as xr

    from hens.models.runtime import Distributed


def _config(config: str | Path | ForecastConfig) -> ForecastConfig:
    return config if isinstance(config, ForecastConfig) else load_config(config)


@contextmanager
def process_settings(threads: int) -> Iterator[None]:
    """Deterministic kernels and a fixed thread count for the run, restored afterwards (the
    caller may be a notebook or a test); glibc's heap is kept for activations."""
    import torch

    from hens.forecast.allocator import tune_cpu_allocator

    # cuBLAS needs a fixed workspace to be deterministic; harmless without CUDA
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    tune_cpu_allocator()  # batched rollouts ~1.6x faster on CPU (see its docstring)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])


def _mode(cfg: ForecastConfig, *, resume: bool, overwrite: bool) -> str:
    if resume and overwrite:
        raise ConfigError("pass --resume or --overwrite, not both")
    path = cfg.output_path
    if path.exists() and not (resume or overwrite):
        raise OutputExists(f"{path} exists; pass --resume to continue it or --overwrite to replace it")
    if resume and not path.exists():
        raise DataError(f"cannot resume: {path} does not exist (run without --resume)")
    return "resume" if resume else "overwrite" if overwrite else "create"


def run_forecast(
    config: str | Path | ForecastConfig, *, resume: bool = False, overwrite: bool = False, progress: bool = True
) -> Path:
    """Run the ensemble of ``config`` (a YAML path or a parsed config) on this process's rank.

    Parameters
    ----------
    config
        YAML file (relative paths inside are relative to its folder) or :class:`ForecastConfig`.
    resume
        Continue an existing store written by the same config, skipping completed batches.
    overwrite
        Replace an existing store (only after every input check has passed).
    progress
        Show a progress bar on rank 0 (stderr).

    Returns
    -------
    Path of the store.
    """
    cfg = _config(config)
    mode = _mode(cfg, resume=resume, overwrite=overwrite)
    # heavy imports only after the cheap checks: a bad config fails in a fraction of a second
    from hens.models.runtime import setup_distributed, teardown

    with process_settings(cfg.threads):
        info = setup_distributed()
        try:
            _run(cfg, mode, info, progress=progress)
        finally:
            teardown(info)
    return cfg.output_path


def _run(cfg: ForecastConfig, mode: str, info: Distributed, *, progress: bool) -> None:
    """The collective part of :func:`run_forecast` on this rank (``info``: its place among ranks)."""
    from hens.forecast.engine import pending_batches, run_ensemble
    from hens.forecast.ranks import agree, barrier, share
    from hens.forecast.zarr_sink import ZarrSink, open_sink
    from hens.pipelines.forecast.components import build_plan, check_analyses

    plan, spec = agree(lambda: build_plan(cfg, info.device))  # type: ignore[misc]

    def prepare() -> np.ndarray:
        check_analyses(plan, cfg.perturbation.cycles)
        return open_sink(cfg.output_path, spec, mode=mode).completed()  # type: ignore[arg-type]

    work = pending_batches(plan, share(agree(prepare, root_only=True)))
    sink = ZarrSink(cfg.output_path, spec)
    start = time.perf_counter()
    with _progress(enabled=progress and info.main, total=len(work)) as report:
        stats = run_ensemble(plan, sink, work, rank=info.rank, world_size=info.world_size,
                             device=info.device, on_progress=report)
    barrier()
    if info.main:
        sink.finalize({"wall_seconds": round(time.perf_counter() - start, 3), "world_size": info.world_size,
                       "rank0_member_steps": stats.member_steps})
    barrier()


@contextmanager
def _progress(*, enabled: bool, total: int) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar of batches written by all ranks; yields its update function."""
    from rich.console import Console
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
    )

    columns = (TextColumn("ensemble batches (all ranks)"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not enabled) as bar:
        task = bar.add_task("forecast", total=total)
        yield lambda done, _total: bar.update(task, completed=done)


def compute_member(
    config: str | Path | ForecastConfig, init_time: str | np.datetime64, member: int, *, device: str = "cpu"
) -> xr.Dataset:
    """Recompute one member of the run ``config`` describes, bit-identical to the stored member.

    The member's batch (the fixed partition of ``batch_size`` members that the store records as
    ``batch_partition``) is rolled out again and the member's row returned, so it goes through
    exactly the arithmetic of the run that stored it: bit-identical on the same kind of machine
    and software (CPU instruction set and BLAS path, or GPU model; thread count from the config).
    Costs one batch, not one member. Needs no store; if the store exists, its recorded partition
    must be the config's.

    Parameters
    ----------
    config
        The run's YAML (or parsed config).
    init_time
        One of the config's initial times.
    member
        Member index (``hens.forecast.members`` gives its checkpoint, pair, sign and seed).
    device
        Torch device to compute on (``"cpu"``, ``"cuda"``): use the kind that wrote the store.

    Returns
    -------
    xarray.Dataset
        One float32 variable per stored channel, dims ``(lead_time, lat, lon)`` (what the store
        keeps: ``output_channels``, ``region``, ``output_every_hours``), in the channel's units.
    """
    import torch
    import xarray as xr

    from hens.forecast.channels import get_channel
    from hens.forecast.engine import recompute_member
    from hens.pipelines.forecast.components import build_plan

    cfg = _config(config)
    t0 = np.datetime64(init_time, "ns")
    if t0 not in cfg.init_times:
        raise ConfigError(f"{init_time} is not one of the config's init_times")
    with process_settings(cfg.threads):
        plan, spec = build_plan(cfg, torch.device(device))
        _check_recorded_partition(cfg.output_path, plan.partition)
        values = recompute_member(plan, cfg.init_times.index(t0), member)  # (lead, C, lat, lon)
    leads = np.array(spec.lead_hours, dtype="timedelta64[h]").astype("timedelta64[ns]")
    coords = {"lead_time": leads, "lat": spec.lat, "lon": spec.lon}
    return xr.Dataset(
        {c: (("lead_time", "lat", "lon"), values[:, k], get_channel(c).attrs()) for k, c in enumerate(spec.channels)},
        coords=coords, attrs={"init_time": str(t0), "member": member},
    )


def _check_recorded_partition(store: Path, partition: list[slice]) -> None:
    """Refuse a store whose recorded member batches are not the config's (another run)."""
    import json

    import zarr

    if not store.exists():
        return
    recorded = zarr.open_group(str(store), mode="r").attrs.get("batch_partition")
    if recorded is not None and json.loads(recorded) != [[b.start, b.stop] for b in partition]:
        raise ConfigError(f"{store} records member batches {recorded}, not this config's batch_size: "
                          "the member would not be recomputed through the same arithmetic")
