"""Writers of tiny files in the exact real layouts (WB2/ARCO Zarr, new and legacy CDS
netCDF), all holding the same underlying values, for the data-source tests.

The layouts copy WeatherBench2's printed stores and real CDS file headers: names, dims and order,
dtypes, coordinate directions, units strings, time encodings and packing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from hens.forecast.channels import CHANNELS, Channel
from hens.forecast.grids import Grid

TIMES = pd.date_range("2020-01-01", periods=3, freq="6h").values
LEVELS = (250, 500, 850)
PRESSURE = ("z", "t", "u", "v")
SURFACE = ("t2m", "msl")
TRUTH_CHANNELS = tuple(f"{p}{lev}" for p in PRESSURE for lev in LEVELS) + SURFACE
# a typical magnitude and spread per variable, so packing errors are realistic
_SCALE = {"z": (5.0e4, 3.0e3), "t": (250.0, 15.0), "u": (10.0, 12.0), "v": (0.0, 8.0), "q": (4e-3, 3e-3),
          "t2m": (280.0, 20.0), "d2m": (274.0, 18.0), "msl": (1.01e5, 1.5e3), "sp": (9.7e4, 8e3),
          "tcwv": (20.0, 15.0), "u10m": (0.0, 6.0), "v10m": (0.0, 5.0), "u100m": (0.0, 8.0), "v100m": (0.0, 7.0)}
#: the 74 variables of the Huge Ensembles SFNO packages (73 of sfno_73ch_small + d2m)
ERA5_74 = (("u10m", "v10m", "u100m", "v100m", "t2m", "d2m", "sp", "msl", "tcwv")
           + tuple(f"{p}{lev}" for p in ("u", "v", "z", "t", "q") for lev in
                   (50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000)))
_GRIB_UNITS = {"m2 s-2": "m**2 s**-2", "m s-1": "m s**-1", "K": "K", "Pa": "Pa", "kg kg-1": "kg kg**-1",
               "kg m-2": "kg m**-2"}


def make_truth(grid: Grid, seed: int = 0, *, channels: tuple[str, ...] = TRUTH_CHANNELS,
               times: np.ndarray = TIMES) -> xr.DataArray:
    """Values in hens order (time, channel, lat north first, lon 0..360), float32."""
    rng = np.random.default_rng(seed)
    lat, lon = np.radians(grid.lat), np.radians(grid.lon)
    values = np.empty((times.size, len(channels), *grid.shape), dtype=np.float32)
    for k, name in enumerate(channels):
        mean, spread = _SCALE[name if CHANNELS[name].level is None else name[0]]
        pattern = np.sin(lat)[:, None] + 0.5 * np.cos(lon + k)[None, :]  # varies along both axes
        noise = rng.normal(size=(times.size, *grid.shape))
        values[:, k] = mean + spread * (0.7 * pattern + 0.3 * noise)
    return xr.DataArray(
        values, dims=("time", "channel", "lat", "lon"),
        coords={"time": times, "channel": list(channels), "lat": grid.lat, "lon": grid.lon},
    )


def _encoded(times: np.ndarray, unit: str, epoch_year: int, dtype: type) -> np.ndarray:
    """Times as the integers CDS writes (written raw, so the units string stays CDS's own)."""
    epoch = np.datetime64(f"{epoch_year}-01-01T00:00:00", "ns")
    return ((times - epoch) // np.timedelta64(1, unit)).astype(dtype)


def _level_cube(truth: xr.DataArray, prefix: str, levels: tuple[int, ...]) -> np.ndarray:
    """(time, level, lat, lon) values of one pressure variable, levels in the given order."""
    return np.stack([truth.sel(channel=f"{prefix}{lev}").values for lev in levels], axis=1)


def _orient(values: np.ndarray, grid: Grid, *, lat_ascending: bool, lon_180: bool
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reorder the last two axes from hens order to the file's; return values, lat, lon."""
    lat, lon = grid.lat, grid.lon
    if lat_ascending:
        values, lat = values[..., ::-1, :], lat[::-1]
    if lon_180:  # -180 .. 180, ascending, as CDS requests with an area give
        shifted = np.where(lon >= 180.0, lon - 360.0, lon)
        order = np.argsort(shifted)
        values, lon = values[..., order], shifted[order]
    return values, lat, lon


def write_wb2(truth: xr.DataArray, path: Path, *, lat_ascending: bool = False,
              lon_180: bool = False, arco_extra_times: int = 0) -> Path:
    """A WeatherBench2 ERA5 Zarr v2 store (ARCO-style valid-time attrs when extra times).

    Dims (time, level, latitude, longitude), level int64 ascending, latitude/longitude
    float32, one time step per chunk, consolidated metadata. With ``arco_extra_times`` the
    time axis runs past the data (NaN) and ``valid_time_start/stop`` bound it, as in ARCO.
    """
    grid = Grid.detect(truth["lat"].values, truth["lon"].values)
    valid = truth["time"].values
    times = pd.date_range(valid[0], periods=valid.size + arco_extra_times, freq="6h").values
    pad = ((0, arco_extra_times), (0, 0), (0, 0), (0, 0))
    data = {}
    names = [str(c) for c in truth["channel"].values]
    levels = tuple(sorted({CHANNELS[c].level for c in names if CHANNELS[c].level is not None}))
    prefixes = list(dict.fromkeys(c.rstrip("0123456789") for c in names if CHANNELS[c].level is not None))
    for prefix in prefixes:
        cube, lat, lon = _orient(_level_cube(truth, prefix, levels), grid,
                                 lat_ascending=lat_ascending, lon_180=lon_180)
        ch = CHANNELS[f"{prefix}500"]
        data[ch.long_name] = (("time", "level", "latitude", "longitude"),
                              np.pad(cube, pad, constant_values=np.nan).astype(np.float32),
                              {"units": _GRIB_UNITS[ch.units], "short_name": ch.short_name})
    for name in (c for c in names if CHANNELS[c].level is None):
        field, lat, lon = _orient(truth.sel(channel=name).values, grid,
                                  lat_ascending=lat_ascending, lon_180=lon_180)
        ch = CHANNELS[name]
        data[ch.long_name] = (("time", "latitude", "longitude"),
                              np.pad(field, pad[:1] + pad[2:], constant_values=np.nan),
                              {"units": _GRIB_UNITS[ch.units], "short_name": ch.short_name})
    ds = xr.Dataset(data, coords={
        "time": times, "level": np.array(levels, dtype=np.int64),
        "latitude": lat.astype(np.float32), "longitude": lon.astype(np.float32)})
    if arco_extra_times:
        # ARCO writes dates; the stop bound is inclusive
        ds.attrs.update(valid_time_start=str(valid[0])[:10], valid_time_stop=str(valid[-1])[:19])
    ds.chunk({"time": 1}).to_zarr(path, zarr_format=2, consolidated=True, mode="w")
    return path


def _grib_attrs(ch: Channel, short: str) -> dict:
    return {"units": _GRIB_UNITS[ch.units],
            "long_name": ch.long_name.replace("_", " ").capitalize(),
            "standard_name": ch.standard_name, "GRIB_shortName": short,
            "GRIB_units": _GRIB_UNITS[ch.units], "GRIB_gridType": "regular_ll"}


def write_cds_new(truth: xr.DataArray, folder: Path, *, lon_180: bool = False) -> list[Path]:
    """New-CDS (2024+) netCDF: separate pressure-level and single-level files.

    ``valid_time`` int64 seconds since 1970 (proleptic_gregorian), ``pressure_level``
    float64 descending (1000 first), latitude float64 90 -> -90, scalar ``number``, string
    ``expver`` along time, float32 data with NaN fill and GRIB-style units.
    """
    grid = Grid.detect(truth["lat"].values, truth["lon"].values)
    times = truth["time"].values
    folder.mkdir(parents=True, exist_ok=True)
    names = [str(c) for c in truth["channel"].values]
    levels = tuple(sorted({CHANNELS[c].level for c in names if CHANNELS[c].level is not None}, reverse=True))
    groups = (("pressure-levels", list(dict.fromkeys(c.rstrip("0123456789") for c in names
                                                     if CHANNELS[c].level is not None))),
              ("single-levels", [c for c in names if CHANNELS[c].level is None]))
    common = {"number": ((), np.int64(0), {"long_name": "ensemble member numerical id",
                                           "units": "1", "standard_name": "realization"}),
              "expver": (("valid_time",), np.array(["0001"] * times.size, dtype=object))}
    paths = []
    for kind, group in groups:
        data = {}
        for name in group:
            if kind == "pressure-levels":
                ch = CHANNELS[f"{name}500"]
                values, lat, lon = _orient(_level_cube(truth, name, levels), grid,
                                           lat_ascending=False, lon_180=lon_180)
                dims = ("valid_time", "pressure_level", "latitude", "longitude")
            else:
                ch = CHANNELS[name]
                values, lat, lon = _orient(truth.sel(channel=name).values, grid,
                                           lat_ascending=False, lon_180=lon_180)
                dims = ("valid_time", "latitude", "longitude")
            data[ch.short_name] = (dims, values.astype(np.float32), _grib_attrs(ch, ch.short_name))
        coords = {"valid_time": ("valid_time", _encoded(times, "s", 1970, np.int64),
                                 {"long_name": "time", "standard_name": "time",
                                  "units": "seconds since 1970-01-01",
                                  "calendar": "proleptic_gregorian"}),
                  "latitude": ("latitude", lat.astype(np.float64),
                               {"units": "degrees_north", "stored_direction": "decreasing"}),
                  "longitude": ("longitude", lon.astype(np.float64), {"units": "degrees_east"}),
                  **common}
        if kind == "pressure-levels":
            coords["pressure_level"] = ("pressure_level", np.array(levels, dtype=np.float64),
                                        {"units": "hPa", "stored_direction": "decreasing"})
        ds = xr.Dataset(data, coords=coords,
                        attrs={"GRIB_centre": "ecmf", "Conventions": "CF-1.7",
                               "institution": "European Centre for Medium-Range Weather Forecasts"})
        encoding = {v: {"_FillValue": np.float32(np.nan)} for v in data}
        path = folder / f"data_stream-oper_stepType-instant-{kind}.nc"
        ds.to_netcdf(path, format="NETCDF4", engine="netcdf4", encoding=encoding)
        paths.append(path)
    return paths


def _packing(values: np.ndarray) -> dict:
    """ECMWF-style int16 packing: the range maps onto -32766 .. 32767, -32767 is missing."""
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    scale = (hi - lo) / 65533.0
    return {"dtype": "int16", "scale_factor": scale, "add_offset": lo + 32766.0 * scale,
            "_FillValue": np.int16(-32767), "missing_value": np.int16(-32767)}


def write_cds_legacy(truth: xr.DataArray, folder: Path, *, expver: bool = False) -> list[Path]:
    """Legacy-CDS netCDF-3 (64-bit offset): a pressure-level and a single-level file.

    ``time`` int32 hours since 1900 (gregorian), ``level`` int32 millibars, latitude/longitude
    float32 (90 -> -90), int16 packed data. With ``expver`` the pressure-level file gains an
    ``expver`` dimension (1: ERA5 for the first times, 5: ERA5T for the last), as CDS wrote
    files spanning the ERA5/ERA5T boundary.
    """
    folder.mkdir(parents=True, exist_ok=True)
    coords = {"longitude": ("longitude", truth["lon"].values.astype(np.float32),
                            {"units": "degrees_east", "long_name": "longitude"}),
              "latitude": ("latitude", truth["lat"].values.astype(np.float32),
                           {"units": "degrees_north", "long_name": "latitude"}),
              "time": ("time", _encoded(truth["time"].values, "h", 1900, np.int32),
                       {"units": "hours since 1900-01-01 00:00:00.0", "long_name": "time",
                        "calendar": "gregorian"})}
    paths = []
    for kind, names in (("pressure", PRESSURE), ("single", SURFACE)):
        data, encoding = {}, {}
        for short in names:
            ch = CHANNELS[f"{short}500" if kind == "pressure" else short]
            values = (_level_cube(truth, short, LEVELS) if kind == "pressure"
                      else truth.sel(channel=short).values).astype(np.float64)
            dims = ("time", "level", "latitude", "longitude") if kind == "pressure" else (
                "time", "latitude", "longitude")
            if expver and kind == "pressure":
                era5, era5t = values.copy(), values.copy()
                era5[-1], era5t[:-1] = np.nan, np.nan
                values, dims = np.stack([era5, era5t], axis=1), (dims[0], "expver", *dims[1:])
            attrs = {k: v for k, v in _grib_attrs(ch, short).items() if not k.startswith("GRIB")}
            data[short] = (dims, values, attrs)
            encoding[short] = _packing(values)
        ds = xr.Dataset(data, coords=coords, attrs={
            "Conventions": "CF-1.6",
            "history": "2023-06-01 10:00:00 GMT by grib_to_netcdf-2.25.1: /opt/ecmwf/mars-client"})
        if kind == "pressure":
            ds = ds.assign_coords(level=("level", np.array(LEVELS, dtype=np.int32),
                                         {"units": "millibars", "long_name": "pressure_level"}))
            if expver:
                ds = ds.assign_coords(expver=("expver", np.array([1, 5], dtype=np.int32),
                                              {"long_name": "expver"}))
        path = folder / f"adaptor.mars.internal-{kind}.nc"
        ds.to_netcdf(path, format="NETCDF3_64BIT", engine="netcdf4", encoding=encoding)
        paths.append(path)
    return paths
