"""Rank histogram: worked example, flatness (chi-square), ties, U shape, weights, dask, NaN."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from hens.forecast.grids import Grid
from hens.scoring import rank_histogram, ranks

from scoring_data import make_ensemble


def test_rank_example_and_ties():
    assert int(ranks(xr.DataArray([1.0, 2.0, 4.0], dims="member"), xr.DataArray(3.0))) == 2
    # y tied with all members: ranks spread uniformly over 0..M
    fc = xr.DataArray(np.ones((4000, 3)), dims=("case", "member"))
    hist = rank_histogram(fc, xr.DataArray(np.ones(4000), dims="case"), dim="case")
    assert stats.chisquare(hist.values).pvalue > 0.01


def test_rank_histogram_is_flat_for_exchangeable_members():
    fc, truth = make_ensemble(members=9, times=40, grid=Grid(16, 32), seed=11)
    counts = rank_histogram(fc, truth, dim=["time", "lat", "lon"], weights=xr.ones_like(truth.lat))
    assert counts.sizes["rank"] == 10
    assert counts.sum() == truth.size
    # cells of one field are independent here, so a chi-square test applies
    assert stats.chisquare(counts.values).pvalue > 0.01
    # a discrete variable (ties everywhere) is flat too thanks to random tie breaking
    coarse = rank_histogram(
        fc.round(), truth.round(), dim=["time", "lat", "lon"], weights=xr.ones_like(truth.lat)
    )
    assert stats.chisquare(coarse.values).pvalue > 0.01
    narrow = rank_histogram(fc * 0.5, truth, dim=["time", "lat", "lon"])
    assert narrow[0] > 2 * narrow[5] and narrow[-1] > 2 * narrow[5]  # U shape


def test_rank_histogram_area_weights_dask_and_nan():
    fc, truth = make_ensemble(members=5, times=6)
    truth = truth.copy()
    truth[0, 0, :] = np.nan
    dims = ["time", "lat", "lon"]
    eager = rank_histogram(fc, truth, dim=dims)
    lazy = rank_histogram(fc.chunk(time=2, lat=4), truth.chunk(time=3), dim=dims)
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-12)
    assert "legendre-gauss" in eager.attrs["weights"]
    valid_weight = (
        xr.DataArray(Grid(8, 16).area_weights, dims="lat", coords={"lat": truth.lat})
        * truth.notnull()
    ).sum()
    assert float(eager.sum()) == pytest.approx(float(valid_weight))  # NaN cases are not counted
    per_time = rank_histogram(fc, truth, dim=["lat", "lon"])
    assert per_time.dims == ("time", "rank")
