"""Throughput of the hens data source against a plain ``xr.open_zarr(path).load()``.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_reader.py [--quick] [--path STORE]``.
Each case writes a store in the WeatherBench2 ERA5 layout of the world -- geopotential, u and
v at 500 hPa (time, level, latitude, longitude), 2m_temperature (time, latitude, longitude),
Legendre-Gauss latitudes north first as float32, Zarr v2 consolidated -- or reads ``--path``,
then times, interleaved (A, B, A, B, ...) after one warm-up each, keeping the minimum (robust
to other processes on a shared machine):

* hens:  ``open_source(path)(source.times, source.channels)`` -> (time, channel, lat, lon)
* plain: ``xr.open_zarr(path).load()`` of the same store

Both include opening the store; throughput counts the bytes of the data variables. Goal:
hens / plain >= 0.8. The hens block is checked against the plain values.
Results append to ``benchmarks/results/reader_<device>.csv``.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from _results import append_rows, results_path

from hens.forecast.channels import CHANNELS, WORLD_CHANNELS
from hens.forecast.grids import parse_grid
from hens.forecast.sources import open_source

# (grid, time steps, time steps per chunk): WB2 and the world store one step per chunk
CASES = [("32x64", 2920, 1), ("32x64", 2920, 100), ("32x64", 2920, 2920), ("64x128", 2920, 1)]
QUICK = CASES[:1]


def write_store(path: Path, grid_spec: str, ntimes: int, time_chunk: int) -> Path:
    """A WB2-layout store of random float32 fields, 6-hourly from 2000-01-01."""
    grid = parse_grid(grid_spec)
    rng = np.random.default_rng(0)
    data = {}
    for name in WORLD_CHANNELS:
        ch = CHANNELS[name]
        values = rng.standard_normal((ntimes, *grid.shape), dtype=np.float32)
        if ch.level is None:
            data[ch.long_name] = (("time", "latitude", "longitude"), values, {"units": ch.units})
        else:
            data[ch.long_name] = (("time", "level", "latitude", "longitude"), values[:, None],
                                  {"units": ch.units})
    ds = xr.Dataset(data, coords={
        "time": pd.date_range("2000-01-01", periods=ntimes, freq="6h"),
        "level": np.array([500], dtype=np.int64),
        "latitude": grid.lat.astype(np.float32),
        "longitude": grid.lon.astype(np.float32)})
    ds.chunk({"time": time_chunk}).to_zarr(path, zarr_format=2, consolidated=True, mode="w")
    return path


def measure(path: Path, repeats: int) -> dict[str, object]:
    """Time both readers on ``path`` and check that they return the same values."""

    def hens() -> xr.DataArray:
        source = open_source(path)
        return source(source.times, source.channels)

    def plain() -> xr.Dataset:
        return xr.open_zarr(path).load()

    block, ds = hens(), plain()  # warm-up: imports, file cache
    for name in block["channel"].values.tolist():
        ch = CHANNELS[name]
        ref = ds[ch.long_name] if ch.level is None else ds[ch.long_name].sel(level=ch.level)
        assert np.array_equal(block.sel(channel=name).values, ref.values), name
    best = {"hens": np.inf, "plain": np.inf}
    for _ in range(repeats):
        for key, fn in (("hens", hens), ("plain", plain)):
            start = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - start)
    mbytes = sum(ds[v].nbytes for v in ds.data_vars) / 1e6
    hens_rate, plain_rate = mbytes / best["hens"], mbytes / best["plain"]
    return {"device": platform.processor() or platform.machine(),
            "shape": "x".join(map(str, block.shape)),
            "time_chunk": ds[next(iter(ds.data_vars))].encoding.get("chunks", ("?",))[0],
            "mbytes": round(mbytes, 1), "hens_mb_s": round(hens_rate, 1),
            "plain_mb_s": round(plain_rate, 1), "ratio": round(hens_rate / plain_rate, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, help="time this existing store only")
    parser.add_argument("--quick", action="store_true", help="the 32x64 world-size case only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.path:
            paths = [args.path]
        else:
            paths = [write_store(Path(tmp) / f"case{k}.zarr", *case)
                     for k, case in enumerate(QUICK if args.quick else CASES)]
        for path in paths:
            row = measure(path, args.repeats)
            rows.append(row)
            print(f"{row['shape']:>14} (time, channel, lat, lon), time chunk "
                  f"{row['time_chunk']:>4}: hens {row['hens_mb_s']:7.1f} MB/s, "
                  f"xr.open_zarr().load() {row['plain_mb_s']:7.1f} MB/s, "
                  f"ratio {row['ratio']:.2f} (goal >= 0.8)")
    if not args.no_save:
        append_rows(results_path("reader", str(rows[0]["device"])), rows)


if __name__ == "__main__":
    main()
