"""Normalisation and climatology statistics of an analysis dataset, and their Zarr store.

The store sits beside its trajectory (``world.zarr`` -> ``world.stats.zarr``), in hens
layout (``channel``, ``lat`` north first, ``lon``):

``mean(channel)``, ``std(channel)``
    Area-weighted mean and standard deviation over time and space.
``tendency_std(channel)``
    Area-weighted standard deviation of 6-hour differences (the scale of a model's increment).
``climatology_mean(dayofyear, channel, lat, lon)``, ``climatology_quantiles(dayofyear, quantile, channel, lat, lon)``
    Per grid point, from every time within +-30 days (circular, 365.25-day year) of 12
    day-of-year centres a month apart; 101 quantiles 0, 0.01, ..., 1 (for EFI/SOT). A window
    without data is NaN; ``climatology_count(dayofyear)`` says how many times each used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from hens.forecast.channels import get_channel
from hens.forecast.errors import DataError
from hens.forecast.grids import Grid
from hens.forecast.types import STEP

QUANTILES = np.round(np.linspace(0.0, 1.0, 101), 2)
#: day-of-year centres of the climatology windows: mid-month, 12 a year
DAYOFYEAR_CENTRES = np.round(15.2 + np.arange(12) * 365.25 / 12).astype(np.int64)
WINDOW_HALF_WIDTH_DAYS = 30.0
_BLOCK = 64  # time steps read at once for the moments: bounds memory on long records
_SUFFIX = ".stats.zarr"


def stats_path(path: str | Path) -> Path:
    """The statistics store of a trajectory (``x.zarr`` -> ``x.stats.zarr``); stats paths map to themselves."""
    path = Path(path)
    if path.name.endswith(_SUFFIX):
        return path
    stem = path.name[: -len(".zarr")] if path.name.endswith(".zarr") else path.name
    return path.with_name(stem + _SUFFIX)


def _moments(data: xr.DataArray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Area-weighted mean, std and 6-hour tendency std per channel, streamed over time blocks."""
    sums = np.zeros((3, data.sizes["channel"]))  # sum w, sum w x, sum w x^2
    tend = np.zeros((2, data.sizes["channel"]))  # sum w, sum w dx^2
    w = weights[None, None, :, None]
    previous: tuple[np.ndarray, np.ndarray] | None = None  # last frame and time read
    for i in range(0, data.sizes["time"], _BLOCK):
        chunk = data.isel(time=slice(i, i + _BLOCK))
        block, times = chunk.values.astype(np.float64), chunk["time"].values
        wb = np.broadcast_to(w, block.shape)
        sums += [wb.sum((0, 2, 3)), (wb * block).sum((0, 2, 3)), (wb * block**2).sum((0, 2, 3))]
        if previous is not None:
            block, times = np.concatenate((previous[0], block)), np.concatenate((previous[1], times))
        # only pairs 6 hours apart are tendencies (a record may have gaps)
        diff = np.diff(block, axis=0)[np.diff(times) == STEP]
        wd = np.broadcast_to(w, diff.shape)
        tend += [wd.sum((0, 2, 3)), (wd * diff**2).sum((0, 2, 3))]
        previous = (block[-1:], times[-1:])
    mean = sums[1] / sums[0]
    return {
        "mean": mean,
        "std": np.sqrt(np.maximum(sums[2] / sums[0] - mean**2, 0.0)),
        "tendency_std": np.sqrt(tend[1] / tend[0]) if tend[0].all() else np.full(sums.shape[1], np.nan),
    }


def _window_indices(dayofyear: np.ndarray, centre: int) -> np.ndarray:
    distance = np.abs(dayofyear - centre)
    return np.flatnonzero(np.minimum(distance, 365.25 - distance) <= WINDOW_HALF_WIDTH_DAYS)


