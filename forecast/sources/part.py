"""One homogeneous piece of a data source: channels that share a time axis and a grid.

A layout module (:mod:`.wb2`, :mod:`.cds`) turns a file into a *normalised* dataset -- dims
``time``, optional ``level`` (hPa), ``latitude``, ``longitude``, variables under their names
in the file -- and :func:`make_part` finds the hens channels in it, the grid, and the index
orders that put latitude north first and longitude ascending in [0, 360).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np
import xarray as xr

from hens.forecast.channels import CHANNELS, Channel
from hens.forecast.errors import DataError
from hens.forecast.grids import Grid

#: which :class:`~hens.forecast.channels.Channel` attribute names a variable in a layout
NameAttr = Literal["long_name", "short_name"]
#: a permutation of storage rows or columns; slices keep the common cases copy-free views
Order = slice | np.ndarray
_FIELD_DIMS = ("time", "latitude", "longitude")


class DirectReader(Protocol):
    """Reads a channel straight into the caller's buffer when it can (see :mod:`.direct`)."""

    def read_into(self, when: np.ndarray, out: np.ndarray) -> bool: ...


@dataclass(frozen=True)
class Part:
    """Channels of one file, or of files concatenated along time, in storage order.

    Attributes
    ----------
    name
        The file(s), for messages.
    times
        Valid times, ``datetime64[ns]``, ascending and unique.
    fields
        hens channel -> lazy ``(time, latitude, longitude)`` array, level already selected.
    grid
        The detected grid.
    lat_order, lon_order
        Storage rows/columns in hens order (north first; longitude ascending in [0, 360)).
    direct
        Optional faster readers of some channels, tried first.
    """

    name: str
    times: np.ndarray
    fields: dict[str, xr.DataArray]
    grid: Grid
    lat_order: Order
    lon_order: Order
    direct: Mapping[str, DirectReader] = field(default_factory=dict)

    @property
    def hens_order(self) -> bool:
        """True when storage is already north first with longitudes ascending from 0."""
        return all(isinstance(o, slice) and o == slice(None)
                   for o in (self.lat_order, self.lon_order))

    def with_direct(self, direct: Mapping[str, DirectReader]) -> Part:
        """This part with direct readers for some channels."""
        return replace(self, direct=direct)

    def read_into(self, channel: str, when: np.ndarray, out: np.ndarray) -> None:
        """Write ``channel`` at times ``when`` (all in :attr:`times`) into ``out``.

        ``out`` has shape (time, lat, lon) in hens order. A contiguous run of times is one
        backend read; other selections are read sorted and unique, then reordered.
        """
        source = self.fields[channel]
        direct = self.direct.get(channel)
        try:
            if direct is not None and direct.read_into(when, out):
                return
            index = _positions(self.times, when)
            if isinstance(index, slice):
                block = np.asarray(source.isel(time=index).values)
            else:
                unique, inverse = np.unique(index, return_inverse=True)
                block = np.asarray(source.isel(time=unique).values)[inverse]
        except Exception as err:  # a damaged chunk or file surfaces only when read
            raise DataError(
                f"cannot read {source.name} for {channel} from {self.name} (damaged or "
                f"incomplete?): {type(err).__name__}: {first_line(err)}"
            ) from err
        # slices give views; only a longitude roll or an irregular order costs a copy
        out[...] = block[:, self.lat_order][:, :, self.lon_order]


