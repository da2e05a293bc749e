"""The ensemble engine: member batches rolled out on every rank, streamed into a sink.

For each initial time the members are cut into the fixed batches of
:func:`~hens.forecast.zarr_sink.batches` (recorded in the store). The batches not yet
completed are dealt to ranks in contiguous runs; a rank perturbs the analysis for its batch
(:class:`~hens.forecast.protocols.Perturbation`), integrates it lead by lead
(:class:`~hens.forecast.protocols.Stepper`) and hands what the store keeps of every lead slab
(:class:`~hens.forecast.output.OutputSelection`) to a background writer
(:class:`~hens.forecast.writer.BackgroundWriter`), so computing and writing overlap.

Bit-reproducibility. A member's initial perturbation and noise come from its id alone
(:func:`~hens.forecast.members.stream_seed`); the rows of a batch are computed together, but
a batch's composition is fixed by the partition, whichever rank computes it, and with
``torch.use_deterministic_algorithms(True)`` and a fixed thread count a batch gives the same
bits on every rank. Hence 1-rank, N-rank and resumed runs write bit-identical arrays, and
:func:`recompute_member` reruns a member's batch, never the member alone (a row's rounding
may depend on how many rows a kernel sees: docs/reproducibility.md).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hens.forecast.errors import ConfigError, DataError
from hens.forecast.members import MemberLayout, stream_seed
from hens.forecast.output import OutputSelection, select_output
from hens.forecast.perturb import clip_physical
from hens.forecast.protocols import DataSource, Perturbation, Sink, Stepper
from hens.forecast.ranks import all_sum
from hens.forecast.transfer import overlaps, start_copy
from hens.forecast.types import HOURS_PER_STEP
from hens.forecast.writer import BackgroundWriter
from hens.forecast.zarr_sink import batches



@dataclass(frozen=True)
class EnsemblePlan:
    """Everything that defines the members of a run.

    Attributes
    ----------
    source
        Analyses to start from.
    steppers
        One model per checkpoint index ``c`` of the layout.
    perturbation
        Initial-condition perturbations.
    layout
        Checkpoints x pairs x signs x seeds.
    init_times
        Initial times, ``datetime64``.
    lead_hours
        Leads stepped through, in hours: ``0, 6, ..., lead`` (lead 0 is the perturbed initial
        state); ``output`` says which of them are stored.
    batch_size
        Members per batch (the store's chunk along ``member``).
    base_seed
        The run's seed.
    output
        What the store keeps of each state (channels, a box, every n-th lead); ``None``: all.
    """

    source: DataSource
    steppers: tuple[Stepper, ...]
    perturbation: Perturbation
    layout: MemberLayout
    init_times: tuple[np.datetime64, ...]
    lead_hours: tuple[int, ...]
    batch_size: int
    base_seed: int
    output: OutputSelection | None = None

    def __post_init__(self) -> None:
        if len(self.steppers) != self.layout.checkpoints:
            raise ConfigError(f"{len(self.steppers)} models for a layout of {self.layout.checkpoints} checkpoints")
        if self.output is None:  # keep everything
            object.__setattr__(self, "output", select_output(self.channels, self.steppers[0].grid))
        steps = np.diff(self.lead_hours)
        if self.lead_hours[0] != 0 or (steps != HOURS_PER_STEP).any():
            raise ConfigError(f"lead hours must be 0, 6, 12, ...; got {self.lead_hours}")

    @property
    def channels(self) -> tuple[str, ...]:
        return self.steppers[0].channels

    @property
    def partition(self) -> list[slice]:
        """The fixed member batches."""
        return list(batches(self.layout.size, self.batch_size))


def member_leads(plan: EnsemblePlan, init_index: int, members: Sequence[int]) -> Iterator[torch.Tensor]:
    """States of ``members`` at every lead: yields ``(B, C, nlat, nlon)`` float32 per lead.

    Members are grouped by checkpoint (consecutive members share one); each group is one
    rollout. Call under ``torch.inference_mode()``.
    """
    t0 = np.datetime64(plan.init_times[init_index], "ns")
    analysis = torch.from_numpy(plan.source([t0], plan.channels).values[0])
    rollouts, first = [], []
    ids = [plan.layout.member(m) for m in members]
    for c, group in itertools.groupby(ids, key=lambda m: m.c):
        group = list(group)
        stepper = plan.steppers[c]
        delta = plan.perturbation(t0, group, checkpoint=c, stepper=stepper)
        x = clip_physical(analysis + delta, plan.channels)
        stream = stepper.noise_stream
        seeds = [stream_seed(plan.base_seed, t0, stream, m.c, m.q, m.sgn, m.s) if stream else 0 for m in group]
        rollouts.append(stepper.start(x, init_time=t0, seeds=seeds))
        first.append(x)
    yield torch.cat(first)
    pending = None  # (wait for the host copy, hours) of the slab before, on a device that overlaps
    for hours in plan.lead_hours[1:]:
        steps = [r.step() for r in rollouts]
        if not overlaps(steps[0]):
            steps = [s.cpu() for s in steps]
            x = steps[0] if len(steps) == 1 else torch.cat(steps)  # one checkpoint: no second copy
            _check_finite(x, members, plan, t0, hours)
            yield x
            continue
        # GPU: copy this slab while the next step runs (forecast/transfer.py)
        staged = start_copy(steps[0] if len(steps) == 1 else torch.cat(steps))
        if pending is not None:
            yield _finite(pending, members, plan, t0)
        pending = (staged, hours)
    if pending is not None:
        yield _finite(pending, members, plan, t0)


def _finite(pending: tuple[Callable[[], torch.Tensor], int], members: Sequence[int], plan: EnsemblePlan,
            t0: np.datetime64) -> torch.Tensor:
    wait, hours = pending
    x = wait()
    _check_finite(x, members, plan, t0, hours)
    return x


def _check_finite(x: torch.Tensor, members: Sequence[int], plan: EnsemblePlan, t0: np.datetime64, hours: int) -> None:
    """Raise for the first member of a lead slab with NaN or Inf: a diverged model is never stored."""
    if bool(torch.isfinite(x.sum())):  # a NaN or Inf anywhere makes the sum NaN or Inf: one cheap pass
        return
    finite = torch.isfinite(x).flatten(1).all(1)
    if not bool(finite.all()):
        row = int((~finite).nonzero()[0])
        m = plan.layout.member(members[row])
        raise DataError(
            f"member {members[row]} (checkpoint {m.c}, pair {m.q}, sign {m.sign:+d}, seed {m.s}) from "
            f"{np.datetime_as_string(t0, 'h')} is not finite at lead {hours} h: the model diverged; "
            "its batch is not marked completed"
        )


def batch_of(plan: EnsemblePlan, member: int) -> slice:
    """The batch of the fixed partition that holds ``member``."""
    plan.layout.member(member)  # raises for a member outside the layout
    return next(b for b in plan.partition if b.start <= member < b.stop)


def recompute_member(plan: EnsemblePlan, init_index: int, member: int) -> np.ndarray:
    """All leads of ``member`` through the arithmetic of the run that stored it: ``(lead, C, nlat, nlon)``.

    The member's whole batch is rolled out again and its row kept: GEMM kernels may round a
    row differently when it is computed among another number of rows (MKL's SGEMM on its AVX2
    path, the one it takes on AMD processors, does; GPU libraries may), so a batch of one is
    not the same arithmetic. Costs one batch; holds one batch slab and one member's leads.
    """
    batch = batch_of(plan, member)
    row = member - batch.start
    with torch.inference_mode():
        return np.stack([x[row].numpy() for _, x in stored_leads(plan, init_index, range(batch.start, batch.stop))])


def stored_leads(plan: EnsemblePlan, init_index: int, members: Sequence[int]) -> Iterator[tuple[int, torch.Tensor]]:
    """``(stored lead index, slab)`` of the leads the store keeps, only what it keeps of them."""
    out = plan.output
    for step, x in enumerate(member_leads(plan, init_index, members)):
        if out.keeps(step):
            yield step // out.lead_stride, out.apply(x)


@dataclass(frozen=True)
class RunStats:
    """What one rank did: batches and member-steps computed, seconds spent."""

    batches: int
    member_steps: int
    seconds: float


def pending_batches(plan: EnsemblePlan, done: np.ndarray) -> list[tuple[int, slice]]:
    """``(init_index, batch)`` pairs whose members are not all completed, in a fixed order."""
    return [(i, b) for i in range(len(plan.init_times)) for b in plan.partition if not done[i, b].all()]


def _checkpoints_of(plan: EnsemblePlan, batch: slice) -> set[int]:
    """Indices (into ``plan.steppers``) of the models the members of ``batch`` come from."""
    return {plan.layout.member(m).c for m in range(batch.start, batch.stop)}


def run_ensemble(
    plan: EnsemblePlan,
    sink: Sink,
    work: Sequence[tuple[int, slice]],
    *,
    rank: int = 0,
    world_size: int = 1,
    device: torch.device = torch.device("cpu"),
    on_progress: Callable[[int, int], None] | None = None,
) -> RunStats:
    """Compute this rank's share of ``work`` and stream it into ``sink``.

    Parameters
    ----------
    plan
        The members.
    sink
        Destination of the lead slabs and completion records.
    work
        The pending batches of the whole run, identical on every rank; this rank takes the
        ``rank``-th of ``world_size`` contiguous runs of it (consecutive batches share a
        checkpoint, so a rank loads few of them: :class:`hens.pipelines.forecast.steppers.ResidentModels`).
    rank, world_size
        Position of this process among the ranks (every rank must call this function).
    device
        Device of the reduction tensors (the rank's GPU with NCCL).
    on_progress
        Called on every rank after each round with ``(batches written by all ranks,
        len(work))``; the counts are summed over ranks, so rank 0 can show honest progress.

    Returns
    -------
    RunStats
        This rank's batches, member-steps (members x leads computed) and wall seconds.
    """
    rounds = math.ceil(len(work) / world_size)
    mine = list(work[rank * rounds:(rank + 1) * rounds])
    last_use = {c: r for r, (_, batch) in enumerate(mine) for c in _checkpoints_of(plan, batch)}
    start, member_steps = time.perf_counter(), 0
    with BackgroundWriter(sink, slab_bytes=plan.batch_size * plan.output.member_bytes) as writer:
        for r in range(rounds):
            if r < len(mine):
                init_index, batch = mine[r]
                with torch.inference_mode():
                    for k, x in stored_leads(plan, init_index, range(batch.start, batch.stop)):
                        writer.put_lead(init_index, batch, k, x.numpy())
                writer.put_completed(init_index, batch)
                member_steps += (batch.stop - batch.start) * (len(plan.lead_hours) - 1)
                for c in _checkpoints_of(plan, batch):
                    release = getattr(plan.steppers[c], "release", None)
                    if last_use[c] == r and release is not None:
                        release()
            # every rank joins every round (some with nothing to do), so the sum is collective
            done = all_sum(writer.completed, device)
            if on_progress is not None:
                on_progress(done, len(work))
    done = all_sum(writer.completed, device)  # after the writer drained: the final count
    if on_progress is not None:
        on_progress(done, len(work))
    return RunStats(len(mine), member_steps, time.perf_counter() - start)
