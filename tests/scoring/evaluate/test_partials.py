"""The fused scorecard (one sort per cell, sums per piece) against today's composition of the
public metric functions, the references, and Gaussian draws (HENS Part II expectations)."""

from __future__ import annotations

import numpy as np
import properscoring
import pytest
import xarray as xr
from scipy import stats

import hens.scoring as hs
from hens.forecast.grids import Grid
from hens.forecast.members import MemberLayout
from hens.scoring.evaluate import scorecard as sc
from hens.scoring.evaluate.fused import cell_statistics, sorted_quantiles
from hens.scoring.evaluate.partials import PieceOptions, combine, finish_scores, piece_sums
from hens.scoring.evaluate.subsets import subset_plan
from hens.scoring.evaluate.truth import thresholds_of

GRID = Grid(16, 32)


def _case(m: int = 24, inits: int = 3, seed: int = 1):
    rng = np.random.default_rng(seed)
    fc = rng.standard_normal((inits, m, 1, *GRID.shape)).astype(np.float32)
    fc[0, :5, 0, 0, 0] = 0.5  # ties with the truth
    fc[1, :, 0, 1, 1] = fc[1, 0, 0, 1, 1]  # zero spread
    truth = rng.standard_normal((inits, 1, *GRID.shape)).astype(np.float32)
    truth[0, 0, 0, 0] = 0.5
    pers = rng.standard_normal((inits, *GRID.shape)).astype(np.float32)
    p = np.linspace(0, 1, 101)
    clim = np.sort(rng.standard_normal((inits, 1, 101, *GRID.shape)) * 1.2, axis=2)
    return fc, truth, pers, p, clim


def test_fused_scorecard_equals_todays_composition_of_the_public_functions():
    fc, truth, pers, p, clim = _case()
    inits, m = fc.shape[:2]
    co = {"init_time": np.arange(inits), "lead_time": [0], "lat": GRID.lat, "lon": GRID.lon}
    f = xr.DataArray(fc, dims=("init_time", "member", "lead_time", "lat", "lon"), coords=co)
    t = xr.DataArray(truth, dims=("init_time", "lead_time", "lat", "lon"), coords=co)
    ps = xr.DataArray(pers, dims=("init_time", "lat", "lon"), coords={k: co[k] for k in ("init_time", "lat", "lon")})
    c = xr.DataArray(clim, dims=("init_time", "lead_time", "quantile", "lat", "lon"), coords={**co, "quantile": p})
    levels = (0.9, 0.99)
    today = sc.core_scores(f, t, ps)
    today.update(sc.threshold_scores(f, t, thresholds_of(c, levels)))
    today.update(sc.extreme_scores(f, c))
    w = np.repeat(hs.area_weights(f.lat, f.lon).values, GRID.nlon)
    options = PieceOptions(members=m, levels=levels, threshold_index=(90, 99), quantile_p=p)
    parts = [piece_sums(fc[i, :, 0].reshape(m, -1), truth[i, 0].ravel(), pers[i].ravel(), w, options,
                        climate=np.moveaxis(clim[i, 0], 0, -1).reshape(-1, 101), efi_map=i == 0)
             for i in range(inits)]
    total = combine(parts)
    fused = finish_scores(total, options)
    fused["efi_map"] = total["efi_map"].reshape(GRID.shape)
    for name, value in today.items():
        expected = np.asarray(value.values).squeeze()
        got = np.asarray(fused[name]).squeeze()
        if name == "rank_histogram":  # ties are broken per chunk: one tied case may move
            np.testing.assert_allclose(got, expected, atol=2 / expected.size / 10)
            continue
        tol = 1e-7 if name == "efi_map" else 1e-8  # float32 map; float32 member means today
        np.testing.assert_allclose(got, expected, rtol=tol, atol=1e-12, err_msg=name)


def test_cell_statistics_match_properscoring_numpy_quantiles_and_counts():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 37)).astype(np.float32)
    x[:20, :3] = 0.25
    y = rng.standard_normal(300).astype(np.float32)
    y[:20] = 0.25
    thr = rng.standard_normal((300, 2))
    thr[5, 0] = np.float64(np.float32(0.25))  # exactly a member value: "x > thr" is strict
    s = cell_statistics(x.T.copy().T, y, thresholds=thr)  # strided, as a member-first view
    np.testing.assert_allclose(s["crps"], properscoring.crps_ensemble(y.astype(float), x.astype(float)), rtol=1e-10)
    np.testing.assert_array_equal(s["above"], (x[:, :, None] > thr[:, None, :]).sum(1))
    np.testing.assert_array_equal(
        sorted_quantiles(np.sort(x, -1), (0.1, 0.9)),
        np.quantile(x.astype(np.float64), [0.1, 0.9], axis=-1, method="linear").T)
    below, le = (x < y[:, None]).sum(1), (x <= y[:, None]).sum(1)
    assert ((s["rank"] >= below) & (s["rank"] <= le)).all() and (s["rank"] != below).any()
    x[7, 4] = np.nan
    s = cell_statistics(x, y)
    assert s["rank"][7] == -1 and np.isnan(s["crps"][7]) and np.isfinite(s["crps"][8])


