"""Seeded spherical Gaussian random-field noise (FourCastNet 3 style, models.md sections 4-5).

A noise channel is an isotropic Gaussian random field on the sphere with spectral variance
``sigma_l^2 ~ exp(-kT l (l + 1))``, ``kT = 0.5 (L_corr / R_earth)^2`` (the stationary
spectrum of makani's ``DiffusionNoiseS2``), ``sigma_0 = 0`` (zero global mean), normalised
to unit point-wise standard deviation over the truncated degrees ``l < lmax``:
``sum_l sigma_l^2 (2 l + 1) / (4 pi) = 1``.

Coefficients are drawn on the CPU from ``torch.Generator`` objects the caller owns, one per
batch row or one for the whole batch, so a member's noise is a pure function of its seed and
of how many draws it made before -- independent of the device and of the batch it runs in.
``c_l0 = sigma_l xi`` (real), ``c_lm = sigma_l (xi + i xi') / sqrt(2)`` for ``0 < m <= l``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from hens.forecast.errors import ConfigError
from hens.forecast.grids import Grid, parse_grid

#: mean Earth radius used to turn correlation lengths into degrees
EARTH_RADIUS_KM = 6371.0
#: default correlation lengths of the noise channels
DEFAULT_LENGTHS_KM: tuple[float, ...] = (500.0, 1000.0, 2000.0, 4000.0)

Generators = torch.Generator | Sequence[torch.Generator]


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (0 <= seed < 2**63)."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed={seed!r} must be an integer in [0, 2**63)")
    return torch.Generator(device="cpu").manual_seed(int(seed))


def noise_amplitudes(lmax: int, length_km: float) -> np.ndarray:
    """Per-degree standard deviations ``sigma_l`` (float64, ``(lmax,)``), unit point-wise std."""
    if length_km <= 0 or lmax < 2:
        raise ConfigError(f"noise needs length_km > 0 and lmax >= 2 (got {length_km}, {lmax})")
    kt = 0.5 * (length_km / EARTH_RADIUS_KM) ** 2
    l = np.arange(lmax, dtype=np.float64)
    var = np.exp(-kt * l * (l + 1.0))
    var[0] = 0.0
    var /= np.sum(var * (2.0 * l + 1.0)) / (4.0 * math.pi)
    return np.sqrt(var)


def amplitude_table(lmax: int, lengths_km: Sequence[float]) -> torch.Tensor:
    """``(channels, lmax, lmax, 2)`` float32 factors turning standard normals into coefficients.

    Zero for ``m > l`` and for the imaginary part of ``m = 0``; ``1/sqrt(2)`` for ``m > 0``.
    """
    table = np.zeros((len(lengths_km), lmax, lmax, 2))
    tri = np.tril(np.ones((lmax, lmax)))
    for i, length in enumerate(lengths_km):
        sigma = noise_amplitudes(lmax, float(length))[:, None] * tri
        table[i, :, :, 0] = sigma
        table[i, :, :, 1] = sigma
        table[i, :, 1:, :] /= math.sqrt(2.0)
        table[i, :, 0, 1] = 0.0
    return torch.from_numpy(table).float()


def draw_coefficients(amplitudes: torch.Tensor, generators: Generators, batch: int) -> torch.Tensor:
    """Complex ``(batch, channels, lmax, lmax)`` coefficients on the CPU.

    ``generators`` is one CPU generator for the whole batch (one draw of ``batch`` rows) or a
    sequence of ``batch`` generators, one per row (each row then does not depend on the others).
    """
    shape = amplitudes.shape
    if isinstance(generators, torch.Generator):
        xi = torch.randn((batch, *shape), generator=generators, dtype=torch.float32)
    else:
        if len(generators) != batch:
            raise ConfigError(f"got {len(generators)} generators for a batch of {batch}")
        xi = torch.stack([torch.randn(shape, generator=g, dtype=torch.float32) for g in generators])
    return torch.view_as_complex((xi * amplitudes.cpu()).contiguous())


class SphericalNoise(nn.Module):
    """Noise fields on a grid: ``forward(generators, batch) -> (batch, channels, nlat, nlon)``.

    Parameters
    ----------
    grid
        Grid of the fields (needs an SHT).
    lengths_km
        Correlation length of each channel.
    lmax
        Truncation; default ``min(nlat, nlon // 2)`` (the SFNO default on that grid).
    """

    def __init__(
        self, grid: Grid | str, lengths_km: Sequence[float] = DEFAULT_LENGTHS_KM, *, lmax: int | None = None
    ) -> None:
        super().__init__()
        from torch_harmonics import InverseRealSHT

        self.grid = parse_grid(grid)
        self.lengths_km = tuple(float(v) for v in lengths_km)
        self.lmax = lmax or min(self.grid.nlat, self.grid.nlon // 2)
        self.register_buffer("amplitudes", amplitude_table(self.lmax, self.lengths_km), persistent=False)
        self.isht = InverseRealSHT(
            self.grid.nlat, self.grid.nlon, lmax=self.lmax, mmax=self.lmax, grid=self.grid.sht_grid, norm="ortho"
        ).float()

    def draw(self, generators: Generators, batch: int) -> torch.Tensor:
        """Coefficients, see :func:`draw_coefficients`."""
        return draw_coefficients(self.amplitudes, generators, batch)

    def forward(self, generators: Generators, batch: int) -> torch.Tensor:
        coeffs = self.draw(generators, batch).to(self.amplitudes.device)
        return self.isht(coeffs)
