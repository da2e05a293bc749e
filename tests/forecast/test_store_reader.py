"""Stores of both formats open as one CF variable per channel and score the same; the file
count of format 2 does not grow with the channels."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from hens.forecast.errors import DataError
from hens.forecast.grids import parse_grid
from hens.forecast.members import MemberLayout
from hens.forecast.store_reader import open_store
from hens.forecast.zarr_sink import StoreSpec, open_sink
from hens.scoring.evaluate.score import score_ensemble


def _format1_copy(path, out):
    """The same ensemble in hens 0.1's layout: one Zarr v2 array per channel, chunks
    (1, batch, lead_chunk, nlat, nlon), consolidated metadata."""
    ds = open_store(path).load()
    batch, lead_chunk = int(ds.attrs["batch_size"]), int(ds.attrs["lead_chunk"])
    ds.attrs = {k: v for k, v in ds.attrs.items() if k != "store_format"}
    chunks = (1, batch, lead_chunk, ds.sizes["lat"], ds.sizes["lon"])
    encoding = {name: {"chunks": chunks} for name, v in ds.data_vars.items() if v.ndim == 5}
    encoding["completed"] = {"chunks": (1, batch)}
    for name in ds.variables:
        ds[name].encoding = {}
    ds.to_zarr(out, mode="w-", zarr_format=2, consolidated=True, encoding=encoding)
    return out


def test_a_hens_01_store_opens_and_scores_like_the_new_one(score_inputs, tmp_path):
    new = score_inputs["calibrated"]
    old = _format1_copy(new, tmp_path / "old.zarr")
    assert (old / "z500" / ".zarray").exists()  # really the v2 per-channel layout
    a, b = open_store(new), open_store(old)
    assert a.attrs["store_format"] == 2 and b.attrs["store_format"] == 1
    for name in ("z500", "t2m", "completed"):
        assert a[name].dims == b[name].dims and a[name].attrs == b[name].attrs
        assert np.array_equal(a[name].values, b[name].values, equal_nan=True)
    sa = score_ensemble(new, score_inputs["truth"], out=tmp_path / "a.scores.zarr", progress=False)
    sb = score_ensemble(old, score_inputs["truth"], out=tmp_path / "b.scores.zarr", progress=False)
    da, db = xr.open_zarr(sa).load(), xr.open_zarr(sb).load()
    for name in ("crps", "fair_crps", "spread_skill_ratio", "rank_histogram"):
        np.testing.assert_array_equal(da[name].values, db[name].values, err_msg=name)


@pytest.mark.parametrize("channels", [("z500",), ("z500", "u500", "v500", "t2m")])
def test_files_per_init_do_not_grow_with_channels(tmp_path, channels):
    """Batches x lead blocks data files (+ one flag file per batch), whatever the channels."""
    spec = StoreSpec(channels=channels, init_times=(np.datetime64("2001-03-01T00"),), lead_hours=(0, 6, 12, 18),
                     grid=parse_grid("8x16"), layout=MemberLayout(1, 4, 1), batch_size=4, lead_chunk=2,
                     attrs={"hens_config": {}, "hens_version": "test"})
    path = tmp_path / "ens.zarr"
    sink = open_sink(path, spec)
    for members in (slice(0, 4), slice(4, 8)):
        for leads in (slice(0, 2), slice(2, 4)):
            sink.write_leads(0, members, leads, np.zeros((4, 2, len(channels), 8, 16), np.float32))
        sink.mark_completed(0, members)
    assert sum(1 for f in (path / "fields" / "c").rglob("*") if f.is_file()) == 4  # 2 batches x 2 lead blocks
    assert sum(1 for f in (path / "completed" / "c").rglob("*") if f.is_file()) == 2


def test_not_a_store_is_one_error(tmp_path):
    (tmp_path / "junk").mkdir()
    with pytest.raises(DataError, match="cannot open it as a Zarr store"):
        open_store(tmp_path / "junk")


def test_a_grid_whose_rows_the_band_does_not_divide(tmp_path):
    """1 degree (181 rows, prime) in batches of 16: bands of 45 rows, the last one edge-cut."""
    from hens.forecast.grids import Grid
    from hens.forecast.zarr_sink import band_for

    grid = Grid(181, 360, "equiangular")
    assert band_for(16, grid.shape) == 45
    spec = StoreSpec(channels=("t2m",), init_times=(np.datetime64("2001-03-01T00"),), lead_hours=(0, 6),
                     grid=grid, layout=MemberLayout(1, 8, 1), batch_size=16, lead_chunk=2,
                     attrs={"hens_config": {}, "hens_version": "test"})
    data = np.random.default_rng(0).normal(size=(16, 2, 1, 181, 360)).astype(np.float32)
    open_sink(tmp_path / "ens.zarr", spec).write(0, slice(0, 16), data)
    ds = open_store(tmp_path / "ens.zarr")
    assert ds["t2m"].encoding["chunks"] == (1, 16, 1, 45, 360)
    np.testing.assert_array_equal(ds["t2m"].values[0], data[:, :, 0])
