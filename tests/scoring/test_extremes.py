"""EFI and SOT: worked examples (scoring.md 6-7), properties, climate quantiles, dask."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from hens.forecast.errors import ConfigError, DataError
from hens.scoring import climate_quantiles, efi, sot

P = np.linspace(0.0, 1.0, 101)


def climate(values: np.ndarray) -> xr.DataArray:
    return xr.DataArray(values, dims="quantile", coords={"quantile": P})


def members(values) -> xr.DataArray:
    return xr.DataArray(np.asarray(values, dtype=np.float64), dims="member")


UNIFORM = climate(P)


def test_efi_worked_examples():
    assert float(efi(members([0.55, 0.65, 0.75, 0.85, 0.95]), UNIFORM)) == pytest.approx(
        0.350839, abs=1e-6
    )
    assert float(efi(members([2.0] * 5), UNIFORM)) == pytest.approx(1.0, abs=1e-12)
    assert float(efi(members([-1.0] * 5), UNIFORM)) == pytest.approx(-1.0, abs=1e-12)
    assert float(efi(members((np.arange(100) + 0.5) / 100), UNIFORM)) == pytest.approx(
        0.0, abs=1e-12
    )


def test_efi_stays_within_its_bounds_on_random_climates():
    from hens.forecast.stats import QUANTILES  # the levels of the world's climatology

    rng = np.random.default_rng(0)
    quantiles = np.sort(rng.normal(size=(20000, len(QUANTILES))), axis=-1)
    field = xr.DataArray(quantiles, dims=("point", "quantile"), coords={"quantile": np.asarray(QUANTILES)})
    for shift in (-50.0, 50.0):  # every member beyond the climate: exactly -1 or +1
        values = efi(xr.DataArray(rng.normal(shift, 1.0, (20000, 8)), dims=("point", "member")), field).values
        assert np.all(np.abs(values) <= 1.0) and np.allclose(np.abs(values), 1.0)


@pytest.mark.parametrize(("mu", "expected"), [(0.5, 0.213), (1.0, 0.412), (2.0, 0.714)])
def test_efi_gaussian_shift(mu, expected):
    gaussian = climate(stats.norm.ppf(P))  # -inf and +inf at the ends
    sample = mu + np.random.default_rng(1).standard_normal(100_000)
    assert float(efi(members(sample), gaussian)) == pytest.approx(expected, abs=0.004)
    assert float(efi(members(-sample), gaussian)) == pytest.approx(-expected, abs=0.004)


def test_efi_zero_for_the_climate_itself_and_fields():
    rng = np.random.default_rng(4)
    samples = xr.DataArray(rng.gamma(2.0, size=(4000, 3, 5)), dims=("sample", "lat", "lon"))
    clim = climate_quantiles(samples, "sample")
    assert clim.dims == ("lat", "lon", "quantile")
    np.testing.assert_allclose(
        clim.isel(lat=0, lon=0).values, np.quantile(samples.values[:, 0, 0], P)
    )
    same = xr.DataArray(rng.gamma(2.0, size=(3, 5, 4000)), dims=("lat", "lon", "member"))
    assert float(abs(efi(same, clim)).max()) < 0.03
    shifted = efi(same + 3.0, clim)
    assert float(shifted.min()) > 0.5
    lazy = efi(
        same.chunk(lat=1), clim.chunk(lat=1), dim=["lat", "lon"], weights=xr.ones_like(clim.lat)
    )
    assert lazy.chunks is not None
    assert float(lazy) == pytest.approx(float(efi(same, clim).mean()), rel=1e-12)


def test_efi_nan_and_precipitation_epsilon():
    assert np.isnan(float(efi(members([0.5, np.nan]), UNIFORM)))
    assert np.isnan(float(efi(members([0.5, 0.6]), climate(np.where(P > 0.5, np.nan, P)))))
    # wet climate everywhere: epsilon changes nothing
    wet = members([0.55, 0.65, 0.75, 0.85, 0.95])
    assert float(efi(wet, UNIFORM + 1, eps=0.5)) == pytest.approx(
        float(efi(wet, UNIFORM + 1)), abs=1e-12
    )
    # dry half of the climate is ignored and the index renormalised: still in [-1, 1]
    dry = climate(np.maximum(P - 0.5, 0.0))
    value = float(efi(members([0.6] * 5), dry, eps=0.01))
    assert value == pytest.approx(1.0, abs=1e-12)


def test_sot_worked_examples():
    q = np.zeros(101)
    q[90], q[99] = 10.0, 15.0
    assert float(sot(members(np.arange(8.0, 19.0)), climate(q))) == pytest.approx(0.4, abs=1e-12)
    upper = float(sot(members(np.linspace(0.5, 1.5, 11)), UNIFORM))
    assert upper == pytest.approx(4.5556, abs=1e-4)
    mirrored = climate(-P[::-1])  # the lower tail of the mirrored problem is the same shift
    assert float(sot(members(-np.linspace(0.5, 1.5, 11)), mirrored, tail="lower")) == pytest.approx(
        upper
    )


def test_sot_clip_nan_and_errors():
    assert float(sot(members([100.0] * 11), UNIFORM)) == 10.0
    assert float(sot(members([-100.0] * 11), UNIFORM)) == -10.0
    flat = climate(np.where(P >= 0.9, 1.0, P))  # Q_c(99) == Q_c(90)
    assert np.isnan(float(sot(members([1.0] * 11), flat)))
    with pytest.raises(ConfigError, match="tail"):
        sot(members([1.0, 2.0]), UNIFORM, tail="both")
    no_99 = xr.DataArray(
        [0.0, 0.5, 0.9, 1.0], dims="quantile", coords={"quantile": [0.0, 0.5, 0.9, 1.0]}
    )
    with pytest.raises(DataError, match=r"0\.99 quantile"):
        sot(members([1.0, 2.0]), no_99)
    with pytest.raises(DataError, match="increase from 0 to 1"):
        efi(members([1.0]), climate(P).assign_coords(quantile=P * 100))
