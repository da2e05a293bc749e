"""``hens world``: the store layout, its statistics, reproducibility, the CLI, and the world's
climate (bounded tracer, stationarity, loss of persistence skill)."""

from __future__ import annotations

import hashlib
import subprocess
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from hens.forecast.errors import DataError, OutputExists
from hens.forecast.grids import Grid
from hens.forecast.stats import QUANTILES, open_world_stats, stats_path
from hens.pipelines.world import generate_world, load_world

HENS = [sys.executable, "-m", "hens.pipelines.cli"]
WORLD_START, WORLD_DAYS = "2000-01-01T00", 60  # the world_store fixture (tests/conftest.py)
VARIABLES = {"geopotential": 4, "u_component_of_wind": 4, "v_component_of_wind": 4, "2m_temperature": 3}


def _tiny(path: Path, *, seed: int = 0, **kw) -> Path:
    return generate_world(path, days=kw.pop("days", 1.0), seed=seed, spinup_days=kw.pop("spinup_days", 1.0),
                          progress=False, **kw)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        sha.update(str(f.relative_to(path)).encode() + f.read_bytes())
    return sha.hexdigest()


def _weighted_rms(x: xr.DataArray) -> xr.DataArray:
    weights = xr.DataArray(Grid(32, 64).area_weights, dims="lat")
    return np.sqrt((x**2).weighted(weights).mean(("lat", "lon")))


# ---------------------------------------------------------------- layout
def test_store_has_the_weatherbench2_era5_layout(world_store):
    assert (world_store / ".zgroup").exists() and (world_store / ".zmetadata").exists()
    assert zarr.open_group(world_store, mode="r").metadata.zarr_format == 2
    ds = xr.open_zarr(world_store, consolidated=True)
    assert set(ds.data_vars) == set(VARIABLES)
    for name, ndim in VARIABLES.items():
        var = ds[name]
        dims = ("time", "level", "latitude", "longitude") if ndim == 4 else ("time", "latitude", "longitude")
        assert var.dims == dims and var.dtype == np.float32
        assert var.encoding["chunks"] == (1, *var.shape[1:])  # one time step per chunk
        assert {"units", "long_name", "standard_name", "description"} <= set(var.attrs)
    assert ds["geopotential"].attrs["units"] == "m2 s-2" and ds["2m_temperature"].attrs["units"] == "K"
    assert "shallow-water" in ds["geopotential"].attrs["description"]
    assert "not a physical 2 m temperature" in ds["2m_temperature"].attrs["description"]
    lat, lon = ds["latitude"], ds["longitude"]
    assert lat.dtype == np.float32 and lon.dtype == np.float32
    assert np.all(np.diff(lat.values) < 0) and lat.values[0] > 85  # 90 -> -90 as WB2's 0.25 deg store
    assert lon.values[0] == 0 and lon.values[-1] == np.float32(360 - 360 / 64)
    assert Grid.detect(lat.values, lon.values) == Grid(32, 64)
    assert ds["level"].dtype == np.int64 and ds["level"].values.tolist() == [500]
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    assert ds["time"].encoding["units"].startswith("hours since") and ds["time"].encoding["dtype"] == np.int64
    times = ds["time"].values
    assert times[0] == np.datetime64(WORLD_START) and times.size == 4 * WORLD_DAYS
    assert np.all(np.diff(times) == np.timedelta64(6, "h"))
    assert ds.attrs["seed"] == 0 and ds.attrs["grid"] == "32x64" and "hens_version" in ds.attrs
    assert ds.attrs["world_noise_rms"] == 1e-10 and ds.attrs["world_dt_s"] == 450
    assert not np.isnan(ds["geopotential"].values).any()


def test_statistics_store_beside_the_trajectory(world_store):
    assert stats_path(world_store) == world_store.with_name("world.stats.zarr")
    stats = open_world_stats(world_store)
    assert stats["channel"].values.tolist() == ["z500", "u500", "v500", "t2m"]
    assert stats["climatology_quantiles"].dims == ("dayofyear", "quantile", "channel", "lat", "lon")
    assert stats["climatology_mean"].dims == ("dayofyear", "channel", "lat", "lon")
    np.testing.assert_array_equal(stats["quantile"].values, QUANTILES)
    assert np.all(np.diff(stats["lat"].values) < 0)  # north first
    data = load_world(world_store)
    weights = xr.DataArray(Grid(32, 64).area_weights, dims="lat")
    mean = data.weighted(weights).mean(("time", "lat", "lon"))
    np.testing.assert_allclose(stats["mean"].values, mean.values, rtol=1e-6, atol=1e-6)
    assert np.all(stats["tendency_std"].values < stats["std"].values)
    # the mid-January window holds the 45 days of 2000-01-01 .. 02-14 (+-30 days of day 15)
    counts = dict(zip(stats["dayofyear"].values.tolist(), stats["climatology_count"].values.tolist()))
    assert counts[15] == 45 * 4 and counts[198] == 0
    jan = stats["climatology_quantiles"].sel(dayofyear=15).values
    assert np.all(np.diff(jan, axis=0) >= 0)
    np.testing.assert_allclose(jan[-1], data.sel(time=slice(None, "2000-02-14")).max("time").values)
    assert np.isnan(stats["climatology_quantiles"].sel(dayofyear=198).values).all()


def test_a_statistics_store_of_any_name_opens_as_it_is(world_store, tmp_path):
    renamed = tmp_path / "era5-climate.zarr"  # not "<x>.stats.zarr"
    shutil.copytree(stats_path(world_store), renamed)
    assert open_world_stats(renamed)["tendency_std"].equals(open_world_stats(world_store)["tendency_std"])


