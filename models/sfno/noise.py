"""Seeded spherical Gaussian random-field noise (FourCastNet 3 style, models.md sections 4-5).

A noise channel is an isotropic Gaussian random field on the sphere with spectral variance
``sigma_l^2 ~ exp(-kT l (l + 1))``, ``kT = 0.5 (L_corr / R_earth)^2`` (the stationary
spectrum of makani's ``DiffusionNoiseS2``), ``sigma_0 = 0`` (zero global mean), normalised
to unit point-wise standard deviation over the truncated degrees ``l < lmax``:
``sum_l sigma_l^2 (2 l + 1) / (4 pi) = 1``.

Coefficients are drawn from ``torch.Generator`` objects the caller owns, one per batch row or
one for the whole batch, on the generators' device (the ensemble engine gives each member a
generator on the model's device, so nothing is drawn on the host and copied each step). A
member's noise is a pure function of its seed and of how many draws it made before --
independent of the batch it runs in and of the rank. It does depend on the kind of device: a
CPU generator (Mersenne Twister) and a CUDA one (Philox, counter-based: the state is the seed
and an offset) give different numbers for one seed, and CUDA's numbers may also differ between
GPU models (the kernel's launch grid follows the number of multiprocessors).
``c_l0 = sigma_l xi`` (real), ``c_lm = sigma_l (xi + i xi') / sqrt(2)`` for ``0 < m <= l``.

In time the coefficients follow an AR(1) (Ornstein-Uhlenbeck) process, FourCastNet 3's
``DiffusionNoiseS2`` (models.md section 4): ``c_{t+1} = phi c_t + sqrt(1 - phi^2) d_{t+1}``
with ``d`` a fresh draw as above and ``phi = exp(-dt / tau)`` for the model step ``dt`` and a
decorrelation time ``tau``. A rollout starts from a draw of the stationary distribution (a
plain draw), so every step's fields keep unit point-wise variance and the lag-k correlation
is ``phi^k``. ``tau = 0`` is white noise: every step a fresh draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from hens.forecast.errors import ConfigError, DataError
from hens.forecast.grids import Grid, parse_grid
from hens.forecast.types import HOURS_PER_STEP

#: mean Earth radius used to turn correlation lengths into degrees
EARTH_RADIUS_KM = 6371.0
#: default correlation lengths of the noise channels
DEFAULT_LENGTHS_KM: tuple[float, ...] = (500.0, 1000.0, 2000.0, 4000.0)
#: default decorrelation time of the noise (hours): FourCastNet 3's (makani
#: ``DiffusionNoiseS2``, tau = 6 h). With 6-hour steps phi = 1/e: a member's noise evolves
#: smoothly instead of flickering from step to step, yet forgets itself within a day
#: (phi^4 = 0.02), well inside the days over which errors grow
DEFAULT_DECORRELATION_HOURS = 6.0

Generators = torch.Generator | Sequence[torch.Generator]


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (0 <= seed < 2**63)."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed={seed!r} must be an integer in [0, 2**63)")
    return torch.Generator(device=device).manual_seed(int(seed))


def default_lmax(grid: Grid) -> int:
    """The noise's default truncation on ``grid``: ``min(nlat, nlon // 2)`` (the SFNO default there)."""
    return min(grid.nlat, grid.nlon // 2)


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


def ar1_factor(decorrelation_hours: float, step_hours: float = HOURS_PER_STEP) -> float:
    """``phi = exp(-step_hours / decorrelation_hours)``, the lag-one correlation of the noise.

    ``decorrelation_hours = 0`` gives 0 (white noise).
    """
    if not math.isfinite(decorrelation_hours) or decorrelation_hours < 0 or step_hours <= 0:
        raise ConfigError(
            f"noise decorrelation time {decorrelation_hours} h must be finite and >= 0 (step {step_hours} h > 0)"
        )
    return math.exp(-step_hours / decorrelation_hours) if decorrelation_hours > 0 else 0.0


def advance_coefficients(state: torch.Tensor, draw: torch.Tensor, phi: float) -> torch.Tensor:
    """One AR(1) step: ``phi * state + sqrt(1 - phi^2) * draw`` (complex coefficients).

    ``draw`` is a fresh :func:`draw_coefficients`; ``phi = 0`` returns it as is (white noise,
    the bits of a plain draw). Element-wise on the real and imaginary parts, so a row's result
    does not depend on the other rows.
    """
    if phi == 0.0:
        return draw
    if state.shape != draw.shape:
        raise DataError(f"noise state {tuple(state.shape)} does not fit the draw {tuple(draw.shape)}")
    mixed = torch.view_as_real(state) * phi + torch.view_as_real(draw) * math.sqrt(1.0 - phi * phi)
    return torch.view_as_complex(mixed)


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
    """Complex ``(batch, channels, lmax, lmax)`` coefficients on the generators' device.

    ``generators`` is one generator for the whole batch (one draw of ``batch`` rows) or a
    sequence of ``batch`` generators on one device, one per row (each row then does not depend
    on the others). On CPU generators this gives the same bits as ever.
    """
    shape = amplitudes.shape
    if isinstance(generators, torch.Generator):
        device = generators.device
        xi = torch.randn((batch, *shape), generator=generators, dtype=torch.float32, device=device)
    else:
        if len(generators) != batch:
            raise ConfigError(f"got {len(generators)} generators for a batch of {batch}")
        device = generators[0].device if batch else torch.device("cpu")
        xi = torch.empty((batch, *shape), dtype=torch.float32, device=device)
        for row, g in zip(xi, generators):
            torch.randn(shape, generator=g, dtype=torch.float32, device=device, out=row)
    return torch.view_as_complex((xi * amplitudes.to(device)).contiguous())


class SphericalNoise(nn.Module):
    """Noise fields on a grid: ``forward(generators, batch) -> (batch, channels, nlat, nlon)``.

    Parameters
    ----------
    grid
        Grid of the fields (needs an SHT).
    lengths_km
        Correlation length of each channel.
    lmax
        Truncation; default :func:`default_lmax`.
    """

    def __init__(
        self, grid: Grid | str, lengths_km: Sequence[float] = DEFAULT_LENGTHS_KM, *, lmax: int | None = None
    ) -> None:
        super().__init__()
        from torch_harmonics import InverseRealSHT

        self.grid = parse_grid(grid)
        self.lengths_km = tuple(float(v) for v in lengths_km)
        self.lmax = lmax or default_lmax(self.grid)
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
