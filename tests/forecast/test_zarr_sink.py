"""The ensemble store: template, region writes, completion records, refusal to clobber."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from hens.forecast.errors import ConfigError, OutputExists
from hens.forecast.grids import parse_grid
from hens.forecast.members import MemberLayout
from hens.forecast.store_reader import open_store
from hens.forecast.zarr_sink import StoreSpec, batches, open_sink


def _spec(config=None, batch_size=4):
    return StoreSpec(
        channels=("z500", "t2m"),
        init_times=(np.datetime64("2001-03-01T00"), np.datetime64("2001-03-08T00")),
        lead_hours=(0, 6, 12),
        grid=parse_grid("8x16"),
        layout=MemberLayout(checkpoints=2, pairs=2, seeds=1),
        batch_size=batch_size,
        attrs={"hens_config": config or {"lead_hours": 12}, "hens_version": "test"},
    )


def test_declared_store_opens_with_named_dims_and_cf_attrs(tmp_path):
    path = tmp_path / "ens.zarr"
    open_sink(path, _spec())
    ds = open_store(path)
    assert ds["z500"].dims == ("init_time", "member", "lead_time", "lat", "lon")
    assert ds["z500"].attrs["units"] == "m2 s-2" and ds["t2m"].attrs["units"] == "K"
    assert ds.lat.attrs["standard_name"] == "latitude" and float(ds.lat[0]) > float(ds.lat[-1])
    assert ds.lead_time.values[1] == np.timedelta64(6, "h")
    assert list(ds.sign.values) == [1, -1] * 4 and list(ds.checkpoint.values) == [0] * 4 + [1] * 4
    assert ds["z500"].encoding["chunks"] == (1, 4, 1, 8, 16) and ds["z500"].encoding["shards"] == (1, 4, 1, 8, 16)
    assert np.isnan(ds["z500"].values).all() and not ds["completed"].values.any()
    raw = xr.open_zarr(path)  # on disk: one sharded array over the channels
    assert raw["fields"].dims == ("init_time", "member", "lead_time", "channel", "lat", "lon")
    assert list(raw["channel"].values) == ["z500", "t2m"] and raw.attrs["store_format"] == 2


def test_batches_fill_disjoint_regions_and_mark_completion(tmp_path):
    path = tmp_path / "ens.zarr"
    sink = open_sink(path, _spec(batch_size=3))
    rng = np.random.default_rng(0)
    written = {}
    for part in batches(8, 3):
        n = part.stop - part.start
        block = rng.normal(size=(n, 3, 2, 8, 16)).astype(np.float32)  # (members, leads, C, lat, lon)
        sink.write(1, part, block)
        written[part.start] = block
    sink.finalize({"wall_seconds": 1.0})
    ds = open_store(path)
    for start, block in written.items():
        got = ds["t2m"].isel(init_time=1, member=slice(start, start + len(block))).values
        np.testing.assert_array_equal(got, block[:, :, 1])
    assert ds["completed"].values.tolist() == [[0] * 8, [1] * 8]
    assert np.isnan(ds["z500"].isel(init_time=0).values).all()
    assert ds.attrs["wall_seconds"] == 1.0


def test_existing_store_is_refused_resumed_or_replaced(tmp_path):
    path = tmp_path / "ens.zarr"
    sink = open_sink(path, _spec())
    sink.write(0, slice(0, 4), np.ones((4, 3, 2, 8, 16), np.float32))
    with pytest.raises(OutputExists, match="--resume"):
        open_sink(path, _spec())
    assert open_sink(path, _spec(), mode="resume").completed()[0, :4].all()
    with pytest.raises(ConfigError, match="another configuration"):
        open_sink(path, _spec(config={"lead_hours": 240}), mode="resume")
    assert open_store(path)["completed"].values[0, :4].all()  # refusals left it untouched
    open_sink(path, _spec(), mode="overwrite")
    assert not open_store(path)["completed"].values.any()


def test_overwrite_never_deletes_what_is_not_a_zarr_store(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    with pytest.raises(OutputExists, match="not a Zarr store"):
        open_sink(folder, _spec(), mode="overwrite")
    assert (folder / "thesis.tex").read_text() == "precious"


def test_a_batch_is_on_disk_before_its_completion_flag(tmp_path, monkeypatch):
    """Every chunk is fsynced and renamed into place, folder fsynced, before the flag's rename."""
    import os

    import hens.forecast.durable_store as durable

    path = tmp_path / "ens.zarr"
    sink = open_sink(path, _spec(batch_size=4))
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(durable.os, "fsync", fsync)
    monkeypatch.setattr(durable.os, "replace", replace)
    sink.write(0, slice(4, 8), np.ones((4, 3, 2, 8, 16), np.float32))
    renamed = [dst for kind, dst in events if kind == "replace"]
    data = [dst for dst in renamed if "/completed/" not in dst]
    assert sorted(Path(d).relative_to(path).as_posix() for d in data) == [
        f"fields/c/0/1/{lead}/0/0/0" for lead in range(3)]  # one shard per lead, all channels
    flag = events.index(("replace", str(path / "completed" / "c" / "0" / "1")))
    for dst in data:  # (chunks are written concurrently) its data before its rename, its folder after
        i = events.index(("replace", dst))
        name = Path(dst)
        assert any(e[0] == "fsync" and Path(e[1]).parent == name.parent
                   and Path(e[1]).name.startswith(f".{name.name}.") for e in events[:i])
        assert ("fsync", str(name.parent)) in events[i + 1:flag]
    assert open_store(path)["completed"].values[0].tolist() == [0] * 4 + [1] * 4


def test_a_write_that_fails_midway_leaves_no_file(tmp_path, monkeypatch):
    """A torn write (here: the disk fails during write) never leaves a partial chunk at the key."""
    import hens.forecast.durable_store as durable

    def failing_fsync(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(durable.os, "fsync", failing_fsync)
    target = tmp_path / "a" / "0.0"
    with pytest.raises(OSError, match="I/O error"):
        durable.durable_write(target, b"chunk bytes")
    assert not target.exists() and list(target.parent.iterdir()) == []
