"""Outliers, best member and sigma diagnostics."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from hens.forecast.errors import ConfigError
from hens.forecast.grids import Grid
from hens.scoring import (
    best_member_error,
    expected_best_member_error,
    expected_max_sigma,
    expected_outlier_fraction,
    max_sigma,
    outlier_fraction,
    sigma_exceedance,
)

from scoring_data import make_ensemble

DIMS = ["time", "lat", "lon"]


def test_small_cases_by_hand():
    fc = xr.DataArray([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 1.0, 1.0]], dims=("cell", "member"))
    y = xr.DataArray([3.0, 5.0, np.nan], dims="cell")
    np.testing.assert_array_equal(outlier_fraction(fc, y).values, [0.0, 1.0, np.nan])
    np.testing.assert_array_equal(best_member_error(fc, y).values, [1.0, 1.0, np.nan])
    assert float(best_member_error(fc, y, dim="cell", skipna=True)) == 1.0
    z = max_sigma(fc).values  # mean 7/3, sd sqrt(7/3); all equal -> NaN
    np.testing.assert_allclose(z[:2], (4 - 7 / 3) / np.sqrt(7 / 3))
    assert np.isnan(z[2])
    np.testing.assert_allclose(max_sigma(fc, tail="lower").values[0], (7 / 3 - 1) / np.sqrt(7 / 3))


def test_calibrated_ensemble_matches_expectations():
    fc, truth = make_ensemble(members=19, times=60, grid=Grid(16, 32), seed=3)
    out = float(outlier_fraction(fc, truth, dim=DIMS))
    assert out == pytest.approx(expected_outlier_fraction(19), abs=0.01)  # 0.1
    assert outlier_fraction(fc, truth, dim=DIMS).attrs["expected_if_calibrated"] == pytest.approx(
        0.1
    )
    best = float(best_member_error(fc, truth, dim=DIMS))
    assert best == pytest.approx(expected_best_member_error(19), rel=0.05)
    rmse = float(best_member_error(fc, truth, dim=DIMS, metric="rmse"))
    assert rmse > best
    wide = float(outlier_fraction(fc * 0.5, truth, dim=DIMS))
    assert wide > 3 * out  # under-dispersion shows as excess outliers


def test_gaussian_reference_values():
    assert expected_best_member_error(1) == pytest.approx(2 / np.sqrt(np.pi), rel=1e-5)
    # Monte Carlo with 2e5 cases gives 0.2149 +- 0.0006 (M = 10) and 0.0555 +- 0.0003 (M = 50)
    for m, value in [(10, 0.2149), (50, 0.0555)]:
        assert expected_best_member_error(m) == pytest.approx(value, rel=0.01)
    # E[max of M normals]: 3.2414 for M = 1000 and 3.8516 for 10000 (tables); 3.778 for 7424
    for m, value in [(50, 2.2491), (256, 2.8269), (1000, 3.2414), (7424, 3.7777)]:
        assert expected_max_sigma(m) == pytest.approx(value, abs=1e-3)
    assert expected_outlier_fraction(50) == pytest.approx(0.0392, abs=1e-4)
    assert expected_outlier_fraction(7424) == pytest.approx(2.694e-4, rel=1e-3)


def test_sigma_exceedance_of_a_big_gaussian_ensemble():
    rng = np.random.default_rng(8)
    fc = xr.DataArray(rng.standard_normal((20, 5000)), dims=("cell", "member"))
    frac = sigma_exceedance(fc, k=2.0, dim="cell")
    assert float(frac) == pytest.approx(2.275e-2, rel=0.05)
    assert frac.attrs["expected_if_gaussian"] == pytest.approx(2.275e-2, rel=1e-3)
    both = float(sigma_exceedance(fc, k=2.0, tail="both", dim="cell"))
    assert both == pytest.approx(2 * 2.275e-2, rel=0.05)
    mean_max = float(max_sigma(fc.isel(member=slice(0, 256)), tail="upper", dim="cell"))
    assert mean_max == pytest.approx(expected_max_sigma(256), abs=0.15)


def test_dask_and_options():
    fc, truth = make_ensemble(members=6, times=4)
    lazy = outlier_fraction(fc.chunk(time=1), truth.chunk(time=1), dim=["lat", "lon"])
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, outlier_fraction(fc, truth, dim=["lat", "lon"]).values)
    with pytest.raises(ConfigError, match="metric"):
        best_member_error(fc, truth, metric="median")
    with pytest.raises(ConfigError, match="tail"):
        max_sigma(fc, tail="left")
