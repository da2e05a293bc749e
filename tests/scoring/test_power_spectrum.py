"""Angular power spectra: known functions and Parseval on both SHT grid kinds, orientation, dask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from torch_harmonics import InverseRealSHT

import hens.scoring as hs
from hens.forecast.errors import ConfigError, DataError, GridMismatch
from hens.forecast.grids import Grid
from hens.scoring import power_spectrum, weighted_mean
from hens.scoring.spectra import default_lmax

GRIDS = [Grid(32, 64, "legendre-gauss"), Grid(33, 64, "equiangular")]


def field(grid: Grid, values: np.ndarray, lead: tuple[str, ...] = ()) -> xr.DataArray:
    return xr.DataArray(
        values, dims=(*lead, "lat", "lon"), coords={"lat": grid.lat, "lon": grid.lon}
    )


def band_limited(grid: Grid, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Random fields whose ortho SHT is exact on ``grid`` (degrees < default_lmax)."""
    lmax = default_lmax(grid)
    rng = np.random.default_rng(seed)
    coeffs = rng.normal(size=(*shape, lmax, lmax)) + 1j * rng.normal(size=(*shape, lmax, lmax))
    coeffs = np.tril(coeffs)  # m <= l
    coeffs[..., 0] = coeffs[..., 0].real  # real field: c_l0 real
    isht = InverseRealSHT(
        grid.nlat, grid.nlon, lmax=lmax, mmax=lmax, grid=grid.sht_grid, norm="ortho"
    ).double()
    return isht(torch.from_numpy(coeffs)).numpy()


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: g.kind)
def test_dipole_and_constant(grid):
    colat = np.radians(90.0 - grid.lat)[:, None]
    lon = np.radians(grid.lon)[None, :]
    f = field(grid, np.sin(colat) * np.cos(lon))
    total = power_spectrum(f).values
    assert total[1] == pytest.approx(4 * np.pi / 3, rel=1e-10)
    assert np.abs(np.delete(total, 1)).max() < 1e-10
    zonal = power_spectrum(f, kind="zonal").values
    assert zonal[1] == pytest.approx(4 * np.pi / 3, rel=1e-10)
    assert float(weighted_mean(f**2, ["lat", "lon"])) == pytest.approx(1 / 3, rel=1e-10)
    ones = power_spectrum(field(grid, np.ones(grid.shape))).values
    assert ones[0] == pytest.approx(4 * np.pi, rel=1e-10)


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: g.kind)
def test_parseval_over_leading_dims(grid):
    values = band_limited(grid, (3, 2))
    f = field(grid, values, ("member", "lead_time"))
    spec = power_spectrum(f)
    assert spec.dims == ("member", "lead_time", "wavenumber")
    assert spec.sizes["wavenumber"] == default_lmax(grid)
    mean_square = weighted_mean(f**2, ["lat", "lon"])
    np.testing.assert_allclose(
        spec.sum("wavenumber").values / (4 * np.pi), mean_square.values, rtol=1e-5
    )
    zonal = power_spectrum(f, kind="zonal")
    np.testing.assert_allclose(
        zonal.sum("wavenumber").values, spec.sum("wavenumber").values, rtol=1e-10
    )
    assert spec.attrs["units"] == "sr"


def test_orientation_and_dask_do_not_matter():
    grid = GRIDS[0]
    f = field(grid, band_limited(grid, (4,), seed=3), ("member",)).assign_attrs(units="K")
    reference = power_spectrum(f)
    flipped = f.isel(lat=slice(None, None, -1))  # south first
    rolled = f.roll(lon=7).assign_coords(lon=(f.lon.roll(lon=7) + 180) % 360 - 180)  # [-180, 180)
    np.testing.assert_allclose(power_spectrum(flipped).values, reference.values, rtol=1e-10)
    np.testing.assert_allclose(power_spectrum(rolled).values, reference.values, rtol=1e-10)
    lazy = power_spectrum(f.chunk(member=1, lat=8))
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, reference.values, rtol=1e-12)
    assert reference.attrs["units"] == "(K)^2 sr"


def test_errors():
    nopoles = Grid(32, 64, "equiangular-nopoles")
    with pytest.raises(GridMismatch, match="no spherical harmonic transform"):
        power_spectrum(field(nopoles, np.ones(nopoles.shape)))
    grid = GRIDS[0]
    with pytest.raises(ConfigError, match="kind"):
        power_spectrum(field(grid, np.ones(grid.shape)), kind="meridional")
    with pytest.raises(ConfigError, match="lmax"):
        power_spectrum(field(grid, np.ones(grid.shape)), lmax=40)


def test_resampled_spectrum_error_counts_the_draws_that_hold_an_outlying_time():
    """Three initial times, one with 1.9x the reference power at l = 1: a draw's worst error is
    0.3 x the times it drew that one, so P(worst > 0.2) = 1 - (2/3)^3 (binomial, exact)."""
    coords = {"init_time": np.arange(3), "wavenumber": [1, 2]}
    reference = xr.DataArray(np.ones((3, 2)), dims=("init_time", "wavenumber"), coords=coords)
    power = reference.copy(data=[[1.0, 1.0], [1.0, 1.0], [1.9, 1.0]])
    worst = hs.resampled_spectrum_error(power, reference, draws=20_000, seed=3)
    assert worst.dims == ("draw",) and worst.sizes["draw"] == 20_000
    assert np.allclose(np.unique(worst.values), [0.0, 0.3, 0.6, 0.9])
    assert float((worst > 0.2).mean()) == pytest.approx(1 - (2 / 3) ** 3, abs=0.01)
    assert (hs.resampled_spectrum_error(power, reference, draws=50, seed=3) == worst[:50]).all()
    assert (hs.resampled_spectrum_error(2 * reference, reference, draws=10) == 1.0).all()
    with pytest.raises(ValueError):  # coordinates that do not match are not silently aligned
        hs.resampled_spectrum_error(power, reference.assign_coords(wavenumber=[1, 3]))
    with pytest.raises(DataError, match="needs dims 'init_time' and 'wavenumber'"):
        hs.resampled_spectrum_error(power.rename(init_time="time"), reference)
