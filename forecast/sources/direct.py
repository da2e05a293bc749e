"""Fast path for Zarr stores: contiguous time ranges decoded straight into the output block.

Through xarray a read allocates an array per variable and hens then copies it into the
``(time, channel, lat, lon)`` block; for the world's store that allocation and copy cost
about a third of the read. zarr can decode chunks into a caller's buffer (``out=``), which
is safe when xarray would not change the values: floating-point data without
``scale_factor``/``add_offset`` and with a NaN (or no) fill value, stored as
``(time, [level,] latitude, longitude)`` in hens order (north first, longitude 0..360).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
import zarr
from zarr.buffer import default_buffer_prototype

from hens.forecast.channels import CHANNELS
from hens.forecast.sources.part import Part

_STORAGE_DIMS = {3: ("time", "latitude", "longitude"),
                 4: ("time", "level", "latitude", "longitude")}


@dataclass(frozen=True)
class DirectField:
    """One channel of a Zarr store, read without xarray.

    Attributes
    ----------
    array
        The Zarr array, dims ``(time, [level,] latitude, longitude)``.
    times
        Its time axis, ``datetime64[ns]`` (the whole store's: ARCO's slicing does not apply).
    level
        ``(position,)`` of the channel's level, or ``()``.
    """

    array: zarr.Array
    times: np.ndarray
    level: tuple[int, ...]

    def read_into(self, when: np.ndarray, out: np.ndarray) -> bool:
        """Decode ``when`` into ``out`` (time, lat, lon): a contiguous run of times, or
        ascending times (e.g. a training batch) in one orthogonal selection.

        Returns False, leaving ``out`` untouched, for any other selection.
        """
        if not when.size:
            return False
        start = int(np.searchsorted(self.times, when[0]))
        stop = start + when.size
        buffer = default_buffer_prototype().nd_buffer.from_numpy_array(out)
        if np.array_equal(self.times[start:stop], when):
            self.array.get_basic_selection((slice(start, stop), *self.level), out=buffer)
            return True
        index = np.searchsorted(self.times, when)
        if (np.diff(index) <= 0).any() or index[-1] >= self.times.size or not np.array_equal(self.times[index], when):
            return False
        # one call for scattered times: each zarr call costs ~1 ms of event-loop overhead
        self.array.get_orthogonal_selection((index, *self.level), out=buffer)
        return True


def attach(part: Part, path: str, ds: xr.Dataset) -> Part:
    """``part`` with direct readers for the channels that qualify (see the module notes).

    ``ds`` is the store as xarray opened it, before any normalisation.
    """
    if not part.hens_order:
        return part
    group = zarr.open_group(path, mode="r")
    times = ds["time"].values.astype("datetime64[ns]")
    direct = {}
    for channel, field in part.fields.items():
        var = ds[field.name]
        if not _plain(var):
            continue
        level = CHANNELS[channel].level
        at = () if level is None else (int(np.flatnonzero(ds["level"].values == level)[0]),)
        direct[channel] = DirectField(group[str(field.name)], times, at)
    return part.with_direct(direct)


def _plain(var: xr.DataArray) -> bool:
    """True when xarray's decoding leaves the stored values unchanged."""
    enc = var.encoding
    fill = enc.get("_FillValue")
    return (
        var.dims == _STORAGE_DIMS.get(var.ndim)
        and np.issubdtype(np.dtype(enc.get("dtype", var.dtype)), np.floating)
        and np.dtype(enc.get("dtype", var.dtype)) == var.dtype
        and not {"scale_factor", "add_offset", "_Unsigned"} & set(enc)
        and (fill is None or bool(np.isnan(fill)))
    )
