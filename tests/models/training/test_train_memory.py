"""hens train from a store larger than its memory: an ERA5-layout (WeatherBench2) Zarr store
4x the address-space limit given to the training process trains, and the peak RSS of a 4x
longer training period stays within 1.2x of the short one (batches and statistics are read
lazily, :mod:`hens.models.training.batches`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from hens.forecast.grids import parse_grid

#: T42-like Gaussian grid: 32 KB per field, small enough for the model's activations (a
#: validation batch of 32) to stay far below the limit; the store is long instead
GRID = "64x128"
DAYS = 2400  # 2 channels x 9600 times x 32 KB = 629 MB
START = np.datetime64("2000-01-01T00", "ns")

#: trains in a child whose address space is capped at its size once the runtime is up
#: (libraries imported, Zarr's reader threads started by reading a few times) plus
#: LIMIT_MB: all that the data and the model allocate must fit there; prints the peak RSS
CHILD = r"""
import json, resource, sys, threading
from pathlib import Path
import torch, torch_harmonics, xarray, zarr, matplotlib.figure, matplotlib.backends.backend_agg
from hens.forecast.sources import open_source
from hens.models.training import TrainConfig, train
threading.stack_size(1 << 20)  # threads reserve address space for their stacks, not memory
limit_mb, store, out, train_period, valid_period, in_memory = sys.argv[1:]
source = open_source(store)
source(source.times[:8], list(source.channels))
del source
for line in open("/proc/self/status"):
    if line.startswith("VmSize:"):
        limit = int(line.split()[1]) * 1024 + int(limit_mb) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
cfg = TrainConfig(data=(store,), out=Path(out), steps=4, batch=2, embed_dim=8, num_layers=1, scale_factor=4,
                  cache_mb=32,
                  train_period=train_period, valid_period=valid_period, progress=False, overwrite=True)
try:
    train(cfg, in_memory=in_memory == "1")
except Exception as err:  # a MemoryError, raised as such or inside a read's DataError
    print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
    sys.exit(0)
print(json.dumps({"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _write_store(path: Path) -> int:
    """A WeatherBench2 ERA5-layout store (geopotential on levels, 2m_temperature), written
    in pieces so that this process never holds it; returns its size in bytes."""
    grid = parse_grid(GRID)
    rng = np.random.default_rng(0)
    times = START + np.arange(DAYS * 4) * np.timedelta64(6, "h")
    piece = 1024
    for i in range(0, times.size, piece):
        when = times[i : i + piece]
        shape = (when.size, grid.nlat, grid.nlon)
        z = 5.5e4 + 1e3 * rng.standard_normal(shape, dtype=np.float32)
        t = 280.0 + 10.0 * rng.standard_normal(shape, dtype=np.float32)
        ds = xr.Dataset(
            {"geopotential": (("time", "level", "latitude", "longitude"), z[:, None], {"units": "m**2 s**-2"}),
             "2m_temperature": (("time", "latitude", "longitude"), t, {"units": "K"})},
            coords={"time": when, "level": np.array([500], dtype=np.int64),
                    "latitude": grid.lat.astype(np.float32), "longitude": grid.lon.astype(np.float32)},
        )
        if i == 0:
            encoding = {v: {"chunks": (32,) + ds[v].shape[1:], "compressors": None} for v in ds.data_vars}
            ds.to_zarr(path, mode="w", zarr_format=2, consolidated=True, encoding=encoding)
        else:
            ds.to_zarr(path, append_dim="time", zarr_format=2, consolidated=True)
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _train(store: Path, out: Path, limit_mb: int, train_period: str, *, in_memory: bool = False) -> dict:
    # one malloc arena: per-thread arenas reserve 64 MB of address space each
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "1"}
    res = subprocess.run([sys.executable, "-c", CHILD, str(limit_mb), str(store), str(out), train_period,
                          "2006", "1" if in_memory else "0"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert in_memory or "error" not in result, result
    return result


def test_store_4x_the_memory_limit_trains_with_flat_memory(tmp_path):
    store = tmp_path / "era5.zarr"
    size = _write_store(store)
    assert size > 550 * 2**20
    limit_mb = size // 4 // 2**20  # the store is 4x what the training may allocate
    short = _train(store, tmp_path / "short.pt", limit_mb, "2000")
    long = _train(store, tmp_path / "long.pt", limit_mb, "2000:2003")  # 4x as long (4 x 94 MB)
    print(f"store {size / 2**20:.0f} MiB, limit {limit_mb} MiB over the imports; peak RSS "
          f"short {short['peak_rss'] / 2**20:.0f} MiB, long {long['peak_rss'] / 2**20:.0f} MiB")
    assert long["peak_rss"] <= 1.2 * short["peak_rss"]
    # the limit binds: the whole long period (374 MB) loaded up front does not fit
    loaded = _train(store, tmp_path / "memory.pt", limit_mb, "2000:2003", in_memory=True)
    assert "MemoryError" in loaded.get("error", ""), loaded
