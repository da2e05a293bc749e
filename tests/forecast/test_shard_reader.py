"""Band reads straight from the shards: the values zarr reads, fill where nothing is written,
one clear error for a damaged shard."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import zarr

from hens.forecast.grids import Grid
from hens.forecast.members import MemberLayout
from hens.forecast.shard_reader import ShardDamage, shard_reader_for
from hens.forecast.zarr_sink import FIELDS, StoreSpec, open_sink


def _store(path: Path, *, written: tuple[slice, ...]) -> np.ndarray:
    """1 degree, 20 members in batches of 8 (a last batch of 4), 5 leads in shards of 2; bands of
    the 181 rows as band_for chooses (the last one edge-cut). Only the batches in ``written``."""
    spec = StoreSpec(channels=("z500", "t2m"), init_times=(np.datetime64("2001-03-01T00"),),
                     lead_hours=tuple(range(0, 30, 6)), grid=Grid(181, 360, "equiangular"),
                     layout=MemberLayout(2, 5, 1), batch_size=8, lead_chunk=2,
                     attrs={"hens_config": {}, "hens_version": "test"})
    data = np.random.default_rng(3).normal(280, 10, size=(20, 5, 2, 181, 360)).astype(np.float32)
    sink = open_sink(path, spec)
    for m in written:
        sink.write_leads(0, m, slice(0, 5), data[m])
        sink.mark_completed(0, m)
    return data


def test_band_reads_equal_zarr_reads(tmp_path):
    _store(tmp_path / "s.zarr", written=(slice(0, 8), slice(16, 20)))  # batch 8..15 never written
    array = zarr.open_group(tmp_path / "s.zarr", mode="r")[FIELDS]
    reader = shard_reader_for(tmp_path / "s.zarr", FIELDS, array)
    assert reader is not None and reader.chunk[4] < 181  # several bands per field
    band = reader.chunk[4]
    cases = [((0, 3, 1), (0, 181), None), ((0, 0, 0), (band - 5, band + 7), None),
             ((0, 4, 1), (170, 181), np.array([1, 2, 9, 17, 19])), ((0, 2, 0), (40, 41), np.arange(8, 16))]
    for (init, lead, channel), (lo, hi), members in cases:
        got = reader.read(init, lead, channel, (lo, hi), members)
        want = array[init, :, lead, channel, lo:hi]
        want = want if members is None else want[members]
        np.testing.assert_array_equal(got, want)  # NaN (fill) where nothing was written
    assert np.isnan(reader.read(0, 1, 0, (0, 10), np.array([9]))).all()
    assert not np.isnan(reader.read(0, 1, 0, (0, 10), np.array([8 - 1, 16]))).any()


@pytest.mark.parametrize("damage", ["truncate", "index", "chunk"])
def test_a_damaged_shard_raises_shard_damage_naming_the_file(tmp_path, damage):
    _store(tmp_path / "s.zarr", written=(slice(0, 8), slice(8, 16), slice(16, 20)))
    array = zarr.open_group(tmp_path / "s.zarr", mode="r")[FIELDS]
    reader = shard_reader_for(tmp_path / "s.zarr", FIELDS, array)
    shard = tmp_path / "s.zarr" / FIELDS / "c" / "0" / "1" / "0" / "0" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    if damage == "truncate":
        raw = raw[:100]
    elif damage == "index":
        raw[-10] ^= 0xFF
    else:
        raw[:64] = bytes(64)  # the first chunk's Blosc header
    shard.write_bytes(bytes(raw))
    with pytest.raises(ShardDamage, match=str(shard)):
        for lead in range(2):
            reader.read(0, lead, 0, (0, 181))
    with pytest.raises(Exception):  # zarr fails on the same file: store_check can name it
        array[0, 8:16, 0:2]


def test_a_shard_index_is_read_once_per_version_of_its_file(tmp_path):
    """Bands, channels and leads of one shard share its index: read and checked once, and read
    again when the file changes (a rewritten shard is never read through a stale index)."""
    data = _store(tmp_path / "s.zarr", written=(slice(0, 8),))
    array = zarr.open_group(tmp_path / "s.zarr", mode="r")[FIELDS]
    reader = shard_reader_for(tmp_path / "s.zarr", FIELDS, array)
    reads = []
    original = reader._read_index
    reader._read_index = lambda fd, path, size: reads.append(path) or original(fd, path, size)
    members = np.arange(8)
    for lead, channel, rows in ((0, 0, (0, 181)), (1, 1, (0, 40)), (1, 0, (100, 181))):
        got = reader.read(0, lead, channel, rows, members)
        np.testing.assert_array_equal(got, data[:8, lead, channel, rows[0]:rows[1]])
    assert len(reads) == 1  # leads 0 and 1 share a shard (lead_chunk=2)
    stat = os.stat(reads[0])
    os.utime(reads[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    reader.read(0, 0, 0, (0, 10), members)
    assert len(reads) == 2
