"""Data sources: every layout yields the same (time, channel, lat, lon) block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from sample_layouts import (
    SURFACE,
    TIMES,
    TRUTH_CHANNELS,
    make_truth,
    write_cds_new,
    write_wb2,
)

from hens.forecast import open_source
from hens.forecast.channels import WORLD_CHANNELS
from hens.forecast.errors import GridMismatch
from hens.forecast.grids import Grid
from hens.forecast.protocols import DataSource


def _packing_step(truth: xr.DataArray, channel: str) -> float:
    """The int16 quantum of a legacy file: packing spans a variable's range over all levels."""
    same_var = [channel] if channel in SURFACE else [
        c for c in TRUTH_CHANNELS if c not in SURFACE and c[0] == channel[0]]
    values = truth.sel(channel=same_var).values
    return float(values.max() - values.min()) / 65533.0


def test_three_layouts_give_identical_blocks(truth9, wb2_store, cds_new_files, cds_legacy_files):
    """WB2 and new CDS agree bit for bit with the truth; legacy CDS within one int16 step."""
    wb2, new, legacy = (open_source(p) for p in (wb2_store, cds_new_files, cds_legacy_files))
    assert (wb2.layout, new.layout, legacy.layout) == (
        "WeatherBench2/ARCO", "CDS netCDF (new)", "CDS netCDF (legacy)")
    for source in (wb2, new, legacy):
        assert isinstance(source, DataSource)
        assert source.grid == Grid(9, 16, "equiangular")
        assert source.channels == TRUTH_CHANNELS
        np.testing.assert_array_equal(source.times, TIMES)
        assert source.times.dtype == np.dtype("datetime64[ns]")
    channels = list(TRUTH_CHANNELS)
    a, b, c = (s(TIMES, channels) for s in (wb2, new, legacy))
    assert a.dims == ("time", "channel", "lat", "lon") and a.dtype == np.float32
    np.testing.assert_array_equal(a.values, truth9.values)
    xr.testing.assert_equal(a, b)  # values and every coordinate; attrs name the file
    assert c.coords.equals(a.coords) and c.dtype == np.float32
    for k, channel in enumerate(channels):
        np.testing.assert_allclose(c.values[:, k], a.values[:, k], rtol=0,
                                   atol=_packing_step(truth9, channel), err_msg=channel)


def test_block_coordinates_and_attrs(wb2_store):
    block = open_source(wb2_store)(TIMES[:2], ["t2m", "z500"])
    assert list(block["channel"].values) == ["t2m", "z500"]
    assert list(block["units"].values) == ["K", "m2 s-2"]
    assert np.all(np.diff(block["lat"].values) < 0), "latitude must be north first"
    assert block["lat"].attrs["units"] == "degrees_north"
    assert block["lon"].attrs["units"] == "degrees_east"
    assert block.attrs["grid"] == "9x16:equiangular"


@pytest.mark.parametrize("picks", [[2, 0], [0, 2, 2], [1]])
def test_any_time_order_and_repeats(truth9, wb2_store, picks):
    block = open_source(wb2_store)(TIMES[picks], ["u850", "msl"])
    expected = truth9.isel(time=picks).sel(channel=["u850", "msl"]).values
    np.testing.assert_array_equal(block.values, expected)


def test_direct_zarr_reads_match_xarray_reads(wb2_store, tmp_path, truth9):
    """North-first stores decode straight into the block; others go through xarray."""
    fast = open_source(wb2_store)
    assert set(fast.parts[0].direct) == set(TRUTH_CHANNELS)
    slow = open_source(write_wb2(truth9, tmp_path / "south.zarr", lat_ascending=True))
    assert not slow.parts[0].direct
    xr.testing.assert_equal(fast(TIMES[1:], ["z850", "t2m"]), slow(TIMES[1:], ["z850", "t2m"]))


def test_times_as_strings(truth9, wb2_store):
    block = open_source(wb2_store)(["2020-01-01T06"], ["z500"])
    np.testing.assert_array_equal(block.values[0, 0], truth9.sel(channel="z500").values[1])


@pytest.mark.parametrize(
    "grid", [Grid(8, 16), Grid(8, 16, "equiangular-nopoles"), Grid(9, 16, "equiangular")],
    ids=lambda g: g.spec)
@pytest.mark.parametrize("lat_ascending", [False, True], ids=["lat-descending", "lat-ascending"])
def test_wb2_grids_and_latitude_orders(tmp_path, grid, lat_ascending):
    """The 0.25 deg store is north first, regridded WB2 stores are south first."""
    truth = make_truth(grid, seed=1)
    source = open_source(write_wb2(truth, tmp_path / "s.zarr", lat_ascending=lat_ascending))
    assert source.grid == grid
    block = source(TIMES, list(TRUTH_CHANNELS))
    np.testing.assert_array_equal(block.values, truth.values)


def test_world_style_store_float32_gaussian_latitudes(tmp_path):
    """The world's store: Legendre-Gauss 32x64, float32 latitudes, one level (500 hPa)."""
    truth = make_truth(Grid(32, 64), seed=2)
    path = write_wb2(truth, tmp_path / "world.zarr")
    source = open_source(path, grid="32x64")
    assert source.grid == Grid(32, 64)
    np.testing.assert_array_equal(source(TIMES, ["z500", "u500", "v500", "t2m"]).values,
                                  truth.sel(channel=["z500", "u500", "v500", "t2m"]).values)


