"""``hens forecast CONFIG --plan``: what a run will write and hold, before running it.

Reads only the YAML, the checkpoint headers (weights memory-mapped, never read) and the
data's coordinates: no network is built and no field is read, so a plan works for runs far
beyond the machine it is made on (HENS at 721x1440, 74 channels, 7,424 members).

Counts follow the store layout (``forecast/zarr_sink.py``, docs/store.md): per initial time
one ``fields`` shard per member batch and block of ``lead_chunk`` leads and one ``completed``
chunk per batch, plus the store's metadata and coordinate files once. ``bytes`` are the
uncompressed bytes of ``fields`` and ``completed`` (Blosc-lz4 keeps forecast fields at ~0.8).

Host memory per rank (:func:`rank_memory`): the Python process with torch and the data stack
(:data:`BASE_PROCESS_BYTES`, measured), the checkpoints' weights a rank keeps loaded (all of
them, or as many as its weight budget holds and at least the largest one:
``pipelines/forecast/steppers.py::ResidentModels``; a GPU's budget is taken as half of an 80 GB card), and
the lead slabs in flight (one slab: one lead of a batch, all kept channels) -- the engine's
current slab, the writer's queue (``forecast/writer.py``: at most ``DEFAULT_DEPTH`` slabs and
at most ``DEFAULT_QUEUE_BYTES``; none when a slab is larger, it is handed over), the block
being written (the slabs copied into the shard's layout; one lead: the slab itself) and the
shard's compressed chunks (``forecast/shard_writer.py``).
On the CPU the network's activations add to it; on a GPU they and the weights are reported as
device memory.

Wall time (``--time``; :func:`wall_estimate`, an **estimate**, ``None`` without ``--time``): one
batch step of the first checkpoint is timed on the chosen device (the real weights and batch
size, :data:`TIMED_STEPS` steps after a warm-up one, the run's thread count; input: the
checkpoint's mean state, so no data value is read), then scaled: a rank computes its batches x
(model steps + breeding) steps, while its writer thread compresses and writes the rank's bytes
at :data:`WRITE_BYTES_PER_S`, hidden behind compute except the last batch's. Not counted: process
start-up, loading the analyses, queueing for shared cores or GPUs, a slower disk.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from hens.forecast.errors import ConfigError
from hens.pipelines.forecast.config import ForecastConfig, load_config

#: resident memory of a rank before its first batch: Python, torch, torch-harmonics, xarray,
#: zarr, dask and hens imported (397 MB measured on the development machine) plus allocator slack
BASE_PROCESS_BYTES = 450 << 20
#: activations of an SFNO forward per batch row, in units of ``embed_dim x internal grid``
#: float32 tensors alive at once (input, spectral coefficients, MLP hidden of 2E, residual)
ACTIVATION_TENSORS = 8
#: weights a GPU rank keeps loaded, for planning without the GPU: half of an 80 GB card
PLAN_GPU_RESIDENT_BYTES = 40 << 30
#: float32 bytes per second the writer compresses (Blosc-lz4) and writes on one thread: measured
#: 370-740 MB/s by benchmarks/bench_engine.py on the development machine (docs/store.md)
WRITE_BYTES_PER_S = 400e6
#: timed model steps of one batch (after one untimed warm-up step)
TIMED_STEPS = 2


@dataclass(frozen=True)
class RunPlan:
    """The figures of a planned run (``hens forecast CONFIG --plan --json`` prints them)."""

    members: int
    init_times: int
    leads: int
    channels: int
    grid: str
    batch_size: int
    batches_per_init: int
    ranks: int
    batches_per_rank: int
    lead_chunk: int
    files_per_init: int
    files: int
    bytes: int
    rank_memory_bytes: int
    device: str
    device_memory_bytes: int
    seconds_estimate: float | None = None
    step_seconds: float | None = None  # the timed model step of one batch (``--time``)
    steps_per_batch: int = 0  # model steps of a batch: leads after 0, plus bred-vector cycles

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        """Human-readable summary, one figure a line."""
        gb = 1 << 30
        return "\n".join([
            f"members            {self.members} per initial time x {self.init_times} initial times",
            f"leads              {self.leads} stored (lead 0 included), {self.channels} channels of {self.grid}",
            f"batches            {self.batches_per_init} of {self.batch_size} per initial time; "
            f"{self.batches_per_rank} per rank on {self.ranks} ranks",
            f"files              {self.files_per_init} per initial time, {self.files} in all "
            f"({self.lead_chunk} leads per shard)",
            f"bytes              {self.bytes / gb:.3g} GiB uncompressed",
            f"host memory / rank {self.rank_memory_bytes / gb:.3g} GiB",
            f"{self.device} memory / rank {self.device_memory_bytes / gb:.3g} GiB" if self.device != "cpu"
            else "device             cpu (activations counted in host memory)",
            "wall time          not estimated (--time times a batch step)" if self.seconds_estimate is None
            else f"wall time          ~{self.seconds_estimate:.0f} s (estimate: {self.step_seconds:.3g} s per batch "
                 f"step timed on {self.device}, x steps per rank, + writes not hidden)",
        ])


def _network(model_config: dict[str, Any]) -> dict[str, Any]:
    """The SFNO settings inside a (possibly nested, stochastic) model config."""
    if "embed_dim" in model_config:
        return model_config
    for value in model_config.values():
        if isinstance(value, dict) and "embed_dim" in value:
            return value
    raise ConfigError("a checkpoint's model config names no embed_dim")


def plan_run(config: str | Path | ForecastConfig, *, ranks: int = 1, device: str = "cpu", time: bool = False) -> RunPlan:
    """Plan the run of ``config`` on ``ranks`` ranks of ``device`` (``"cpu"`` or ``"cuda"``);
    ``time``: also time a batch step there and estimate the wall time (see the module docstring).

    Raises
    ------
    ConfigError, CheckpointError, GridMismatch, DataError
        The same one-line errors as the run (:func:`~hens.models.compatibility.check_ensemble`,
        :func:`~hens.models.compatibility.check_compatible`): bad YAML, unreadable checkpoints,
        checkpoints that disagree on channels or grid, data that lack them.
    """
    from hens.forecast.members import MemberLayout
    from hens.forecast.output import select_output
    from hens.forecast.sources import open_source
    from hens.forecast.zarr_sink import batches, lead_chunk_for
    from hens.models.checkpoint import read_header
    from hens.models.compatibility import check_compatible, check_ensemble

    cfg = config if isinstance(config, ForecastConfig) else load_config(config)
    if ranks < 1:
        raise ConfigError(f"--ranks must be >= 1, got {ranks}")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    if cfg.physics:
        raise ConfigError("--plan covers checkpoint ensembles; models: [physics] has no checkpoint to read")
    headers = [read_header(p) for p in cfg.model_paths]
    check_ensemble(headers)
    source = open_source(cfg.data_paths)  # coordinates only
    for h in headers:
        check_compatible(h, source)
    first, grid = headers[0], headers[0].grid
    layout = MemberLayout(checkpoints=len(headers), pairs=cfg.perturbation.pairs, seeds=cfg.seeds)
    kept = select_output(first.channels, grid, channels=cfg.output_channels, region=cfg.region,
                         every_hours=cfg.output_every_hours)
    n_leads, n_chan, n_init = len(cfg.stored_leads), len(kept.channels), len(cfg.init_times)
    batch = min(cfg.batch_size, layout.size)
    lead_chunk = lead_chunk_for(batch, kept.shape, n_leads, n_chan)
    n_batches = len(batches(layout.size, cfg.batch_size))
    files_per_init = n_batches * math.ceil(n_leads / lead_chunk) + n_batches
    slab = batch * kept.member_bytes  # what the writer holds: the kept part
    net = _network(first.model_config)
    internal = (grid.nlat // int(net.get("scale_factor", 1))) * (grid.nlon // int(net.get("scale_factor", 1)))
    activations = ACTIVATION_TENSORS * batch * int(net["embed_dim"]) * max(internal, grid.nlat * grid.nlon // 4) * 4
    weights = resident_weight_bytes([h.parameter_bytes for h in headers], device=device)
    host, on_device = rank_memory(slab, lead_chunk, weights, activations, device=device)
    # breeding runs ``cycles`` steps of the batch's pairs (half its rows): one row per pair after a
    # deterministic model's shared control runs, two (control and perturbed) with a model's noise
    rows_per_pair = 2 if any(h.stochastic for h in headers) else 1
    steps = len(cfg.lead_steps) - 1 + (math.ceil(cfg.perturbation.cycles * rows_per_pair / 2)
                                       if cfg.perturbation.bred else 0)
    plan = RunPlan(
        members=layout.size, init_times=n_init, leads=n_leads, channels=n_chan, grid=grid.spec,
        batch_size=batch, batches_per_init=n_batches, ranks=ranks,
        batches_per_rank=math.ceil(n_init * n_batches / ranks), lead_chunk=lead_chunk,
        files_per_init=files_per_init, files=n_init * files_per_init + _store_files(layout, n_leads),
        bytes=n_init * layout.size * (n_leads * slab // batch + 1), rank_memory_bytes=host,
        device=device, device_memory_bytes=on_device, steps_per_batch=steps,
    )
    if not time:
        return plan
    step = time_batch_step(cfg.model_paths[0], batch, device=device, threads=cfg.threads)
    return replace(plan, step_seconds=step, seconds_estimate=wall_estimate(plan, step))


def time_batch_step(path: Path, batch: int, *, device: str, threads: int = 1) -> float:
    """Seconds of one model step of ``batch`` members of the checkpoint at ``path`` on ``device``:
    the mean of :data:`TIMED_STEPS` steps after an untimed one, with ``threads`` intra-op threads."""
    import time as clock

    import numpy as np
    import torch

    from hens.models.checkpoint import load_checkpoint
    from hens.pipelines.forecast.steppers import CheckpointStepper

    ckpt = load_checkpoint(path, map_location=device)
    stepper = CheckpointStepper(ckpt)
    nlat, nlon = stepper.grid.shape
    x = ckpt.mean.to(torch.float32)[None, :, None, None].expand(batch, -1, nlat, nlon).contiguous()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            rollout = stepper.start(x, init_time=np.datetime64("2000-01-01T00", "ns"), seeds=list(range(batch)))
            rollout.step()
            if device == "cuda":
                torch.cuda.synchronize()
            start = clock.perf_counter()
            for _ in range(TIMED_STEPS):
                rollout.step()
            if device == "cuda":
                torch.cuda.synchronize()
            return (clock.perf_counter() - start) / TIMED_STEPS
    finally:
        torch.set_num_threads(before)


def wall_estimate(plan: RunPlan, step_seconds: float) -> float:
    """Estimated wall seconds of ``plan`` from one timed batch step: a rank's compute
    (batches x steps x ``step_seconds``) or its writes at :data:`WRITE_BYTES_PER_S`, whichever is
    longer (they overlap), plus the last batch's write, which nothing hides."""
    compute = plan.batches_per_rank * plan.steps_per_batch * step_seconds
    batch_bytes = plan.bytes / max(1, plan.init_times * plan.batches_per_init)
    write = plan.batches_per_rank * batch_bytes / WRITE_BYTES_PER_S
    return max(compute, write) + batch_bytes / WRITE_BYTES_PER_S


