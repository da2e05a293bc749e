"""Forcing of the shallow-water world: the seasonal equilibrium and the stochastic vorticity noise.

Pure functions of time, latitude and (seed, step); the solver in
:mod:`hens.models.shallow_water.solver` turns them into spectral tendencies. The recipe is the one
measured chaotic at T21 (docs/design.md, the world) plus a
seasonal cycle:

* two Galewsky-type jets, the winter one stronger, both shifted towards the summer
  hemisphere by up to ``shift`` degrees with a 365.25-day sinusoid;
* the tracer equilibrium ``T_eq = base + amp cos^2(lat) + 2 amp sin(delta) sin(lat)``, whose
  maximum (the thermal equator) sits exactly at the shift latitude ``delta``;
* band-limited white vorticity noise, drawn from a generator seeded by ``sha256(seed, step)``
  so the forcing at a step never depends on how a run is chunked or restarted.
"""

from __future__ import annotations

import hashlib
import math

import torch

SECONDS_PER_DAY = 86_400.0
YEAR_DAYS = 365.25
#: days from 1970-01-01 (the step epoch) to 2000-01-01, the phase origin of the seasons
_DAYS_1970_TO_2000 = 10_957.0
# Galewsky et al. (2004) jet: nonzero for P0 < |lat| < P1, peak at 45 degrees
_P0 = math.pi / 7.0
_P1 = math.pi / 2.0 - _P0
_EN = math.exp(-4.0 / (_P1 - _P0) ** 2)


def season(seconds: float, *, coldest_day: float) -> float:
    """Seasonal phase: +1 at northern midwinter, -1 at northern midsummer.

    Parameters
    ----------
    seconds
        Time in seconds since 1970-01-01T00.
    coldest_day
        Day of year (1 = 1 January) of northern midwinter.
    """
    days = seconds / SECONDS_PER_DAY - _DAYS_1970_TO_2000 - (coldest_day - 1.0)
    return math.cos(2.0 * math.pi * days / YEAR_DAYS)


def _galewsky(x: torch.Tensor) -> torch.Tensor:
    """Unit-peak Galewsky profile of ``x`` (radians), zero outside (P0, P1)."""
    inside = (x > _P0) & (x < _P1)
    # evaluate only inside: the exponent is singular at the edges
    safe = torch.where(inside, x, torch.full_like(x, math.pi / 4.0))
    return torch.where(inside, torch.exp(1.0 / ((safe - _P0) * (safe - _P1))) / _EN, 0.0)


def jet_wind(
    lats: torch.Tensor, *, speed: float, amplitude: float, shift_deg: float, phase: float
) -> torch.Tensor:
    """Zonal wind (m s-1) of the seasonal double jet.

    Parameters
    ----------
    lats
        Latitudes in radians, shape ``(nlat,)``.
    speed
        Annual-mean peak speed of each jet (m s-1).
    amplitude
        Relative seasonal change of the peak: winter jet ``(1 + amplitude) speed``.
    shift_deg
        Largest shift of both jets towards the summer hemisphere (degrees).
    phase
        :func:`season` value (+1 northern winter).
    """
    shifted = lats + math.radians(shift_deg) * phase
    north = speed * (1.0 + amplitude * phase) * _galewsky(shifted)
    south = speed * (1.0 - amplitude * phase) * _galewsky(-shifted)
    return north + south


def tracer_equilibrium(
    lats: torch.Tensor, *, base: float, amplitude: float, shift_deg: float, phase: float
) -> torch.Tensor:
    """Equilibrium of the temperature tracer (K); its maximum lies at ``-shift_deg * phase``."""
    thermal_equator = -math.radians(shift_deg) * phase
    sin_lat = torch.sin(lats)
    return base + amplitude * (1.0 - sin_lat**2) + 2.0 * amplitude * math.sin(thermal_equator) * sin_lat


def step_seed(seed: int, step: int | str) -> int:
    """A 63-bit generator seed that is a pure function of ``(seed, step)``."""
    digest = hashlib.sha256(f"hens-world:{seed}:{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def spectral_mean_square(spec: torch.Tensor) -> torch.Tensor:
    """Area mean of the squared field of ortho-normalised coefficients ``(..., L, M)``.

    Parseval: the integral over the unit sphere is ``sum |c_l0|^2 + 2 sum_{m>=1} |c_lm|^2``.
    """
    power = spec.real**2 + spec.imag**2
    return (2.0 * power.sum(dim=(-2, -1)) - power[..., 0].sum(dim=-1)) / (4.0 * math.pi)


def band_noise(seed: int, step: int | str, *, lmax: int, mmax: int, band: tuple[int, int]) -> torch.Tensor:
    """Isotropic white noise in degrees ``band[0] <= l <= band[1]``, unit grid rms.

    Returns complex128 ortho coefficients ``(lmax, mmax)``, zero for ``m > l``.
    """
    gen = torch.Generator().manual_seed(step_seed(seed, step))
    draw = torch.randn(2, lmax, mmax, generator=gen, dtype=torch.float64)
    l = torch.arange(lmax).unsqueeze(1)
    m = torch.arange(mmax).unsqueeze(0)
    keep = (l >= band[0]) & (l <= band[1]) & (m <= l)
    # a real field: m = 0 coefficients are real with unit variance, m >= 1 have variance 1/2
    # in each part, so every real degree of freedom carries the same power (isotropy)
    re = torch.where(m == 0, draw[0], draw[0] * math.sqrt(0.5))
    im = torch.where(m == 0, 0.0, draw[1] * math.sqrt(0.5))
    spec = torch.complex(re, im) * keep
    return spec / spectral_mean_square(spec).sqrt()
