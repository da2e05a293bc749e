"""Small ensembles with known answers, written through the real ensemble sink, and their truth.

The truth is a 16x32 Legendre-Gauss store in the WeatherBench2 layout (``z500``, ``t2m``;
6-hourly for 40 days from 2000-01-01) with its statistics store beside it: a travelling wave
plus independent Gaussian noise, so persistence has skill that decays with lead time.
Ensembles (2 checkpoints x 4 pairs x 2 signs = 16 members, 3 initial times, leads 0..48 h
every 12 h; ``lead_chunk`` leads per stored chunk):

``calibrated``
    members drawn like the truth: the same wave plus independent noise of the same std, so
    members and truth are exchangeable: spread-skill -> 1, flat rank histogram, outliers
    2/17 of the time, a reliable diagram.
``perfect``
    every member equals the truth: CRPS, RMSE and spread are 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from hens.forecast.channels import get_channel
from hens.forecast.grids import Grid
from hens.forecast.members import MemberLayout
from hens.forecast.stats import compute_stats, stats_path, write_stats
from hens.forecast.zarr_sink import StoreSpec, open_sink

GRID = Grid(16, 32)
CHANNELS = ("z500", "t2m")
TIMES = pd.date_range("2000-01-01", periods=160, freq="6h").values.astype("datetime64[ns]")
INITS = ("2000-01-10T00", "2000-01-15T00", "2000-01-20T06")
LEADS = (0, 12, 24, 36, 48)
LAYOUT = MemberLayout(checkpoints=2, pairs=4, seeds=1)
#: (mean, wave amplitude, noise std) per channel
SCALES = {"z500": (5.4e4, 600.0, 150.0), "t2m": (280.0, 8.0, 2.0)}


def signal(times: np.ndarray, name: str) -> np.ndarray:
    """The predictable part ``(time, lat, lon)``: a wave that goes round in 5 days."""
    mean, amp, _ = SCALES[name]
    hours = (np.asarray(times) - TIMES[0]) / np.timedelta64(1, "h")
    lat, lon = np.radians(GRID.lat)[:, None], np.radians(GRID.lon)[None, :]
    phase = 2 * np.pi * hours / 120.0
    return mean + amp * np.cos(lat) * np.cos(3 * lon[None] - phase[:, None, None])


def truth_values(seed: int = 0) -> xr.DataArray:
    """``(time, channel, lat, lon)`` float32 on :data:`GRID`: signal + noise."""
    rng = np.random.default_rng(seed)
    values = np.empty((TIMES.size, len(CHANNELS), *GRID.shape), dtype=np.float32)
    for k, name in enumerate(CHANNELS):
        values[:, k] = signal(TIMES, name) + SCALES[name][2] * rng.standard_normal((TIMES.size, *GRID.shape))
    return xr.DataArray(values, dims=("time", "channel", "lat", "lon"),
                        coords={"time": TIMES, "channel": list(CHANNELS), "lat": GRID.lat, "lon": GRID.lon})


def write_truth(truth: xr.DataArray, path: Path, *, channels=CHANNELS, times=None, stats: bool = True) -> Path:
    """A WeatherBench2-layout store of ``truth`` (and, with ``stats``, its statistics store)."""
    sel = truth.sel(channel=list(channels))
    if times is not None:
        sel = sel.isel(time=times)
    variables = {}
    for name in channels:
        ch = get_channel(name)
        field = sel.sel(channel=name).values
        if ch.level is None:
            variables[ch.long_name] = (("time", "latitude", "longitude"), field)
        else:
            variables[ch.long_name] = (("time", "level", "latitude", "longitude"), field[:, None])
    ds = xr.Dataset(variables, coords={"time": sel["time"].values, "level": [500],
                                       "latitude": GRID.lat.astype(np.float32),
                                       "longitude": GRID.lon.astype(np.float32)})
    ds.to_zarr(path, mode="w-", zarr_format=2, consolidated=True)
    if stats:
        write_stats(compute_stats(sel, GRID), stats_path(path))
    return path


def write_ensemble(truth: xr.DataArray, path: Path, *, kind: str, seed: int = 1,
                   skip: tuple[int, int] | None = None, lead_chunk: int = 2) -> Path:
    """An ensemble store (see the module docstring); ``skip=(init, batch)`` leaves one batch
    unwritten (not completed)."""
    spec = StoreSpec(channels=CHANNELS, init_times=tuple(np.datetime64(t, "ns") for t in INITS),
                     lead_hours=LEADS, grid=GRID, layout=LAYOUT, batch_size=4,
                     attrs={"hens_config": {"kind": kind}, "hens_version": "test"}, lead_chunk=lead_chunk)
    sink = open_sink(path, spec)
    rng = np.random.default_rng(seed)
    m = LAYOUT.size
    for i, init in enumerate(INITS):
        valid = np.datetime64(init, "ns") + np.array(LEADS, dtype="timedelta64[h]")
        y = truth.sel(time=valid).transpose("channel", "time", "lat", "lon").values  # (c, lead, lat, lon)
        data = {}
        for k, name in enumerate(CHANNELS):
            if kind == "perfect":
                data[name] = np.broadcast_to(y[k], (m, *y[k].shape)).copy()
            else:
                noise = SCALES[name][2] * rng.standard_normal((m, *y[k].shape))
                data[name] = signal(valid, name)[None] + noise
        for b, members in enumerate(range(0, m, spec.batch_size)):
            if skip == (i, b):
                continue
            sl = slice(members, members + spec.batch_size)
            sink.write(i, sl, np.stack([data[name][sl] for name in CHANNELS], axis=2))
    sink.finalize()
    return path