@pytest.mark.parametrize("lon_180", [False, True], ids=["lon-0-360", "lon-180-180"])
def test_arco_valid_time_attrs_restrict_times(truth9, tmp_path, lon_180):
    """ARCO's time axis runs past the data (NaN there); valid_time_start/stop bound it."""
    path = write_wb2(truth9, tmp_path / "arco.zarr", arco_extra_times=2, lon_180=lon_180)
    assert xr.open_zarr(path).sizes["time"] == TIMES.size + 2
    source = open_source(path)
    np.testing.assert_array_equal(source.times, TIMES)
    np.testing.assert_array_equal(source(TIMES, ["t850"]).values,
                                  truth9.sel(channel=["t850"]).values)


def test_longitudes_from_minus_180_are_rolled(truth9, tmp_path):
    files = write_cds_new(truth9, tmp_path / "cds", lon_180=True)
    assert float(xr.open_dataset(files[0])["longitude"].min()) < 0
    block = open_source(files)(TIMES, list(TRUTH_CHANNELS))
    np.testing.assert_array_equal(block["lon"].values, Grid(9, 16, "equiangular").lon)
    np.testing.assert_array_equal(block.values, truth9.values)


def test_glob_and_list_merge_pressure_and_single_levels(cds_new_files):
    pattern = str(Path(cds_new_files[0]).parent / "*.nc")
    by_glob, by_list = open_source(pattern), open_source([str(p) for p in cds_new_files])
    assert by_glob.channels == by_list.channels == TRUTH_CHANNELS
    assert pattern in by_glob.describe()
    xr.testing.assert_equal(by_glob(TIMES, ["z500", "t2m"]), by_list(TIMES, ["z500", "t2m"]))


def test_files_split_in_time_are_joined_and_common_times_kept(truth9, tmp_path):
    """Monthly-style pressure files are concatenated; single levels cover fewer times."""
    first = write_cds_new(truth9.isel(time=[0, 1]), tmp_path / "a")
    second = write_cds_new(truth9.isel(time=[2]), tmp_path / "b")
    single_late = write_cds_new(truth9.isel(time=[1, 2]), tmp_path / "c")[1]
    source = open_source([first[0], second[0], single_late])
    np.testing.assert_array_equal(source.times, TIMES[1:])
    np.testing.assert_array_equal(source(TIMES[1:], ["v250", "t2m"]).values,
                                  truth9.isel(time=[1, 2]).sel(channel=["v250", "t2m"]).values)


def test_describe_names_layout_grid_channels_times(wb2_store):
    text = open_source(wb2_store).describe()
    for word in ("WeatherBench2/ARCO", "9x16:equiangular", "z500", "t2m", "2020-01-01T00:00",
                 "2020-01-01T12:00", "every 6 h"):
        assert word in text
    assert len(text.splitlines()) == 4


def test_expected_grid_is_checked(wb2_store):
    source = open_source(wb2_store, grid="9x16:equiangular")
    assert source(TIMES[:1], ["z500"], grid=Grid(9, 16, "equiangular")).shape == (1, 1, 9, 16)
    with pytest.raises(GridMismatch, match="is on grid 9x16:equiangular, expected 9x16"):
        source(TIMES[:1], ["z500"], grid="9x16")


def test_reads_the_world_store(world_store):
    """The shallow-water world is written in the WB2 layout and read with no special case."""
    source = open_source(world_store, grid="32x64")
    assert source.layout == "WeatherBench2/ARCO" and source.channels == WORLD_CHANNELS
    assert set(source.parts[0].direct) == set(WORLD_CHANNELS)
    block = source(source.times[:8], list(WORLD_CHANNELS))
    ds = xr.open_zarr(world_store).isel(time=slice(0, 8))
    np.testing.assert_array_equal(block.sel(channel="t2m").values, ds["2m_temperature"].values)
    np.testing.assert_array_equal(block.sel(channel="z500").values,
                                  ds["geopotential"].sel(level=500).values)


def test_the_74_variables_of_the_huge_ensembles_packages_read_from_wb2_and_cds(tmp_path):
    """Every variable the published SFNO packages need (docs/packages.md), by its WeatherBench2 long
    name and its CDS short name: u/v 10 m and 100 m, t2m, d2m, sp, msl, tcwv, u v z t q on 13 levels."""
    import pandas as pd

    from sample_layouts import ERA5_74

    grid = Grid(9, 16, "equiangular")
    truth = make_truth(grid, channels=ERA5_74, times=pd.date_range("2021-03-10", periods=2, freq="6h").values)
    for source in (open_source(write_wb2(truth, tmp_path / "era5.zarr")),
                   open_source(write_cds_new(truth, tmp_path / "cds"))):
        assert set(ERA5_74) <= set(source.channels)
        got = source(truth["time"].values, list(ERA5_74))
        np.testing.assert_array_equal(got.values, truth.values)


def test_recent_reads_serve_repeated_requests_from_memory_as_copies(wb2_store):
    from hens.forecast.sources.recent import RecentReads

    source = open_source(wb2_store)
    calls = []
    original = source._read
    source._read = lambda when, chans: calls.append(len(when)) or original(when, chans)
    recent = RecentReads(source, size=2)
    assert isinstance(recent, DataSource) and recent.grid == source.grid and recent.times is source.times
    times, chans = source.times[:2], ["z500", "t2m"]
    first = recent(times, chans)
    first.values[:] = -1.0  # a caller writing into its block changes nobody else's
    again = recent(times, chans)
    xr.testing.assert_identical(again, source(times, chans))
    assert len(calls) == 2  # the second request was not read again (the third call is the check)
    recent(source.times[2:3], chans)
    recent(source.times[3:4], chans)  # two newer reads push the first out
    recent(times, chans)
    assert len(calls) == 5