def test_gaussian_draws_sigma_exceedance_and_subsets_follow_their_expectations():
    """Members and truth i.i.d. N(0, 1): |y - xbar| / s > k as often as 2 (1 - Phi(k)) (up to
    the finite-M Student-t factor), outliers 2 / (M + 1) and best member E min |x - y| at
    every sub-ensemble size."""
    layout = MemberLayout(checkpoints=4, pairs=16, seeds=1)
    m, cells = layout.size, 60_000
    rng = np.random.default_rng(7)
    x = rng.standard_normal((m, cells), dtype=np.float32)
    y = rng.standard_normal(cells, dtype=np.float32)
    coords = layout.coords()
    plan = subset_plan(coords["checkpoint"], coords["pair"], draws=4)
    assert 50 in plan.sizes and plan.sizes[-1] == m
    options = PieceOptions(members=m, units=plan.units, orders=plan.orders, counts=plan.counts)
    scores = finish_scores(combine([piece_sums(x, y, y, np.ones(cells), options)]), options)
    for k, got in zip((2.0, 3.0, 4.0), scores["sigma_exceedance"], strict=True):
        gauss = 2 * stats.norm.sf(k)
        exact = 2 * stats.t.sf(k / np.sqrt(1 + 1 / m), m - 1)  # exchangeable: a scaled t
        se = np.sqrt(exact / cells)
        assert abs(got - exact) < 4 * se, (k, got, exact)
        if k < 4:  # the t factor is 1.06 (k = 2) and 1.25 (k = 3) at M = 128 ...
            assert got == pytest.approx(gauss, rel=0.4)
        big = 2 * stats.t.sf(k / np.sqrt(1 + 1 / 7424), 7423)
        assert big == pytest.approx(gauss, rel=0.05)  # ... and within 5 % at HENS size
    expected_of = 2 / (plan.sizes + 1)
    se = np.sqrt(expected_of / cells / 4)  # four draws
    assert (abs(scores["subset_outlier_fraction"] - expected_of) < 5 * se + 2e-3).all(), scores["subset_outlier_fraction"]
    best = np.array([hs.expected_best_member_error(int(n)) for n in plan.sizes])
    np.testing.assert_allclose(scores["best_member_mae"], best, rtol=0.05)
    assert scores["max_sigma_mean"] == pytest.approx(hs.expected_max_sigma(m, tail="both"), rel=0.03)
    assert scores["best_member_mae_spread"][-1] == 0 and scores["subset_outlier_fraction_spread"][0] > 0


def test_draws_are_balanced_and_nested():
    layout = MemberLayout(checkpoints=3, pairs=5, seeds=2)
    coords = layout.coords()
    plan = subset_plan(coords["checkpoint"], coords["pair"], draws=3)
    assert plan.units.shape == (15, 4) and list(plan.sizes) == [4, 8, 16, 32, 48, 60]  # 12 units ~ 50
    for order in plan.orders:
        assert sorted(order) == list(range(15))
        ckpt = coords["checkpoint"][plan.units[order, 0]]
        for n in range(1, 16):
            counts = np.bincount(ckpt[:n], minlength=3)
            assert counts.max() - counts.min() <= 1
    assert len({tuple(o) for o in plan.orders}) == 3


def test_unit_extremes_of_consecutive_and_gathered_units_agree():
    """Units side by side (read along the member-first rows) and the same units scattered
    (gathered per block of cells) give the same per-unit statistics, NaN included."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 300)).astype(np.float32)  # member-first, as a piece
    x[7, 11] = np.nan
    y = rng.standard_normal(300).astype(np.float32)
    y[3] = np.nan
    units = np.arange(40).reshape(20, 2)
    side_by_side = cell_statistics(x.T, y, units=units)
    perm = rng.permutation(40)
    where = np.argsort(perm)  # member k of x is column where[k] of x[perm]
    scattered = cell_statistics(x[perm].T, y, units=where[units])
    for k in ("unit_error", "unit_min", "unit_max"):
        np.testing.assert_array_equal(side_by_side[k], scattered[k], err_msg=k)
    assert np.isnan(side_by_side["unit_min"][3, 11]) and np.isnan(side_by_side["unit_error"][:, 3]).all()
    expected = np.minimum(np.abs(x[0::2] - y), np.abs(x[1::2] - y))
    np.testing.assert_array_equal(side_by_side["unit_error"], expected)


def test_compiled_prefix_extremes_equal_the_prefix_reductions():
    from hens.scoring.evaluate.kernels import prefix_extremes

    rng = np.random.default_rng(11)
    units, cells = 37, 203
    lo = rng.standard_normal((units, cells)).astype(np.float32)
    hi = lo + rng.random((units, cells)).astype(np.float32)
    y = rng.standard_normal(cells)
    err = np.minimum(np.abs(lo - y), np.abs(hi - y)).astype(np.float32)
    w = rng.random(cells)
    order, counts = rng.permutation(units), np.array([1, 2, 4, 8, 16, 32])
    best, outliers = np.empty(counts.size), np.empty(counts.size)
    prefix_extremes(err, lo, hi, order, counts, y, w, best, outliers)
    for j, k in enumerate(counts):
        rows = order[:k]
        outside = (y < lo[rows].min(0)) | (y > hi[rows].max(0))
        assert best[j] == pytest.approx(float(w @ err[rows].min(0)), rel=1e-12)
        assert outliers[j] == pytest.approx(float(w @ outside), rel=1e-12)
    assert 0 < outliers[-1] < outliers[0]  # the test can tell sizes apart
