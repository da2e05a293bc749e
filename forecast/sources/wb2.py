"""WeatherBench2 and ARCO ERA5 Zarr stores (the world's store is read here too).

Layout: dims ``time``, ``level`` (hPa, ascending in WB2), ``latitude`` (descending in the
0.25 deg store, ascending in regridded ones), ``longitude`` (0..360); long variable names
(``geopotential``, ``2m_temperature``). ARCO stores extend their time axis beyond the data:
their ``valid_time_start``/``valid_time_stop`` attributes bound the usable times.
"""

from __future__ import annotations

import xarray as xr

from hens.forecast.channels import CHANNELS
from hens.forecast.sources.part import NameAttr

TITLE = "WeatherBench2/ARCO"
NAME_ATTR: NameAttr = "long_name"


def is_layout(ds: xr.Dataset) -> bool:
    """WB2/ARCO: a ``time`` dim and at least one WB2 long variable name."""
    long_names = {ch.long_name for ch in CHANNELS.values()}
    return "time" in ds.dims and bool(long_names & set(map(str, ds.data_vars)))


def normalize(ds: xr.Dataset) -> xr.Dataset:
    """Restrict an ARCO store to its valid times; WB2 stores are already normal."""
    start, stop = ds.attrs.get("valid_time_start"), ds.attrs.get("valid_time_stop")
    if start is None and stop is None:
        return ds
    # label slicing: inclusive at both ends, and a date-only stop includes that whole day
    return ds.sel(time=slice(start, stop))
