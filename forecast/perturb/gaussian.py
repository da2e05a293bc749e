"""Perturbations without breeding: none, and centred spherical Gaussian random fields.

``gaussian``: member (c, q, sign) starts from ``a(t0) + sign * A_c * xi_{c,q}``, where
``xi_{c,q}`` is a unit-variance Gaussian random field per channel (correlation length set by
the :class:`~hens.forecast.protocols.NoiseField`, 500 km by default) drawn once per pair from
the ``bred-seed`` stream of ``(c, q)``. Pairs are centred (+/-) like the bred vectors, so the
ensemble mean of each pair is the analysis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hens.forecast.members import MemberId, Stream, stream_seed
from hens.forecast.protocols import NoiseField, Stepper

#: the stream of a Gaussian perturbation's fields: the bred vectors' seed stream, by history
#: (a pair ``(c, q)`` draws the same field as its bred vector starts from); kept so that
#: existing stores stay bit-identical
GAUSSIAN_STREAM = Stream.BRED_SEED


def seed_field(noise: NoiseField, seed: int) -> torch.Tensor:
    """One field ``(C, nlat, nlon)`` drawn alone (batch of 1) from a generator seeded with ``seed``.

    Drawing each pair alone keeps its bits independent of which other pairs a batch holds.
    """
    return noise([torch.Generator(device="cpu").manual_seed(seed)], 1)[0].cpu().to(torch.float32)


class NoPerturbation:
    """Every member starts from the analysis (spread from model noise or checkpoints only)."""

    kind = "none"

    def __call__(
        self, init_time: np.datetime64, members: Sequence[MemberId], *, checkpoint: int, stepper: Stepper
    ) -> torch.Tensor:
        return torch.zeros((len(members), len(stepper.channels), *stepper.grid.shape))


class GaussianPerturbation:
    """Centred Gaussian random-field perturbations with per-channel amplitudes.

    Parameters
    ----------
    noise
        Unit-variance random fields, one per channel.
    physical_amplitude
        ``(C,)`` amplitude ``A_c`` per channel (physical units).
    base_seed
        The run's seed.
    """

    kind = "gaussian"

    def __init__(self, noise: NoiseField, physical_amplitude: torch.Tensor, *, base_seed: int) -> None:
        self.noise = noise
        self.physical_amplitude = torch.as_tensor(physical_amplitude, dtype=torch.float32).view(-1, 1, 1)
        self.base_seed = base_seed

    def __call__(
        self, init_time: np.datetime64, members: Sequence[MemberId], *, checkpoint: int, stepper: Stepper
    ) -> torch.Tensor:
        fields: dict[int, torch.Tensor] = {}
        for m in members:
            if m.q not in fields:
                seed = stream_seed(self.base_seed, init_time, GAUSSIAN_STREAM, checkpoint, m.q)
                fields[m.q] = self.physical_amplitude * seed_field(self.noise, seed)
        return torch.stack([m.sign * fields[m.q] for m in members])
