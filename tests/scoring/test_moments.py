"""Ensemble-mean RMSE, spread, spread-skill ratio: worked example, hand computation, calibration."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from hens.forecast.errors import DataError
from hens.forecast.grids import Grid
from hens.scoring import (
    debiased_ensemble_mean_mse,
    ensemble_mean_mse,
    ensemble_mean_rmse,
    spread,
    spread_skill_ratio,
)

from scoring_data import make_ensemble

WORKED_FC = xr.DataArray([[1.0, 0.0], [2.0, 1.0], [4.0, 2.0]], dims=("member", "cell"))
WORKED_Y = xr.DataArray([3.0, 0.5], dims="cell")
WORKED_W = xr.DataArray([0.25, 0.75], dims="cell")


def test_worked_example():
    kw = {"weights": WORKED_W, "dim": "cell"}
    assert float(ensemble_mean_rmse(WORKED_FC, WORKED_Y, **kw)) == pytest.approx(0.546453, abs=1e-6)
    assert float(spread(WORKED_FC, **kw)) == pytest.approx(1.154701, abs=1e-6)
    assert float(spread_skill_ratio(WORKED_FC, WORKED_Y, **kw)) == pytest.approx(2.43998, abs=1e-5)
    assert float(debiased_ensemble_mean_mse(WORKED_FC, WORKED_Y, **kw)) == pytest.approx(
        -0.145833, abs=1e-6
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_cases_against_hand_computation(seed):
    grid = Grid(8, 16)
    fc, truth = make_ensemble(members=5, times=4, grid=grid, seed=seed)
    fc = fc + np.random.default_rng(seed).normal(size=(1, 4, 1, 1))  # a bias varying with time
    x, y = fc.values, truth.values
    w = (grid.area_weights / grid.area_weights.sum() / 16)[None, :, None]  # sums to 1 per time
    mse_t = (w * (x.mean(0) - y) ** 2).sum((1, 2))
    var_t = (w * x.var(0, ddof=1)).sum((1, 2))
    rmse, sprd = np.sqrt(mse_t.mean()), np.sqrt(var_t.mean())  # time mean before the root
    dims = ["time", "lat", "lon"]
    assert float(ensemble_mean_rmse(fc, truth, dim=dims)) == pytest.approx(rmse, abs=1e-6)
    assert float(spread(fc, dim=dims)) == pytest.approx(sprd, abs=1e-6)
    ssr = float(spread_skill_ratio(fc, truth, dim=dims))
    assert ssr == pytest.approx(np.sqrt(6 / 5) * sprd / rmse, abs=1e-6)
    per_time = ensemble_mean_rmse(fc, truth, dim=["lat", "lon"])
    np.testing.assert_allclose(per_time.values, np.sqrt(mse_t), atol=1e-6)
    np.testing.assert_allclose(
        ensemble_mean_mse(fc, truth, dim=["lat", "lon"]).values, mse_t, atol=1e-6
    )
    pointwise = ensemble_mean_rmse(fc, truth)
    np.testing.assert_allclose(pointwise.values, abs(x.mean(0) - y), atol=1e-12)


def test_ssr_is_one_for_a_calibrated_small_ensemble():
    # without the sqrt((M+1)/M) factor a perfect 4-member ensemble would score ~0.89
    fc, truth = make_ensemble(members=4, times=200, grid=Grid(16, 32), seed=7)
    ssr = float(spread_skill_ratio(fc, truth, dim=["time", "lat", "lon"]))
    assert ssr == pytest.approx(1.0, abs=0.02)
    assert float(
        spread_skill_ratio(fc * 2, truth * 2, dim=["time", "lat", "lon"])
    ) == pytest.approx(ssr)


def test_nan_propagates_or_is_skipped():
    fc, truth = make_ensemble(members=4)
    truth = truth.copy()
    truth[0, 0, 0] = np.nan
    dims = ["lat", "lon"]
    assert np.isnan(ensemble_mean_rmse(fc, truth, dim=dims).values[0])
    assert np.isfinite(ensemble_mean_rmse(fc, truth, dim=dims).values[1:]).all()
    skipped = spread_skill_ratio(fc, truth, dim=dims, skipna=True)
    assert np.isfinite(skipped.values).all()
    # skipna drops the same cell from both moments
    masked = fc.where(truth.notnull())
    manual = (
        np.sqrt(5 / 4)
        * spread(masked, dim=dims, skipna=True)
        / ensemble_mean_rmse(masked, truth, dim=dims, skipna=True)
    )
    np.testing.assert_allclose(skipped.values, manual.values, rtol=1e-12)


def test_dask_and_errors():
    fc, truth = make_ensemble(members=4, times=4)
    lazy = spread_skill_ratio(fc.chunk(time=1, member=2), truth.chunk(time=1), dim=["lat", "lon"])
    assert lazy.chunks is not None
    np.testing.assert_allclose(
        lazy.values, spread_skill_ratio(fc, truth, dim=["lat", "lon"]).values
    )
    assert lazy.attrs["ensemble_size"] == 4
    with pytest.raises(DataError, match="at least 2 members"):
        spread(fc.isel(member=[0]))
