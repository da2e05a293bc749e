"""CRPS: worked examples, properscoring / scoringrules / brute force, NaN, dask, weights."""

from __future__ import annotations

import numpy as np
import properscoring
import pytest
import scoringrules
import xarray as xr

from hens.forecast.errors import DataError
from hens.forecast.grids import Grid
from hens.scoring import crps, crps_kernel

from scoring_data import make_ensemble


def brute_force(x: np.ndarray, y: np.ndarray, fair: bool) -> np.ndarray:
    """O(M^2) energy form, members on the last axis."""
    m = x.shape[-1]
    skill = np.abs(x - y[..., None]).mean(-1)
    pairs = np.abs(x[..., :, None] - x[..., None, :]).sum((-1, -2))
    return skill - pairs / (2 * m * (m - 1 if fair else m))


def scalar(members: list[float], y: float, **kw) -> float:
    return float(crps(xr.DataArray(members, dims="member"), xr.DataArray(y), **kw).values)


@pytest.mark.parametrize(
    ("y", "standard", "fair"), [(3.0, 2 / 3, 1 / 3), (5.0, 2.0, 5 / 3), (0.0, 5 / 3, 4 / 3)]
)
def test_worked_examples(y, standard, fair):
    assert scalar([1.0, 2.0, 4.0], y) == pytest.approx(standard, abs=1e-12)
    assert scalar([1.0, 2.0, 4.0], y, fair=True) == pytest.approx(fair, abs=1e-12)


