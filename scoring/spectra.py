"""Angular power spectra of fields on the sphere from their spherical-harmonic coefficients.

With the orthonormal real SHT of torch-harmonics (coefficients c_lm, m >= 0 stored):

    E_l = |c_l0|^2 + 2 sum_{m=1..l} |c_lm|^2            (kind="total", dim wavenumber = l)
    E_m = (1 if m == 0 else 2) sum_{l>=m} |c_lm|^2      (kind="zonal", dim wavenumber = m)

so that (Parseval) sum_l E_l = integral f^2 dOmega over the unit sphere, i.e.

    sum_l E_l / (4 pi) = area-weighted mean of f^2

with the grid's quadrature weights, exactly for fields band-limited to ``lmax``. Units:
[f]^2 sr. Example: f = sin(colat) cos(lon) has E_1 = 4 pi / 3 and nothing else.
C_l = E_l / (2l + 1) is the per-mode spectrum; wavelength ~ 2 pi a / sqrt(l (l + 1)).

Kinetic energy per total wavenumber (:func:`kinetic_energy_spectrum`) comes from the ortho
vector SHT of ``(u, v)``: with coefficients ``c`` (spheroidal, toroidal), vorticity and
divergence are ``-l (l + 1) c / a``, so the area-mean kinetic energy in degree ``l`` is
``l (l + 1) / 2 * sum_m w_m |c_lm|^2 / (4 pi)`` with ``w_0 = 1``, ``w_m = 2`` for ``m >= 1``,
and its sum over ``l`` is the area mean of ``(u^2 + v^2) / 2`` for band-limited winds.

Grids: ``legendre-gauss`` (exact to lmax = nlat) and ``equiangular`` with poles (exact to
lmax = (nlat + 1) // 2 with Clenshaw-Curtis quadrature, torch-harmonics' default). Latitude
may come in either order and longitude in any order; both are sorted by value (north first,
longitude from 0) before the transform. ``equiangular-nopoles`` grids have no SHT: regrid.

How much of a spectral check over a few initial times is the sample of those times:
:func:`resampled_spectrum_error` (resamples of the times, with replacement).

Transforms run in float64 with torch, imported on first use (not with this module); the
xarray function works one dask chunk at a time over the leading dims, each chunk holding
whole (lat, lon) fields.

References: torch-harmonics (Bonev et al. 2023); WeatherBench2 ``ZonalEnergySpectrum``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from hens.forecast.errors import ConfigError, DataError
from hens.forecast.grids import Grid
from hens.forecast.types import check_choice
from hens.scoring.attributes import finish, units_of
from hens.scoring.inputs import core_chunks
from hens.scoring.types import SpectrumKind
from hens.scoring.weights import LAT, LON

if TYPE_CHECKING:
    import torch


def default_lmax(grid: Grid) -> int:
    """Degrees resolved exactly by the grid's quadrature (torch-harmonics' 0.8.1 defaults)."""
    return grid.nlat if grid.sht_grid == "legendre-gauss" else (grid.nlat + 1) // 2


@lru_cache(maxsize=8)
def _sht(nlat: int, nlon: int, lmax: int, mmax: int, grid: str) -> Any:
    import torch
    from torch_harmonics import RealSHT

    return RealSHT(nlat, nlon, lmax=lmax, mmax=mmax, grid=grid, norm="ortho").to(torch.float64)


def spectrum_kernel(
    field: np.ndarray, *, nlat: int, nlon: int, lmax: int, mmax: int, grid: str, kind: str
) -> np.ndarray:
    """Power spectrum of numpy fields ``(..., nlat, nlon)`` (north first) -> ``(..., n)``."""
    import torch

    lead = field.shape[:-2]
    data = torch.from_numpy(np.ascontiguousarray(field, dtype=np.float64).reshape(-1, nlat, nlon))
    with torch.no_grad():
        coeffs = _sht(nlat, nlon, lmax, mmax, grid)(data)
        power = (coeffs.real.square() + coeffs.imag.square()).numpy()  # (n, l, m): no hypot, no reduction over 2
    factor = np.full(mmax, 2.0)
    factor[0] = 1.0
    if nlon % 2 == 0 and mmax > nlon // 2:
        factor[nlon // 2] = 1.0  # the Nyquist wave has no separate negative-m partner
    power *= factor
    out = power.sum(axis=2) if kind == "total" else power.sum(axis=1)
    return out.reshape(*lead, out.shape[-1])


def power_spectrum(
    field: xr.DataArray,
    *,
    kind: SpectrumKind = "total",
    lmax: int | None = None,
) -> xr.DataArray:
    """Angular power spectrum E_l (or zonal E_m) of each (lat, lon) field.

    Parameters
    ----------
    field
        DataArray with ``lat`` and ``lon`` dims (any other dims are kept: ``member``,
        ``lead_time``, ``channel``...), numpy or dask. NaN anywhere in a field makes its
        whole spectrum NaN.
    kind
        ``"total"``: spectrum over total wavenumber l; ``"zonal"``: over zonal wavenumber m.
    lmax
        Number of degrees l = 0..lmax-1; default :func:`default_lmax` of the grid.

    Returns
    -------
    xarray.DataArray
        Float64, the other dims of ``field`` then ``wavenumber`` (0..lmax-1, or 0..mmax-1
        with mmax = min(lmax, nlon // 2 + 1)). Units ``[f]^2 sr``. The sum over
        ``wavenumber`` / (4 pi) equals the area-weighted mean of f^2 for band-limited fields.
    """
    check_choice("kind", kind, SpectrumKind)
    for d in (LAT, LON):
        if d not in field.dims:
            raise DataError(
                f"power_spectrum needs a {d!r} dim; dims are {', '.join(map(str, field.dims))}"
            )
    field = field.assign_coords({LON: np.mod(field[LON].values, 360.0)})
    field = field.sortby(LAT, ascending=False).sortby(LON)
    grid = Grid.detect(field[LAT].values, field[LON].values, what="field")
    sht_grid = grid.sht_grid  # raises for grids without an SHT
    nmax = default_lmax(grid) if lmax is None else int(lmax)
    if not 1 <= nmax <= grid.nlat:
        raise ConfigError(f"lmax={lmax} is out of range for grid {grid.spec}; use 1..{grid.nlat}")
    mmax = min(nmax, grid.nlon // 2 + 1)
    size = nmax if kind == "total" else mmax
    field = core_chunks(field, (LAT, LON))
    out = xr.apply_ufunc(
        spectrum_kernel,
        field,
        input_core_dims=[[LAT, LON]],
        output_core_dims=[["wavenumber"]],
        kwargs={
            "nlat": grid.nlat,
            "nlon": grid.nlon,
            "lmax": nmax,
            "mmax": mmax,
            "grid": sht_grid,
            "kind": kind,
        },
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"wavenumber": size}},
    ).assign_coords(wavenumber=np.arange(size))
    units = units_of(field)
    return finish(
        out,
        {
            "long_name": f"angular power spectrum ({kind} wavenumber)",
            "units": f"({units})^2 sr" if units else "sr",
            "normalisation": "sum over wavenumber / (4 pi) = area mean of f^2 (ortho SHT)",
            "grid": grid.spec,
            "lmax": nmax,
            "mmax": mmax,
        },
        name="power_spectrum",
    )


def resampled_spectrum_error(
    power: xr.DataArray,
    reference: xr.DataArray,
    *,
    dim: str = "init_time",
    draws: int = 2000,
    seed: int = 0,
) -> xr.DataArray:
    """Worst ``|power / reference - 1|`` over ``wavenumber`` for resamples of ``dim``.

    Each draw takes as many entries of ``dim`` as there are, with replacement, and compares
    the mean ``power`` of the drawn entries with their mean ``reference``: how much of a
    spectral check over a few initial times is the sample of those times (docs/models.md,
    "How much of the spectral and CRPS checks is the sample of initial times").

    Parameters
    ----------
    power, reference
        Power spectra with dims ``dim`` and ``wavenumber`` and the same coordinates on both
        (e.g. the members' mean power of each initial time and the truth's around its valid
        time, :func:`power_spectrum`; any unit, the same for both); other dims are kept.
    dim
        The dim that is resampled.
    draws
        Number of resamples.
    seed
        Seed of the draws (numpy's default generator): the same draws for the same seed.

    Returns
    -------
    xarray.DataArray
        Dimensionless, dim ``draw`` and the other dims of ``power``.
    """
    if draws < 1:
        raise ConfigError(f"draws={draws} must be >= 1")
    for name, x in (("power", power), ("reference", reference)):
        if dim not in x.dims or "wavenumber" not in x.dims:
            raise DataError(f"{name} needs dims {dim!r} and 'wavenumber'; it has {', '.join(map(str, x.dims))}")
    power, reference = xr.align(power, reference, join="exact")
    n = power.sizes[dim]
    picks = xr.DataArray(np.random.default_rng(seed).integers(0, n, size=(draws, n)), dims=("draw", "pick"))
    ratio = power.isel({dim: picks}).mean("pick") / reference.isel({dim: picks}).mean("pick")
    worst = abs(ratio - 1).max("wavenumber")
    worst.attrs = {"long_name": f"worst |power / reference - 1| over wavenumbers, {draws} resamples of {dim}",
                   "units": "1"}
    return worst.rename("resampled_spectrum_error")


@lru_cache(maxsize=8)
def _vector_sht(grid: Grid, lmax: int) -> torch.nn.Module:
    import torch_harmonics as th

    return th.RealVectorSHT(
        grid.nlat, grid.nlon, lmax=lmax, mmax=lmax, grid=grid.sht_grid, norm="ortho"
    ).double()


def kinetic_energy_spectrum(
    u: np.ndarray, v: np.ndarray, grid: Grid, *, lmax: int | None = None
) -> np.ndarray:
    """Kinetic energy per spherical harmonic degree.

    Parameters
    ----------
    u, v
        Eastward and northward wind (m s-1), shape ``(..., nlat, nlon)``, latitude north first.
    grid
        The grid of ``u`` and ``v``.
    lmax
        Number of degrees (``l = 0 .. lmax - 1``); default :func:`default_lmax`.

    Returns
    -------
    float64 array ``(..., lmax)`` in J kg-1 (m2 s-2); degree 0 is zero.
    """
    import torch

    lmax = lmax or default_lmax(grid)
    uv = torch.stack(
        (
            torch.as_tensor(np.asarray(u), dtype=torch.float64),
            torch.as_tensor(np.asarray(v), dtype=torch.float64),
        ),
        dim=-3,
    )
    with torch.no_grad():
        coeffs = _vector_sht(grid, lmax)(uv)
    power = (coeffs.real**2 + coeffs.imag**2).sum(dim=-3)  # spheroidal + toroidal
    per_degree = 2.0 * power.sum(dim=-1) - power[..., 0]
    l = torch.arange(lmax, dtype=torch.float64)  # noqa: E741
    return (0.5 * l * (l + 1) * per_degree / (4.0 * math.pi)).numpy()
