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
from pathlib import Path

import xarray as xr

from hens.forecast.errors import DataError
from hens.forecast.grids import Grid
from hens.forecast.zarr_sink import FIELDS

#: the per-channel dims readers see
DIMS = ("init_time", "member", "lead_time", "lat", "lon")


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