def make_part(ds: xr.Dataset, name: str, name_attr: NameAttr) -> Part:
    """Find the hens channels of a normalised dataset and the order of its grid.

    Parameters
    ----------
    ds
        Dims ``time``, optional ``level`` (hPa), ``latitude`` and ``longitude`` (degrees, any
        order, longitude in [0, 360) or [-180, 180)).
    name
        The file(s), for messages.
    name_attr
        How variables are named: WB2/ARCO long names or CDS short names.

    Raises
    ------
    DataError
        No known channel, a variable with other dims or units, duplicate times.
    GridMismatch
        The coordinates are not a registered grid.
    """
    for coord in _FIELD_DIMS:
        if coord not in ds.coords:
            have = ", ".join(map(str, ds.coords)) or "none"
            raise DataError(f"{name} has no {coord!r} coordinate (it has {have})")
    times = ds["time"].values.astype("datetime64[ns]")
    if np.any(np.diff(times) <= np.timedelta64(0)):
        ds = ds.sortby("time")
        times = ds["time"].values.astype("datetime64[ns]")
        repeated = times[1:][np.diff(times) == np.timedelta64(0)]
        if repeated.size:
            raise DataError(
                f"{name}: time {np.datetime_as_string(repeated[0], unit='m')} occurs more than "
                "once; pass each time once"
            )
    lat = ds["latitude"].values
    lon = ds["longitude"].values
    grid = Grid.detect(lat, lon, what=name)
    fields = {ch.name: _field(ds, ch, var, name) for ch, var in _find(ds, name_attr)}
    if not fields:
        raise DataError(
            f"{name} holds no hens channel: its variables are {', '.join(map(str, ds.data_vars))}"
        )
    lon360 = np.mod(lon.astype(np.float64), 360.0)
    return Part(name, times, fields, grid, _order(-lat.astype(np.float64)), _order(lon360))


def _find(ds: xr.Dataset, name_attr: NameAttr) -> list[tuple[Channel, str]]:
    """(channel, variable) pairs present in ``ds``; a level channel needs its level in the file."""
    levels = set(np.asarray(ds["level"].values).tolist()) if "level" in ds.coords else set()
    found = []
    for ch in CHANNELS.values():
        var = getattr(ch, name_attr)
        if var not in ds.data_vars:
            continue
        on_levels = "level" in ds[var].dims
        if (ch.level is None and not on_levels) or (on_levels and ch.level in levels):
            found.append((ch, var))
    return found


def _field(ds: xr.Dataset, ch: Channel, var: str, name: str) -> xr.DataArray:
    """The lazy (time, latitude, longitude) array of one channel, after checking dims and units."""
    da = ds[var] if ch.level is None else ds[var].sel(level=ch.level, drop=True)
    if set(da.dims) != set(_FIELD_DIMS):
        extra = sorted(map(str, set(da.dims) - set(_FIELD_DIMS)))
        raise DataError(
            f"{var} in {name} has dims {da.dims}; hens reads (time, [level,] latitude, longitude) "
            f"-- select or drop {', '.join(extra) or 'the missing dims'} first"
        )
    units = da.attrs.get("units")
    if units is not None and _canonical_units(str(units)) != _canonical_units(ch.units):
        raise DataError(
            f"{var} in {name} has units {units!r}; hens channel {ch.name} needs {ch.units}"
        )
    return da.transpose(*_FIELD_DIMS)


def _positions(times: np.ndarray, when: np.ndarray) -> slice | np.ndarray:
    """Positions of ``when`` (all present) in ``times``; a slice for a contiguous run."""
    idx = np.searchsorted(times, when)
    if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        return slice(int(idx[0]), int(idx[0]) + idx.size)
    return idx


def _canonical_units(units: str) -> str:
    """GRIB-style ``m**2 s**-2`` and CF ``m2 s-2`` compare equal."""
    return " ".join(units.replace("**", "").replace("^", "").split())


def _order(key: np.ndarray) -> Order:
    """Positions that sort ``key`` ascending, as a slice when it is the identity or a flip."""
    order = np.argsort(key, kind="stable")
    n = order.size
    if np.array_equal(order, np.arange(n)):
        return slice(None)
    if np.array_equal(order, np.arange(n)[::-1]):
        return slice(None, None, -1)
    return order


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, for one-line errors."""
    text = str(err).strip()
    return text.splitlines()[0] if text else "no message"