def compute_stats(data: xr.DataArray, grid: Grid) -> xr.Dataset:
    """Statistics of ``data`` ``(time, channel, lat, lon)`` (hens layout, may be dask-backed).

    Memory: one time block for the moments, one channel of one +-30-day window for the
    quantiles (a few times its size while sorting).
    """
    missing = {"time", "channel", "lat", "lon"} - set(data.dims)
    if missing:
        raise DataError(f"statistics need dims (time, channel, lat, lon); missing {sorted(missing)}")
    data = data.transpose("time", "channel", "lat", "lon")
    grid.check(data["lat"].values, data["lon"].values, what="statistics input")
    channels = [str(c) for c in data["channel"].values]
    moments = _moments(data, grid.area_weights)
    doy = pd.DatetimeIndex(data["time"].values).day_of_year.to_numpy()
    shape = (len(DAYOFYEAR_CENTRES), len(QUANTILES), len(channels), *grid.shape)
    quantiles = np.full(shape, np.nan, dtype=np.float32)
    clim_mean = np.full((shape[0], *shape[2:]), np.nan, dtype=np.float32)
    counts = np.zeros(shape[0], dtype=np.int64)
    for k, centre in enumerate(DAYOFYEAR_CENTRES):
        idx = _window_indices(doy, centre)
        counts[k] = idx.size
        if idx.size == 0:
            continue  # NaN: no data in this window
        for c in range(len(channels)):  # one channel at a time bounds memory
            window = data.isel(time=idx, channel=c).values.astype(np.float64)
            quantiles[k, :, c] = np.quantile(window, QUANTILES, axis=0)
            clim_mean[k, c] = window.mean(axis=0)
    dims_q = ("dayofyear", "quantile", "channel", "lat", "lon")
    ds = xr.Dataset(
        {
            "mean": ("channel", moments["mean"], {"long_name": "area-weighted mean over time and space"}),
            "std": ("channel", moments["std"], {"long_name": "area-weighted standard deviation"}),
            "tendency_std": ("channel", moments["tendency_std"],
                             {"long_name": "area-weighted standard deviation of 6-hour differences"}),
            "climatology_mean": (dims_q[:1] + dims_q[2:], clim_mean,
                                 {"long_name": "mean over the day-of-year window"}),
            "climatology_quantiles": (dims_q, quantiles,
                                      {"long_name": "quantiles over the day-of-year window, per grid point"}),
            "climatology_count": ("dayofyear", counts, {"long_name": "number of times in the window"}),
        },
        coords={
            "channel": channels,
            "units": ("channel", [get_channel(c).units for c in channels], {"long_name": "units of each channel"}),
            "dayofyear": ("dayofyear", DAYOFYEAR_CENTRES, {"long_name": "centre of the day-of-year window"}),
            "quantile": ("quantile", QUANTILES),
            "lat": ("lat", grid.lat.astype(np.float32), {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", grid.lon.astype(np.float32), {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={
            "window_half_width_days": WINDOW_HALF_WIDTH_DAYS,
            "window": "all times whose day of year is within +-30 days (circular, 365.25-day year) of the centre",
            "weights": "area weights (Grid.area_weights, mean 1) for mean, std and tendency_std",
            "time_start": str(data["time"].values[0]),
            "time_stop": str(data["time"].values[-1]),
            "n_times": int(data.sizes["time"]),
            **grid.attrs(),
        },
    )
    for name in ("mean", "std", "tendency_std", "climatology_mean", "climatology_quantiles"):
        ds[name].attrs["units"] = "per channel: see the units coordinate"
    return ds


def write_stats(stats: xr.Dataset, path: str | Path) -> None:
    """Write ``stats`` as a consolidated Zarr v2 store, one chunk per day-of-year window."""
    encoding = {name: {"chunks": (1,) + stats[name].shape[1:]}
                for name in ("climatology_mean", "climatology_quantiles")}
    stats.to_zarr(path, mode="w-", zarr_format=2, consolidated=True, encoding=encoding)


def open_world_stats(path: str | Path) -> xr.Dataset:
    """Open the statistics of a trajectory: pass the stats store or the trajectory beside it.

    A store of any name holding the statistics (``tendency_std``) is used as it is.
    """
    path = Path(path)
    target = path if _holds_stats(path) else stats_path(path)
    if not target.exists():
        raise DataError(f"no statistics store {target}: pass one with --climatology, or write it with "
                        "hens.forecast.stats.write_stats (`hens world` writes it for a world)")
    return xr.open_zarr(target, consolidated=True)


def _holds_stats(path: Path) -> bool:
    return (path / "tendency_std").is_dir() or (path / "tendency_std" / "zarr.json").is_file()
