"""Copernicus CDS netCDF files, in the new (2024+) and the legacy layout.

New: dims ``valid_time`` (int64 seconds since 1970), ``pressure_level`` (hPa, 1000 first),
``latitude`` (90 -> -90), ``longitude``; a scalar ``number`` coordinate and a string
``expver`` coordinate along time; unpacked float32 with GRIB-style units (``m**2 s**-2``).
Pressure-level and single-level variables come in separate files.

Legacy: dims ``time`` (int32 hours since 1900), ``level`` (hPa), ``latitude``,
``longitude``; int16 packed data (xarray unpacks it); files mixing ERA5 and ERA5T carry an
extra ``expver`` *dimension* (1 = ERA5, 5 = ERA5T) that is resolved here.

Both use CDS short names (``z``, ``t``, ``t2m``, ``u10``). Legacy int16 packing keeps one
step of (max - min) / 65533 per variable and file (about 1 m2 s-2 for z over 1000-50 hPa):
legacy values agree with the other layouts to that step, not bit for bit.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from hens.forecast.channels import CHANNELS
from hens.forecast.sources.part import NameAttr

TITLE_NEW = "CDS netCDF (new)"
TITLE_LEGACY = "CDS netCDF (legacy)"
NAME_ATTR: NameAttr = "short_name"


def _has_short_names(ds: xr.Dataset) -> bool:
    return bool({ch.short_name for ch in CHANNELS.values()} & set(map(str, ds.data_vars)))


def is_new_layout(ds: xr.Dataset) -> bool:
    """New CDS: a ``valid_time`` dim and CDS short names."""
    return "valid_time" in ds.dims and _has_short_names(ds)


def is_legacy_layout(ds: xr.Dataset) -> bool:
    """Legacy CDS: a ``time`` dim and CDS short names."""
    return "time" in ds.dims and _has_short_names(ds)


def normalize_new(ds: xr.Dataset) -> xr.Dataset:
    """Rename to ``time``/``level``; drop ``number`` and the informative ``expver`` string."""
    renames = {"valid_time": "time", "pressure_level": "level"}
    ds = ds.rename({old: new for old, new in renames.items() if old in ds.variables})
    return ds.drop_vars([v for v in ("number", "expver") if v in ds.coords and v not in ds.dims])


def normalize_legacy(ds: xr.Dataset) -> xr.Dataset:
    """Merge the ``expver`` dimension: ERA5 (expver 1) where present, else ERA5T (5)."""
    if "expver" not in ds.dims:
        return ds.drop_vars([v for v in ("number", "expver") if v in ds.coords])
    layers = [ds.sel(expver=v, drop=True) for v in np.sort(ds["expver"].values)]
    merged = layers[0]
    for layer in layers[1:]:
        merged = merged.fillna(layer)
    return merged
