"""What ``hens products`` reads: the ensemble store (checked, each initial time with its own
completed members) and the climatology (a statistics store, by default the one beside the
data the ensemble started from), and the climate quantiles of each valid time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from hens.forecast.errors import DataError
from hens.forecast.stats import open_world_stats, stats_path
from hens.forecast.store_reader import CheckedStore, open_checked

#: a spread needs two members
MIN_MEMBERS = 2
_YEAR_DAYS = 365.25


def open_ensemble(path: Path) -> CheckedStore:
    """Open ``path``, check the hens layout and that every init has enough members.

    Unlike scoring, each initial time uses its own completed members, so a member missing
    at one initial time does not remove it from the others.
    """
    store = open_checked(path, "hens products")
    done = store.completed
    short = np.flatnonzero(done.sum(axis=1) < MIN_MEMBERS)
    if short.size:
        i = short[0]
        raise DataError(
            f"{path}: {short.size} of {done.shape[0]} initial times have fewer than "
            f"{MIN_MEMBERS} completed members (first {hour_label(store.dataset['init_time'].values[i])}: "
            f"{int(done[i].sum())} of {done.shape[1]}); finish the run with "
            "`hens forecast CONFIG --resume`"
        )
    return store


def hour_label(t: np.datetime64) -> str:
    """``t`` to the hour, ``YYYY-MM-DDTHH`` (file names, messages, attributes)."""
    return str(np.datetime_as_string(np.datetime64(t, "h"), unit="h"))


def default_climatology(ens: CheckedStore) -> Path:
    """The statistics store of the data the ensemble was started from (``hens_config.data``).

    Relative data paths are relative to the run's YAML folder, found by removing the
    configured ``output`` path from the store's path.
    """
    try:
        config = json.loads(ens.dataset.attrs.get("hens_config", "{}"))
    except (TypeError, ValueError):
        config = {}
    data = config.get("data") if isinstance(config, dict) else None
    data = [data] if isinstance(data, str) else data
    if not data or len(data) != 1:
        what = "no data path" if not data else f"{len(data)} data paths"
        raise DataError(f"{ens.path} records {what} (attribute hens_config.data); "
                        "pass --climatology STATS naming the statistics store")
    entry, output = Path(data[0]), Path(str(config.get("output", ens.path.name)))
    if not entry.is_absolute():
        here = ens.path.resolve()
        n = len(output.parts)
        base = here.parents[n - 1] if here.parts[-n:] == output.parts else here.parent
        entry = base / entry
    target = stats_path(entry)
    if not target.exists():
        raise DataError(f"no climatology {target} beside the data {data[0]} recorded in "
                        f"{ens.path}; pass --climatology STATS")
    return target


def open_climatology(path: Path, ens: CheckedStore, thresholds: tuple[float, ...]) -> xr.Dataset:
    """The statistics store at ``path`` checked against the ensemble's grid and channels and
    holding the quantile level of every threshold."""
    if not path.exists():
        raise DataError(f"climatology {path} does not exist; pass --climatology naming a "
                        "statistics store (`hens world` writes X.stats.zarr beside X.zarr)")
    try:
        stats = open_world_stats(path)
    except Exception as err:  # unreadable Zarr: a user-facing data problem
        raise DataError(f"climatology {path} is not readable ({type(err).__name__})") from None
    if "climatology_quantiles" not in stats:
        raise DataError(f"climatology {path} has no climatology_quantiles; regenerate it with "
                        "`hens world --overwrite`")
    ens.grid.check(stats["lat"].values, stats["lon"].values, what=f"climatology {path}")
    absent = [c for c in ens.channels if c not in stats["channel"].values]
    if absent:
        raise DataError(f"climatology {path} lacks channel {', '.join(absent)} of {ens.path}")
    held = stats["quantile"].values
    missing = [t for t in thresholds if not np.isclose(held, t, rtol=0, atol=1e-6).any()]
    if missing:
        some = f"{held[0]:g}, {held[1]:g}, ..., {held[-1]:g}"
        raise DataError(f"climatology {path} has no {missing[0]:g} quantile for --threshold; "
                        f"use levels among its {held.size} quantiles {some}")
    return stats


def climate_at(windows: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
    """Climate quantiles ``(time, quantile, lat, lon)`` of each valid time of ``like``, from
    ``windows`` ``(dayofyear, quantile, lat, lon)``: the window with the (circularly)
    nearest centre, as ``hens score`` picks it, on ``like``'s coordinates."""
    centres = windows["dayofyear"].values.astype(np.float64)
    doy = pd.DatetimeIndex(like["time"].values).day_of_year.to_numpy().astype(np.float64)
    distance = np.abs(doy[:, None] - centres[None, :])
    window = np.argmin(np.minimum(distance, _YEAR_DAYS - distance), axis=1)
    picked = windows.isel(dayofyear=xr.DataArray(window, dims="time"), drop=True)
    picked = picked.drop_vars([c for c in picked.coords if c != "quantile"])
    picked = picked.assign_coords({d: like[d] for d in ("time", "lat", "lon")})
    return picked.transpose("time", "quantile", "lat", "lon").astype(np.float64)
