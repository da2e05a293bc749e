"""Ensemble stores as xarray: one CF-described variable per channel, whatever the store format.

Format 2 (``forecast/zarr_sink.py``, docs/store.md) holds every channel in one ``fields`` array
with a ``channel`` dimension; format 1 (hens 0.1) one Zarr v2 array per channel. Both open as a
Dataset with ``<channel>(init_time, member, lead_time, lat, lon)`` float32 variables carrying
their units and standard names, the ``completed`` flags, the member coordinates and the run's
attributes -- lazily: nothing is read until values are asked for.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from hens.forecast.channels import CHANNELS
from hens.forecast.errors import DataError
from hens.forecast.grids import Grid
from hens.forecast.store_check import reading
from hens.forecast.zarr_sink import FIELDS

#: the per-channel dims readers see
DIMS = ("init_time", "member", "lead_time", "lat", "lon")
#: the coordinates along ``member`` that name each member's origin
MEMBER_COORDS = ("checkpoint", "pair", "sign", "seed")
#: the ``(init_time, member)`` bool flags a member's data is complete under
COMPLETED = "completed"


def open_store(path: str | Path, *, chunks: Mapping[str, int] | None = None) -> xr.Dataset:
    """Open an ensemble store written by ``hens forecast`` (either format).

    Parameters
    ----------
    path
        The store.
    chunks
        Dask chunks by the dims of :data:`DIMS` (``-1``: whole dim; a dim left out: as stored);
        ``None``: no dask, lazily indexed arrays.

    Returns
    -------
    xarray.Dataset
        One variable per channel, ``completed``, coordinates and attributes
        (``store_format``: 1 or 2).

    Raises
    ------
    DataError
        Not a readable Zarr store.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # unconsolidated fallback of format 1
            warnings.filterwarnings("ignore", message=".*separate the stored chunks.*")  # bands on purpose
            ds = xr.open_zarr(path, chunks=None if chunks is None else {**chunks, "channel": 1})
    except Exception as err:  # zarr raises many types for non-stores; all are user errors
        raise DataError(f"{path}: cannot open it as a Zarr store ({type(err).__name__}: {err})") from None
    if FIELDS not in ds.data_vars:
        return ds.assign_attrs(store_format=int(ds.attrs.get("store_format", 1)))
    fields = ds[FIELDS]
    attrs = json.loads(fields.attrs.get("channel_attrs", "{}"))
    channels = {str(c): fields.sel(channel=c, drop=True).transpose(*DIMS) for c in ds["channel"].values}
    for name, da in channels.items():
        da.attrs = attrs.get(name, {})
        da.encoding = {"chunks": _per_channel(fields.encoding.get("chunks")),
                       "shards": _per_channel(fields.encoding.get("shards"))}
    return ds.drop_vars([FIELDS, "channel"]).assign(channels)


def _per_channel(chunks: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """Stored chunk shape without the channel axis (the 4th of ``fields``)."""
    return None if chunks is None else tuple(chunks[:3]) + tuple(chunks[4:])


def global_grid(ds: xr.Dataset, path: Path, command: str) -> Grid:
    """The grid of an opened store's fields; ``command`` (scoring, products) needs the globe, so a
    store that keeps a region (``region:`` in its config) is one :class:`DataError`."""
    if "region" in ds.attrs:
        raise DataError(f"{path} keeps a latitude/longitude box (region: in its config); {command} needs "
                        "global fields")
    return Grid.detect(ds["lat"].values, ds["lon"].values, what=f"ensemble {path}")


@dataclass(frozen=True)
class CheckedStore:
    """An opened ensemble store in the hens layout: fields lazily, completion flags in memory."""

    path: Path
    dataset: xr.Dataset
    channels: tuple[str, ...]  # registry order
    grid: Grid
    completed: np.ndarray  # (init_time, member) bool


def open_checked(path: str | Path, command: str) -> CheckedStore:
    """Open the ensemble store at ``path`` for ``command`` (``"hens score"``, ``"hens products"``)
    and check that it is one: the ``completed`` flags, member coordinates, a hens channel over
    :data:`DIMS`, a global grid stored north first.

    Raises
    ------
    DataError
        The first of these that does not hold, naming the store.
    GridMismatch
        Coordinates of no registered grid.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such ensemble store")
    try:
        ds = open_store(path)
    except DataError as err:
        raise _not_hens(path, f"cannot open it as Zarr: {err}") from None
    if COMPLETED not in ds.data_vars:
        raise _not_hens(path, f"no `{COMPLETED}` flags")
    missing = [c for c in MEMBER_COORDS if c not in ds.coords]
    if missing:
        raise _not_hens(path, f"no member coordinates {', '.join(missing)}")
    held = {str(n) for n, v in ds.data_vars.items() if v.dims == DIMS}
    channels = tuple(c for c in CHANNELS if c in held)
    if not channels:
        raise _not_hens(path, f"no hens channel over {', '.join(DIMS)}")
    grid = global_grid(ds, path, command)
    if not (np.all(np.diff(ds["lat"].values) < 0) and np.all(np.diff(ds["lon"].values) > 0)):
        raise _not_hens(path, "latitude must run north first and longitude ascend")
    with reading(path, COMPLETED):
        completed = np.asarray(ds[COMPLETED].values).astype(bool)
    return CheckedStore(path, ds, channels, grid, completed)


def _not_hens(path: Path, why: str) -> DataError:
    return DataError(f"{path} is not a hens ensemble store ({why}); `hens forecast` writes them")
