"""EFI and SOT: worked examples, properties, climate quantiles, dask, and
agreement with ECMWF's earthkit-meteo."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from earthkit.meteo import extreme as earthkit
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


def _random_case(rng, n_clim: int, m: int, n: int = 3000, *, rain: bool = False, ties: bool = False):
    """Climate quantiles (n_clim, n) and an ensemble (m, n), earthkit's layout (reduced axis 0).

    The ensembles' centres and spreads vary by point, so the indices cover most of [-1, 1].
    """
    if rain:  # ~half the climate and the members dry (0), as for precipitation
        clim = np.maximum(rng.gamma(0.5, 2.0, (n_clim, n)) - 0.5, 0.0)
        ens = np.maximum(rng.gamma(0.5, 2.0 * rng.uniform(0.2, 3.0, n), (m, n)) - 0.4, 0.0)
    else:
        clim = rng.normal(size=(n_clim, n))
        ens = rng.normal(rng.normal(0.0, 1.5, n), rng.uniform(0.2, 2.0, n), (m, n))
    if ties:  # members equal to climate quantiles: both count a tie as "<="
        clim, ens = np.round(clim, 1), np.round(ens, 1)
    clim = np.sort(clim, axis=0)
    clim[:, :3] = np.nan  # NaN propagates in both
    ens[0, 3:6] = np.nan
    return clim, ens


def _hens_inputs(clim: np.ndarray, ens: np.ndarray) -> tuple[xr.DataArray, xr.DataArray]:
    p = np.linspace(0.0, 1.0, clim.shape[0])  # earthkit assumes evenly spaced quantiles
    return (
        xr.DataArray(ens.T, dims=("point", "member")),
        xr.DataArray(clim.T, dims=("point", "quantile"), coords={"quantile": p}),
    )


# Both compute the same discrete formula in float64; only the summation order differs
# (earthkit adds the ~100 interval terms in a loop, hens with numpy's pairwise sum), and
# hens clips to [-1, 1] where earthkit can overshoot by 1-2 ulp: 1e-12 covers both, and a
# wrong term or a strict "<" for ties would differ by >= 1e-3.
EFI_TOL = 1e-12


@pytest.mark.parametrize("m", [2, 5, 10, 51])
@pytest.mark.parametrize("n_clim", [11, 21, 101])
@pytest.mark.parametrize(("rain", "ties"), [(False, False), (True, False), (False, True)])
def test_efi_agrees_with_earthkit_meteo(m, n_clim, rain, ties):
    rng = np.random.default_rng(1000 * m + n_clim)
    clim, ens = _random_case(rng, n_clim, m, rain=rain, ties=ties)
    forecast, climate_q = _hens_inputs(clim, ens)
    for eps in (None, 0.1) if rain else (None,):
        ours = efi(forecast, climate_q, eps=eps).values
        ref = earthkit.efi(clim, ens, **({} if eps is None else {"eps": eps}))
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        assert np.isnan(ours).sum() == 6  # the NaN climates and members, nothing else
        np.testing.assert_allclose(ours, ref, rtol=0, atol=EFI_TOL, equal_nan=True)
        assert np.nanmax(ours) - np.nanmin(ours) > 0.5  # not a trivial agreement


@pytest.mark.parametrize("m", [2, 5, 10, 51])
@pytest.mark.parametrize(("rain", "ties"), [(False, False), (True, False), (False, True)])
def test_sot_agrees_with_earthkit_meteo(m, rain, ties):
    # earthkit's SOT takes 101 percentiles and picks Q_c(90)/(10) and Q_c(99)/(1) by index
    rng = np.random.default_rng(m)
    clim, ens = _random_case(rng, 101, m, rain=rain, ties=ties)
    if rain:  # points dry up to the 99th percentile: a zero tail width gives NaN
        clim[:100, 6:40] = 0.0
    forecast, climate_q = _hens_inputs(clim, ens)
    # a lower-tail SOT of precipitation is meaningless (Q_c(1) = Q_c(10) = 0: all NaN)
    for tail, perc in (("upper", 90),) if rain else (("upper", 90), ("lower", 10)):
        for eps in (None, 0.1) if rain else (None,):
            ours = sot(forecast, climate_q, tail=tail, eps=eps).values
            with np.errstate(divide="ignore", invalid="ignore"):  # earthkit divides by 0 widths
                ref = earthkit.sot(clim, ens, perc, **({} if eps is None else {"eps": eps}))
            np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
            assert np.isnan(ours).sum() == (40 if rain else 6)
            # one division of the same float64 numpy percentiles: equal up to rounding
            np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12, equal_nan=True)
            assert np.nanmax(np.abs(ours)) > 1.0  # beyond the climate tails at some points
