"""Bred vectors (Toth & Kalnay) rescaled with the hemispheric norm, as in Huge Ensembles.

For pair (c, q) at initial time t0 with N cycles (docs/architecture.md, perturbations)::

    d_0 = rescale(xi)                             xi: seed field from stream bred-seed (c, q)
    for k = 0 .. N-1:                             a_k: analysis at t0 - (N - k) 6 h
        c, p = M(a_k), M(a_k + d_k)               the same noise seed in both runs
        d_{k+1} = rescale(p - c)                  hemispheric norm -> A_c in every channel
    members: a_N + d_N and a_N - d_N              (hemispheric_bred_vector, centred pairs)

``rescale`` is :func:`~hens.forecast.perturb.norms.rescale`; M is the checkpoint that runs the
members (a bred vector is flow- and model-specific, so it is regenerated per checkpoint and
initial time). Control and perturbed runs share the model noise of the ``bred-noise`` stream
of (c, q, k), so their difference is the growth of the perturbation, not of the noise.

``bred_vector`` is the uncentred variant: every member (c, q, sign) breeds its own vector
from its own seed (keys (c, q, sgn)) and starts from ``a_N + d_N``.

Each pair is bred alone, so its bits never depend on which other pairs or members a batch
holds, nor on the rank that computes it: with a model that has noise, control and perturbed
run are one call of two rows; a deterministic model's control run ``M(a_k)`` is the same for
every pair, so it is computed once per checkpoint and initial time (one row per cycle) and each
pair's perturbed run is a call of one row (breeding then costs about 0.6x, measured on the
CPU at 32x64).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hens.forecast.grids import Grid
from hens.forecast.members import MemberId, Stream, stream_seed
from hens.forecast.perturb.gaussian import seed_field
from hens.forecast.perturb.norms import rescale
from hens.forecast.protocols import DataSource, NoiseField, Stepper
from hens.forecast.types import STEP


def breeding_times(init_time: np.datetime64, cycles: int) -> np.ndarray:
    """Analysis times ``t0 - N 6 h, ..., t0`` (``datetime64[ns]``), ``N + 1`` of them."""
    t0 = np.datetime64(init_time, "ns")
    return t0 - np.arange(cycles, -1, -1) * STEP


def breed(
    stepper: Stepper,
    analyses: torch.Tensor,
    times: np.ndarray,
    seed: torch.Tensor,
    physical_amplitude: torch.Tensor,
    grid: Grid,
    noise_seeds: Sequence[int],
    controls: torch.Tensor | None = None,
) -> torch.Tensor:
    """Breed one vector over ``len(noise_seeds)`` cycles.

    Parameters
    ----------
    stepper
        The breeding model.
    analyses
        ``(N + 1, C, nlat, nlon)`` analyses at ``times`` (the last is t0; it is not used here).
    times
        ``(N + 1,)`` valid times of ``analyses``.
    seed
        ``(C, nlat, nlon)`` seed field (any scale: it is rescaled first).
    physical_amplitude
        ``(C,)`` hemispheric norm of the result per channel, physical units.
    grid
        Grid of the fields.
    noise_seeds
        Model-noise seed of each cycle (shared by the control and the perturbed run).
    controls
        ``(N, C, nlat, nlon)`` control runs :func:`control_runs` of a deterministic model, or
        ``None``: each cycle runs its control beside the perturbed state.

    Returns
    -------
    torch.Tensor
        The bred vector ``d_N`` ``(C, nlat, nlon)`` float32, hemispheric norm ``physical_amplitude``.
    """
    d = rescale(seed, physical_amplitude, grid)
    for k, noise_seed in enumerate(noise_seeds):
        a = analyses[k]
        if controls is None:
            control, perturbed = stepper.start(torch.stack([a, a + d]), init_time=times[k],
                                               seeds=[noise_seed, noise_seed]).step()
        else:
            control = controls[k]
            perturbed = stepper.start((a + d)[None], init_time=times[k], seeds=[noise_seed]).step()[0]
        d = rescale((perturbed - control).cpu(), physical_amplitude, grid)
    return d


def control_runs(stepper: Stepper, analyses: torch.Tensor, times: np.ndarray) -> torch.Tensor:
    """``(N, C, nlat, nlon)``: one step of a deterministic ``stepper`` from each analysis but the
    last, ``M(a_k)`` (each alone, a call of one row)."""
    return torch.cat([stepper.start(a[None], init_time=t, seeds=[0]).step() for a, t in zip(analyses[:-1], times[:-1])])


class BredVector:
    """Bred-vector perturbations from analyses of ``source`` (see the module docstring).

    Parameters
    ----------
    source
        Analyses at ``t0 - cycles 6 h .. t0``.
    noise
        Seed fields (unit variance, one per channel).
    physical_amplitude
        ``(C,)`` amplitude ``A_c`` per channel (physical units).
    cycles
        Breeding cycles N (>= 1).
    base_seed
        The run's seed.
    centred
        +/- pairs sharing a vector (``hemispheric_bred_vector``) or one vector per member.
    """

    def __init__(
        self, source: DataSource, noise: NoiseField, physical_amplitude: torch.Tensor, *, cycles: int, base_seed: int,
        centred: bool,
    ) -> None:
        self.source = source
        self.noise = noise
        self.physical_amplitude = torch.as_tensor(physical_amplitude, dtype=torch.float64)
        self.cycles = cycles
        self.base_seed = base_seed
        self.centred = centred
        self.kind = "hemispheric_bred_vector" if centred else "bred_vector"
        self._controls: tuple[tuple[int, np.datetime64], torch.Tensor] | None = None  # the latest only

    def _key(self, checkpoint: int, m: MemberId) -> tuple[int, ...]:
        return (checkpoint, m.q) if self.centred else (checkpoint, m.q, m.sgn)

    def __call__(
        self, init_time: np.datetime64, members: Sequence[MemberId], *, checkpoint: int, stepper: Stepper
    ) -> torch.Tensor:
        times = breeding_times(init_time, self.cycles)
        analyses = torch.from_numpy(self.source(times, stepper.channels).values)
        controls = None if stepper.noise_stream is not None else self._control_runs(checkpoint, stepper, analyses, times)
        vectors: dict[tuple[int, ...], torch.Tensor] = {}
        for m in members:
            key = self._key(checkpoint, m)
            if key not in vectors:
                seed = seed_field(self.noise, stream_seed(self.base_seed, init_time, Stream.BRED_SEED, *key))
                noise_seeds = [stream_seed(self.base_seed, init_time, Stream.BRED_NOISE, *key, k)
                               for k in range(self.cycles)]
                vectors[key] = breed(stepper, analyses, times, seed, self.physical_amplitude, stepper.grid, noise_seeds,
                                     controls)
        sign = [m.sign if self.centred else 1 for m in members]
        return torch.stack([s * vectors[self._key(checkpoint, m)] for s, m in zip(sign, members, strict=True)])

    def _control_runs(self, checkpoint: int, stepper: Stepper, analyses: torch.Tensor, times: np.ndarray) -> torch.Tensor:
        """The control runs of checkpoint ``checkpoint`` from these analyses, kept for its next batch."""
        key = (checkpoint, times[-1])
        if self._controls is None or self._controls[0] != key:
            self._controls = None  # free the old ones first
            self._controls = (key, control_runs(stepper, analyses, times))
        return self._controls[1]
