"""Scoring read amplification of the ensemble store, format 2 against hens 0.1's format 1.

Standalone: ``python benchmarks/bench_store.py [--members 256]``. Writes one 1-degree
(181x360, both poles) ensemble of ``--members`` members in batches of 16, 2 channels, 5 leads,
with smooth fields plus noise (they compress like forecasts, random numbers would not), once
in format 2 (``forecast/zarr_sink.py``) and once in format 1 (one Zarr v2 array per channel,
chunks of a batch x all leads x whole fields), then reads it as ``hens score`` does
(``scoring/evaluate/tasks.py::field_reads``: for every channel, init and lead, latitude bands of
all members and, when the bands are not whole fields, the whole fields of the spectrum sample)
and counts the bytes taken from disk (zarr's ``LocalStore`` reads for format 1, the shard
reader's ``os.pread`` for format 2). Printed: bytes read / bytes stored (each chunk read is
decompressed whole, so this is also the decompression amplification; goal <= 1.5), and the
read wall time of format 2 / format 1. Results append to
``results/store_<machine>.csv``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import append_rows, results_path
from zarr.storage import LocalStore

from hens.forecast.grids import Grid
from hens.forecast.members import MemberLayout
from hens.forecast.store_reader import open_store
from hens.forecast.zarr_sink import StoreSpec, open_sink
from hens.scoring.evaluate.tasks import field_reads
from hens.scoring.evaluate.store import open_ensemble, read_members

GRID = Grid(181, 360, "equiangular")
CHANNELS = ("z500", "t2m")
LEADS = (0, 6, 12, 18, 24)
BATCH = 16


def _data_chunk(key: str) -> bool:
    """A chunk (or shard) key of the forecast data, in either format."""
    head, _, tail = key.partition("/")
    return (head == "fields" and tail.startswith("c/")) or (head in CHANNELS and tail[:1].isdigit())


class Counter:
    """Counts the bytes of forecast data read from disk: every LocalStore read of a data key
    (format 1, through zarr) and every ``os.pread`` (the shard reader of format 2)."""

    def __init__(self) -> None:
        self.bytes = 0
        self._get = LocalStore.get
        self._pread = os.pread

    def __enter__(self) -> Counter:
        counter = self

        async def get(store, key, prototype=None, byte_range=None):
            buf = await counter._get(store, key, prototype, byte_range)
            if buf is not None and _data_chunk(key):
                counter.bytes += len(buf)
            return buf

        def pread(fd, length, offset):
            data = counter._pread(fd, length, offset)
            counter.bytes += len(data)
            return data

        LocalStore.get = get
        os.pread = pread
        return self

    def __exit__(self, *exc) -> None:
        LocalStore.get = self._get
        os.pread = self._pread


def write_format2(path: Path, members: int) -> Path:
    spec = StoreSpec(channels=CHANNELS, init_times=(np.datetime64("2001-01-01T00", "ns"),), lead_hours=LEADS,
                     grid=GRID, layout=MemberLayout(1, members // 2, 1), batch_size=BATCH,
                     attrs={"hens_config": {"bench": True}, "hens_version": "bench"}, lead_chunk=len(LEADS))
    sink = open_sink(path, spec)
    rng = np.random.default_rng(0)
    lat, lon = np.radians(GRID.lat)[:, None], np.radians(GRID.lon)[None, :]
    base = np.stack([5e4 + 3e3 * np.cos(lat) * np.sin(3 * lon), 280 + 20 * np.cos(lat) ** 2 + 0 * lon])
    for start in range(0, members, BATCH):
        block = base[None, None] * (1 + 0.01 * rng.standard_normal((BATCH, len(LEADS), 2, 1, 1)))
        block = block + rng.standard_normal(block.shape) * np.array([50.0, 0.5])[None, None, :, None, None]
        sink.write(0, slice(start, start + BATCH), block.astype(np.float32))
    sink.finalize()
    return path


def write_format1(path: Path, new: Path) -> Path:
    """hens 0.1's layout: chunks of a batch x ``lead_chunk`` leads x a whole field, ``lead_chunk``
    for ~4 MiB chunks (1 here: one lead of 16 members at 1 degree is 4.2 MB)."""
    ds = open_store(new).load()
    lead_chunk = max(1, min(len(LEADS), (4 << 20) // (BATCH * GRID.nlat * GRID.nlon * 4)))
    ds.attrs = {**{k: v for k, v in ds.attrs.items() if k != "store_format"}, "lead_chunk": lead_chunk}
    encoding = {c: {"chunks": (1, BATCH, lead_chunk, GRID.nlat, GRID.nlon)} for c in CHANNELS}
    encoding["completed"] = {"chunks": (1, BATCH)}
    for name in ds.variables:
        ds[name].encoding = {}
    ds.to_zarr(path, mode="w-", zarr_format=2, consolidated=True, encoding=encoding)
    return path


def stored_bytes(path: Path) -> int:
    """Bytes of the forecast data's chunk files."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and _data_chunk(f.relative_to(path).as_posix()))


def read_as_scoring(path: Path) -> tuple[int, float]:
    """(bytes read, seconds) for reading every channel, init and lead as ``hens score`` does."""
    store = open_ensemble(path)
    bands, groups = field_reads(store, store.spectrum_sample())
    with Counter() as counter:
        start = time.perf_counter()
        for channel in store.channels:
            for i in range(store.init_times.size):
                for lead in range(store.lead_times.size):
                    for rows in bands:
                        read_members(path, channel, i, lead, rows)
                    for group in groups:
                        read_members(path, channel, i, lead, (0, store.grid.nlat), group)
        seconds = time.perf_counter() - start
    return counter.bytes, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        new = write_format2(Path(tmp) / "new.zarr", args.members)
        old = write_format1(Path(tmp) / "old.zarr", new)
        rows = {}
        for name, path in (("format2", new), ("format1", old)):
            read, seconds = read_as_scoring(path)
            stored = stored_bytes(path)
            rows[name] = (read / stored, seconds, stored)
            print(f"{name}: stored {stored / 1e6:.1f} MB, read {read / 1e6:.1f} MB, "
                  f"amplification {read / stored:.2f}, {seconds:.2f} s")
    print(f"read amplification: format 2 {rows['format2'][0]:.2f} (goal <= 1.5), format 1 {rows['format1'][0]:.2f}; "
          f"read time format 2 / format 1: {rows['format2'][1] / rows['format1'][1]:.2f}")
    append_rows(results_path("store", platform.machine()), [{
        "device": platform.machine(), "cores": os.cpu_count(), "load_before": f"{os.getloadavg()[0]:.2f}",
        "members": args.members, "grid": GRID.spec, "amplification_format2": f"{rows['format2'][0]:.3g}",
        "amplification_format1": f"{rows['format1'][0]:.3g}",
        "read_time_format2_over_format1": f"{rows['format2'][1] / rows['format1'][1]:.3g}"}])


if __name__ == "__main__":
    main()
