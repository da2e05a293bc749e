"""Whole-shard writes without zarr's codec pipeline: the same values, read back by zarr."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from hens.forecast.grids import Grid
from hens.forecast.members import MemberLayout
from hens.forecast.zarr_sink import FIELDS, StoreSpec, open_sink


def _spec(members=10, leads=5, lead_chunk=2):
    """1 degree in batches of 8: bands of 91 rows (the second edge-cut), a last batch of 2
    members and a last lead block of one lead -- every edge a shard can have."""
    return StoreSpec(channels=("z500", "t2m"), init_times=(np.datetime64("2001-03-01T00"),),
                     lead_hours=tuple(range(0, 6 * leads, 6)), grid=Grid(181, 360, "equiangular"),
                     layout=MemberLayout(1, members // 2, 1), batch_size=8, lead_chunk=lead_chunk,
                     attrs={"hens_config": {}, "hens_version": "test"})


def _fill(sink, data, *, zarr_encodes=False):
    if zarr_encodes:
        sink._shards = None  # zarr's own path (what the shard writer must equal)
    for m in (slice(0, 8), slice(8, 10)):
        for k in range(0, 5, 2):
            sink.write_leads(0, m, slice(k, min(k + 2, 5)), data[m, k:k + 2])
        sink.mark_completed(0, m)


@pytest.mark.parametrize("workers", [0, 2])
def test_shards_read_back_as_zarr_writes_them(tmp_path, workers):
    data = np.random.default_rng(1).normal(280, 10, size=(10, 5, 2, 181, 360)).astype(np.float32)
    ours = open_sink(tmp_path / "ours.zarr", _spec())
    ours.workers = workers
    _fill(ours, data)
    assert ours._shards is not None  # the shard writer took the writes
    theirs = open_sink(tmp_path / "zarr.zarr", _spec())
    _fill(theirs, data, zarr_encodes=True)
    a = zarr.open_group(tmp_path / "ours.zarr", mode="r")[FIELDS]
    b = zarr.open_group(tmp_path / "zarr.zarr", mode="r")[FIELDS]
    np.testing.assert_array_equal(a[0], data)
    np.testing.assert_array_equal(a[...], b[...])
    # partial reads (a band of one channel and lead: what scoring reads) decode through the index
    np.testing.assert_array_equal(a[0, :, 3, 1, 100:150], data[:, 3, 1, 100:150])
    files = sorted(p.relative_to(tmp_path / "ours.zarr") for p in (tmp_path / "ours.zarr").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "zarr.zarr") for p in (tmp_path / "zarr.zarr").rglob("*")
                           if p.is_file())
    assert not list((tmp_path / "ours.zarr").rglob("*.partial"))


def test_a_rerun_writes_the_same_bytes(tmp_path):
    data = np.random.default_rng(2).normal(size=(10, 5, 2, 181, 360)).astype(np.float32)
    for name, workers in (("a.zarr", 0), ("b.zarr", 3)):
        sink = open_sink(tmp_path / name, _spec())
        sink.workers = workers
        _fill(sink, data)
    for f in (tmp_path / "a.zarr" / FIELDS / "c").rglob("*"):
        if f.is_file():
            assert f.read_bytes() == (tmp_path / "b.zarr" / f.relative_to(tmp_path / "a.zarr")).read_bytes(), f


def test_a_corrupt_shard_index_is_detected(tmp_path):
    data = np.zeros((10, 5, 2, 181, 360), np.float32)
    sink = open_sink(tmp_path / "s.zarr", _spec())
    _fill(sink, data)
    shard = tmp_path / "s.zarr" / FIELDS / "c" / "0" / "0" / "0" / "0" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[-10] ^= 0xFF  # inside the index: its CRC32C no longer matches
    shard.write_bytes(bytes(raw))
    with pytest.raises(Exception, match="(?i)checksum"):
        zarr.open_group(tmp_path / "s.zarr", mode="r")[FIELDS][0, 0:8, 0:2]