def resident_weight_bytes(sizes: list[int], *, device: str) -> int:
    """Weight bytes a rank holds: all checkpoints if they fit its budget, else the budget (>= the largest)."""
    from hens.pipelines.forecast.steppers import CPU_RESIDENT_BYTES

    budget = CPU_RESIDENT_BYTES if device == "cpu" else PLAN_GPU_RESIDENT_BYTES
    return min(sum(sizes), max(max(sizes), budget))


def rank_memory(slab: int, lead_chunk: int, weights: int, activations: int, *, device: str) -> tuple[int, int]:
    """``(host bytes, device bytes)`` of one rank; see the module docstring."""
    from hens.forecast.writer import queued_slabs

    queued = queued_slabs(slab)
    # the slab being computed, the queue, the block being written (each slab copied in as it
    # arrives; one lead is the slab itself), the shard's compressed chunks (at most one block)
    slabs = (1 + queued + lead_chunk + lead_chunk) * slab
    if device == "cpu":
        return BASE_PROCESS_BYTES + weights + slabs + activations, 0
    return BASE_PROCESS_BYTES + weights + slabs, weights + activations


def _store_files(layout: Any, n_leads: int) -> int:
    """Metadata (group and 12 arrays) and coordinate chunk files, written once per store; zarr
    skips a chunk whose values all equal the fill value (0), as ``seed`` with one seed."""
    coords = layout.coords()
    elided = sum(1 for v in coords.values() if not v.any())
    elided += 1 if n_leads == 1 else 0  # lead_time is all zero
    return 13 + 6 + len(coords) - elided


def print_plan(plan: RunPlan, *, as_json: bool) -> str:
    """The plan as one JSON object or as text."""
    return json.dumps(plan.to_dict()) if as_json else plan.text()