@pytest.mark.parametrize("members", [1, 2, 3, 10, 51])
def test_standard_matches_properscoring(members):
    rng = np.random.default_rng(members)
    x = rng.normal(size=(4, 7, members)) * rng.uniform(0.1, 3, size=(4, 7, 1))
    y = rng.normal(size=(4, 7))
    x[0, 0] = y[0, 0]  # a perfect forecast inside the batch
    x[1, 1, : members // 2] = x[1, 1, -1]  # ties
    np.testing.assert_allclose(
        crps_kernel(x, y), properscoring.crps_ensemble(y, x), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(
        crps_kernel(x, y), brute_force(x, y, fair=False), rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("members", [2, 3, 10, 51])
def test_fair_matches_scoringrules(members):
    rng = np.random.default_rng(100 + members)
    x = rng.normal(size=(5, 6, members))
    y = rng.normal(size=(5, 6))
    got = crps_kernel(x, y, fair=True)
    np.testing.assert_allclose(
        got, scoringrules.crps_ensemble(y, x, m_axis=-1, estimator="fair"), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(
        got, scoringrules.crps_ensemble(y, x, m_axis=-1, estimator="pwm"), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(got, brute_force(x, y, fair=True), rtol=1e-10, atol=1e-12)


def test_member_dim_anywhere_and_dataset():
    fc, truth = make_ensemble(members=6)
    expected = properscoring.crps_ensemble(truth.values, np.moveaxis(fc.values, 0, -1))
    got = crps(fc.transpose("lat", "member", "lon", "time"), truth)
    np.testing.assert_allclose(got.transpose("time", "lat", "lon").values, expected, rtol=1e-12)
    ds = crps(xr.Dataset({"t2m": fc, "z": fc * 2}), xr.Dataset({"t2m": truth, "z": truth * 2}))
    np.testing.assert_allclose(ds["z"].values, 2 * expected, rtol=1e-12)
    assert ds["t2m"].attrs["ensemble_size"] == 6


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_member_first_layout_with_many_members(dtype):
    # a member-first array seen through xarray is a strided view: copied in tiles
    fc, truth = make_ensemble(members=100, times=2, dtype=dtype)
    expected = properscoring.crps_ensemble(
        truth.values.astype(float), np.moveaxis(fc.values, 0, -1).astype(float)
    )
    got = crps(fc, truth, fair=False)
    assert got.dtype == dtype
    np.testing.assert_allclose(got.values, expected, rtol=1e-5 if dtype == "float32" else 1e-12)


def test_perfect_deterministic_forecast_scores_zero():
    fc, truth = make_ensemble(members=5)
    perfect = truth.expand_dims(member=5).transpose(*fc.dims)
    assert float(abs(crps(perfect, truth)).max()) == 0.0
    assert float(abs(crps(perfect, truth, fair=True)).max()) == 0.0


def test_one_member_is_mae_and_fair_needs_two():
    fc, truth = make_ensemble(members=1)
    np.testing.assert_allclose(crps(fc, truth).values, abs(fc.isel(member=0) - truth).values)
    with pytest.raises(DataError, match="at least 2 members"):
        crps(fc, truth, fair=True)


def test_float32_keeps_accuracy_for_large_means():
    rng = np.random.default_rng(5)
    x = 5.0e4 + 100.0 * rng.normal(size=(200, 64))  # geopotential-like: mean >> spread
    y = 5.0e4 + 100.0 * rng.normal(size=200)
    exact = crps_kernel(x, y)
    single = crps_kernel(x.astype(np.float32), y.astype(np.float32))
    assert single.dtype == np.float32
    np.testing.assert_allclose(
        single, exact, rtol=2e-4
    )  # float32 rounding of the inputs themselves


def test_nan_member_or_truth_propagates():
    x = np.array([[1.0, 2.0, np.nan, 4.0], [1.0, 2.0, 3.0, 4.0]])
    y = np.array([3.0, np.nan])
    got = crps(xr.DataArray(x, dims=("cell", "member")), xr.DataArray(y, dims="cell")).values
    assert np.isnan(got).all()
    # properscoring skips NaN members instead; dropping the member explicitly reproduces it
    fc = xr.DataArray(x[:1], dims=("cell", "member"))
    kept = crps(fc.dropna("member"), xr.DataArray([3.0], dims="cell")).values
    np.testing.assert_allclose(kept, properscoring.crps_ensemble(np.array([3.0]), x[:1]))
    assert kept[0] == pytest.approx(2 / 3)


def test_area_weighted_mean_and_explicit_weights():
    fc = xr.DataArray([[1.0, 1.0], [2.0, 2.0], [4.0, 4.0]], dims=("member", "cell"))
    truth = xr.DataArray([3.0, 5.0], dims="cell")
    w = xr.DataArray([0.25, 0.75], dims="cell")
    out = crps(fc, truth, weights=w, dim="cell")
    assert float(out) == pytest.approx(0.25 * 2 / 3 + 0.75 * 2.0)
    assert out.attrs["weights"] == "explicit"

    grid = Grid(8, 16)
    fc, truth = make_ensemble(members=4, grid=grid)
    point = crps(fc, truth)
    weights = grid.area_weights[None, :, None]
    expected = (point.values * weights).sum((1, 2)) / (weights.sum() * 16)
    got = crps(fc, truth, dim=["lat", "lon"])
    np.testing.assert_allclose(got.values, expected, rtol=1e-12)
    assert "legendre-gauss" in got.attrs["weights"]
    assert got.attrs["estimator"].startswith("standard")
    flipped = crps(fc.sortby("lat"), truth.sortby("lat"), dim=["lat", "lon"])
    np.testing.assert_allclose(flipped.values, expected, rtol=1e-12)


def test_dask_is_lazy_and_equal():
    fc, truth = make_ensemble(members=6, times=4)
    eager = crps(fc, truth, fair=True, dim=["lat", "lon"])
    lazy = crps(fc.chunk(member=2, time=1), truth.chunk(time=1), fair=True, dim=["lat", "lon"])
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.compute().values, eager.values, rtol=1e-12)


def test_input_errors():
    fc, truth = make_ensemble(members=3)
    with pytest.raises(DataError, match="member dim 'ens'"):
        crps(fc, truth, "ens")
    with pytest.raises(DataError, match="truth has the member dim"):
        crps(fc, fc)
    with pytest.raises(DataError, match="coordinates differ"):
        crps(fc, truth.assign_coords(time=truth.time + 1))
    with pytest.raises(DataError, match="not a dim"):
        crps(fc, truth, dim="level")
    with pytest.raises(DataError, match="must not contain the member dim"):
        crps(fc, truth, dim=["member", "lat"])


def test_member_chunks_stay_within_a_byte_budget():
    """All members in one chunk, but never a chunk over the budget: the largest other dim splits."""
    import dask.array as dsa
    import xarray as xr

    from hens.forecast.errors import DataError
    from hens.scoring.inputs import member_chunks

    fc = xr.DataArray(dsa.zeros((64, 4, 32, 64), chunks=(16, 1, 32, 64), dtype=np.float32),
                      dims=("member", "lead_time", "lat", "lon"))
    whole = member_chunks(fc, "member")
    assert whole.chunks[0] == (64,) and whole.chunks[2] == (32,)
    banded = member_chunks(fc, "member", max_bytes=64 * 8 * 64 * 4)
    assert banded.chunks[0] == (64,) and max(banded.chunks[2]) == 8
    assert max(np.prod([max(c) for c in banded.chunks]) * 4, 0) <= 64 * 8 * 64 * 4
    with pytest.raises(DataError, match="raise max_bytes"):
        member_chunks(fc, "member", max_bytes=100)
