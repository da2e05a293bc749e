"""Brier score, reliability, ROC: worked examples and statistical properties."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from hens.forecast.errors import ConfigError
from hens.forecast.grids import Grid
from hens.scoring import (
    brier_score,
    exceedance_probability,
    reliability,
    roc_auc,
    roc_curve,
)

from scoring_data import make_ensemble

# worked example (M = 4, threshold 0)
EXAMPLE = xr.DataArray(
    [[1, 2, 3, -1], [-1, -2, 1, -3], [2, 2, 1, 0.5], [-1, -1, -2, -3], [0.5, -0.5, 1, -1]],
    dims=("case", "member"),
)
OBS = xr.DataArray([1.0, 1.0, 1.0, -1.0, -1.0], dims="case")


def test_brier_worked_example():
    p = exceedance_probability(EXAMPLE, 0.0)
    np.testing.assert_allclose(p.values, [0.75, 0.25, 1.0, 0.0, 0.5])
    assert float(brier_score(EXAMPLE, OBS, 0.0, dim="case")) == pytest.approx(0.175)
    assert float(brier_score(EXAMPLE, OBS, 0.0, dim="case", fair=True)) == pytest.approx(
        0.133333, abs=1e-6
    )
    below = brier_score(-EXAMPLE, -OBS, 0.0, dim="case", direction="below")
    assert float(below) == pytest.approx(0.175)


def test_roc_worked_example():
    curve = roc_curve(EXAMPLE, OBS, 0.0, dim="case")
    points = np.stack([curve["false_alarm_rate"].values, curve["hit_rate"].values], axis=1)
    expected = [(0, 0), (0, 1 / 3), (0, 2 / 3), (0.5, 2 / 3), (0.5, 1), (1, 1)]
    np.testing.assert_allclose(points, expected, atol=1e-12)
    assert float(roc_auc(EXAMPLE, OBS, 0.0, dim="case")) == pytest.approx(5 / 6)


def test_auc_is_mann_whitney():
    rng = np.random.default_rng(3)
    truth = xr.DataArray(rng.normal(size=400), dims="case")
    fc = truth + xr.DataArray(rng.normal(scale=1.5, size=(400, 9)), dims=("case", "member"))
    p = exceedance_probability(fc, 0.5).values
    event = truth.values > 0.5
    u = stats.mannwhitneyu(p[event], p[~event]).statistic / (event.sum() * (~event).sum())
    assert float(roc_auc(fc, truth, 0.5, dim="case")) == pytest.approx(u, abs=1e-12)


def test_reliability_bins_and_counts():
    counts = reliability(EXAMPLE, OBS, 0.0, dim="case")
    np.testing.assert_allclose(counts["forecast_probability"].values, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(counts["observed_frequency"].values, [0, 1, 0, 1, 1])
    np.testing.assert_allclose(counts["count"].values, [1, 1, 1, 1, 1])
    fc, truth = make_ensemble(members=40, times=30, grid=Grid(16, 32), seed=2)
    signal = 1.5 * xr.DataArray(np.random.default_rng(9).normal(size=truth.shape), dims=truth.dims)
    fc, truth = fc + signal, truth + signal  # a predictable part: p varies, yet calibrated
    table = reliability(fc, truth, 1.0, dim=["time", "lat", "lon"])
    assert table.sizes["bin"] == 10
    assert float(table["count"].sum()) == pytest.approx(truth.size)
    ok = table["count"] > 200
    gap = abs(table["observed_frequency"] - table["forecast_probability"]).where(ok)
    assert float(gap.max()) < 0.1  # calibrated up to sampling noise and bin width
    assert reliability(fc, truth, 1.0, dim="time", bins=5).sizes["bin"] == 5


def test_threshold_field_and_option_errors():
    fc, truth = make_ensemble(members=6)
    clim = xr.zeros_like(truth.isel(time=0, drop=True)) + 0.3
    np.testing.assert_allclose(
        brier_score(fc, truth, clim, dim=["lat", "lon"]).values,
        brier_score(fc, truth, 0.3, dim=["lat", "lon"]).values,
    )
    with pytest.raises(ConfigError, match="direction"):
        brier_score(fc, truth, 0.0, direction="up")
    with pytest.raises(ConfigError, match="bins"):
        reliability(fc, truth, 0.0, dim="time", bins=0)