def test_missing_statistics_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no statistics store"):
        open_world_stats(tmp_path / "nothing.zarr")


# ---------------------------------------------------------------- the world's climate
def test_tracer_is_bounded_with_warm_anomalies(world_store):
    t2m = load_world(world_store).sel(channel="t2m")
    assert 200 < float(t2m.min()) and float(t2m.max()) < 330
    anomaly = t2m - t2m.mean("time")
    warm = float(anomaly.quantile(0.99))
    print(f"t2m {float(t2m.min()):.1f}..{float(t2m.max()):.1f} K, anomaly p99 {warm:.1f} K, max {float(anomaly.max()):.1f} K")
    assert warm > 4 and float(anomaly.max()) > 10


def test_persistence_loses_skill_with_lead(world_store):
    data = load_world(world_store)
    rmse = {lag: _weighted_rms(data.shift(time=-lag) - data).mean("time") for lag in (1, 4, 12)}  # 6 h, 1 d, 3 d
    for channel in data["channel"].values:
        r = [float(rmse[lag].sel(channel=channel)) for lag in (1, 4, 12)]
        print(f"persistence rmse {channel}: 6 h {r[0]:.3g}, 1 d {r[1]:.3g}, 3 d {r[2]:.3g}")
        assert r[0] < r[1] < r[2] and r[2] > 2 * r[0]


def test_energy_enstrophy_and_tracer_variance_are_stationary(world_store):
    """Means over the two 30-day halves of the shared world (January, February) agree.

    Tolerance 15%: monthly means of kinetic energy vary by ~+-8% in a 2-year run, and the
    tracer variance has a semiannual cycle of ~+-18%; the slow test compares whole years.
    """
    from hens.models.shallow_water.solver import ShallowWaterWorld

    world = ShallowWaterWorld()
    data = load_world(world_store)
    diags = [world.diagnostics(world.from_fields(data.isel(time=i).values.astype(np.float64),
                                                 time=data["time"].values[i], seed=0))
             for i in range(data.sizes["time"])]
    half = len(diags) // 2
    for key in ("kinetic_energy", "enstrophy", "tracer_variance"):
        first, second = np.mean([d[key] for d in diags[:half]]), np.mean([d[key] for d in diags[half:]])
        print(f"{key}: halves {first:.4g} / {second:.4g} ({second / first - 1:+.1%})")
        assert second == pytest.approx(first, rel=0.15)


@pytest.mark.slow
def test_two_year_run_is_stationary():
    """Year 1 and year 2 means (after 60 days spin-up) agree within 3% (measured 0.3-0.9%)."""
    from hens.models.shallow_water.solver import ShallowWaterWorld

    world = ShallowWaterWorld()
    state = world.spin_up(world.initial_state(0, "1999-11-02T00"), 60)
    diags = []
    for _ in range(730):
        state = world.spin_up(state, 1)
        diags.append(world.diagnostics(state))
    for key in ("kinetic_energy", "enstrophy", "tracer_variance"):
        first, second = np.mean([d[key] for d in diags[:365]]), np.mean([d[key] for d in diags[365:]])
        print(f"{key}: years {first:.4g} / {second:.4g} ({second / first - 1:+.2%})")
        assert second == pytest.approx(first, rel=0.03)


# ---------------------------------------------------------------- reproducibility, outputs
def test_same_seed_gives_identical_arrays(tmp_path):
    a, b, c = (_tiny(tmp_path / f"{name}.zarr", seed=seed) for name, seed in (("a", 0), ("b", 0), ("c", 1)))
    da, db, dc = (xr.open_zarr(p) for p in (a, b, c))
    for name in VARIABLES:
        assert np.array_equal(da[name].values, db[name].values)
        assert not np.array_equal(da[name].values, dc[name].values)


def test_existing_output_is_refused_and_failures_leave_nothing(tmp_path, monkeypatch):
    out = _tiny(tmp_path / "w.zarr", days=0.25, spinup_days=0)
    before = _digest(out)
    with pytest.raises(OutputExists, match="--overwrite"):
        _tiny(out)
    assert _digest(out) == before
    from hens.models.shallow_water.solver import ShallowWaterWorld

    def explode(self, state, n_steps):
        raise DataError("the world blew up (test)")

    monkeypatch.setattr(ShallowWaterWorld, "advance", explode)
    with pytest.raises(DataError):
        _tiny(tmp_path / "new.zarr")
    with pytest.raises(DataError):
        _tiny(out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.stats.zarr", "w.zarr"]
    assert _digest(out) == before


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*HENS, "world", *args], capture_output=True, text=True, timeout=300)


def test_cli_refuses_existing_store_without_overwrite(tmp_path):
    out = _tiny(tmp_path / "w.zarr", days=0.25, spinup_days=0)
    before = _digest(out)
    res = _cli("--out", str(out), "--days", "0.25", "--spinup-days", "0")
    assert res.returncode == 2
    assert res.stderr.startswith("hens: error:") and len(res.stderr.strip().splitlines()) == 1
    assert "--overwrite" in res.stderr and _digest(out) == before
    res = _cli("--out", str(out), "--days", "0.5", "--spinup-days", "0", "--seed", "3", "--overwrite")
    assert res.returncode == 0, res.stderr
    ds = xr.open_zarr(out)
    assert ds.sizes["time"] == 2 and ds.attrs["seed"] == 3


@pytest.mark.parametrize("grid", ["32by64", "32x64:cubed"])
def test_cli_bad_grid_is_one_clear_line(tmp_path, grid):
    res = _cli("--out", str(tmp_path / "w.zarr"), "--grid", grid, "--days", "0.25")
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "grid" in lines[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "w.zarr").exists()
