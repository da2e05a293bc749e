"""The CF-1.11 metadata of the product files: variable and global attributes, coordinates
and netCDF encoding (the format is described in :mod:`hens.pipelines.products`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hens.forecast.channels import get_channel
from hens.forecast.grids import Grid
from hens.forecast.store_reader import CheckedStore
from hens.pipelines.products.inputs import hour_label

CONVENTIONS = "CF-1.11"
#: degrees of freedom of the spread: the unbiased sample variance, as ``hens score``
DDOF = 1
_TIME_UNITS = "hours since 1970-01-01 00:00:00"
_NO_LEAP_SECONDS = "leap_seconds: none"  # CF 1.11: numpy datetimes count no leap seconds
#: the scalar coordinate of the members the statistics are over, and its bounds
REALIZATION, REALIZATION_BOUNDS = "realization", "realization_bnds"
EFI_CLIMATE = (
    "EFI and SOT compare the members with the analysis climatology (quantiles of the valid "
    "time's day-of-year window) standing in for a model climate from reforecasts, so they "
    "include the model's bias and its drift with lead time"
)


def variable_attrs(channel: str, size: int) -> dict[str, dict[str, Any]]:
    """CF attributes of each product of ``channel`` from ``size`` members."""
    same = get_channel(channel).attrs()  # units, standard_name, long_name (level: a coordinate)
    text = same["long_name"]
    # a spread of temperatures is a temperature difference (CF 1.11 units_metadata)
    spread_metadata = {"units_metadata": "temperature: difference"} if "units_metadata" in same else {}
    index = {"units": "1", "comment": EFI_CLIMATE}
    sot = "(Q_f({0}) - Q_c({1})) / (Q_c({1}) - Q_c({0})), clipped to [-10, 10]"
    return {
        "mean": {**same, "long_name": f"ensemble mean of {text}",
                 "cell_methods": "realization: mean"},
        "spread": {**same, "long_name": f"ensemble standard deviation of {text}",
                   **spread_metadata, "cell_methods": "realization: standard_deviation", "ddof": DDOF,
                   "comment": f"sqrt(sum (x_m - mean)^2 / (M - {DDOF})), M = {size} members"},
        "quantile": {**same, "long_name": f"ensemble quantiles of {text}",
                     "comment": "numpy 'linear' quantiles over the members"},
        "threshold": {**same, "long_name": f"climatological threshold of {text}",
                      "comment": "climatology quantile at level threshold_quantile of the "
                                 "valid time's day-of-year window, per grid point"},
        "probability": {"units": "1", "comment": "fraction of members > threshold",
                        "ancillary_variables": f"{channel}_threshold",
                        "long_name": f"probability of {text} above the climatological threshold"},
        "efi": {**index, "long_name": f"Extreme Forecast Index of {text}",
                "estimator": "discrete, linear between climate quantiles (earthkit-meteo)"},
        "sot_upper": {**index, "long_name": f"Shift of Tails (upper) of {text}",
                      "estimator": sot.format(90, 99)},
        "sot_lower": {**index, "long_name": f"Shift of Tails (lower) of {text}",
                      "estimator": sot.format(10, 1)},
    }


def _flat(value: Any) -> str | int | float:
    """A netCDF attribute value: numbers and text as they are, anything else JSON text."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    return json.dumps(value, default=str)


def _ranges(index: np.ndarray) -> list[list[int]]:
    """Sorted indices as half-open runs ``[[start, stop], ...]``: short for large ensembles."""
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    return [[int(run[0]), int(run[-1]) + 1] for run in np.split(index, breaks)]


def global_attrs(ens: CheckedStore, i: int, members: np.ndarray, climatology: Path,
                 institution: str) -> dict[str, Any]:
    """CF global attributes of the file of initial time ``i`` from ``members`` (indices), with
    the store's own attributes as ``ensemble_<name>`` (see :mod:`hens.pipelines.products`)."""
    from hens import __version__

    init = hour_label(ens.dataset["init_time"].values[i])
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Conventions": CONVENTIONS,
        "title": f"hens ensemble forecast products, initial time {init}",
        "institution": institution,
        "source": f"hens {__version__} ensemble forecast store {ens.path.name}",
        "history": f"{now} hens {__version__} products of {ens.path.resolve()} (init {init})",
        "references": "EFI: Lalaurette (2003), QJRMS 129, 3037; "
                      "SOT: Zsoter (2006), ECMWF Newsletter 107",
        "forecast_store": str(ens.path.resolve()),
        "climatology": str(climatology.resolve()),
        "ensemble_size": int(members.size),
        "ensemble_members": json.dumps(_ranges(members)),
        "ensemble_members_not_completed": int(ens.completed.shape[1] - members.size),
        "spread_ddof": DDOF,
        "threshold_events": "member > climatology quantile at level threshold_quantile",
        "efi_climate": EFI_CLIMATE,
        # the store's provenance (config, checkpoints and sha256, member layout, version)
        **{f"ensemble_{k}": _flat(v) for k, v in ens.dataset.attrs.items()},
    }


def product_coords(ens: CheckedStore, i: int, members: np.ndarray, channel: str,
                   quantiles: tuple[float, ...], thresholds: tuple[float, ...]) -> dict[str, Any]:
    """CF coordinates of ``channel``'s products in the file of initial time ``i``.

    Besides the dims: the scalar vertical coordinate of the channel's level (registry), and
    a scalar ``realization`` whose bounds span the member indices used, the axis that
    ``cell_methods`` (``realization: mean``) reduced (CF 1.11 sections 7.3 and 7.3.1).
    """
    ds = ens.dataset
    init, leads = ds["init_time"].values[i], ds["lead_time"].values
    vertical = get_channel(channel).vertical()
    return {
        "time": ("time", init + leads,
                 {"standard_name": "time", "long_name": "valid time", "axis": "T",
                  "units_metadata": _NO_LEAP_SECONDS}),
        "forecast_period": ("time", leads,
                            {"standard_name": "forecast_period", "long_name": "lead time"}),
        "forecast_reference_time": ((), init, {"standard_name": "forecast_reference_time",
                                               "long_name": "initial time",
                                               "units_metadata": _NO_LEAP_SECONDS}),
        REALIZATION: ((), 0.5 * (members[0] + members[-1]),
                      {"standard_name": "realization", "units": "1",
                       "long_name": "ensemble member index (the statistics' range of members)",
                       "comment": "members used: global attribute ensemble_members"}),
        REALIZATION_BOUNDS: ("nv", np.array([members[0], members[-1]], dtype=np.float64)),
        **({} if vertical is None else {vertical[0]: ((), vertical[1], vertical[2])}),
        "lat": ("lat", ds["lat"].values, {"units": "degrees_north", "standard_name": "latitude",
                                          "long_name": "latitude", "axis": "Y"}),
        "lon": ("lon", ds["lon"].values, {"units": "degrees_east", "standard_name": "longitude",
                                          "long_name": "longitude", "axis": "X"}),
        "quantile": ("quantile", np.asarray(quantiles),
                     {"long_name": "quantile level over the members", "units": "1"}),
        "threshold_quantile": ("threshold_quantile", np.asarray(thresholds),
                               {"long_name": "climatological quantile level of the threshold",
                                "units": "1"}),
    }


def netcdf_encoding(ds: xr.Dataset, grid: Grid) -> dict[str, dict[str, Any]]:
    """zlib-compressed float32 fields chunked by whole field; CF time units; no fill on coords."""
    enc: dict[str, dict[str, Any]] = {
        name: {"zlib": True, "complevel": 4, "shuffle": True, "dtype": "float32",
               "_FillValue": np.float32(np.nan), "chunksizes": (1,) * (var.ndim - 2) + grid.shape}
        for name, var in ds.data_vars.items()
    }
    for name in ("time", "forecast_reference_time"):
        enc[name] = {"units": _TIME_UNITS, "calendar": "proleptic_gregorian", "dtype": "int64"}
    enc["forecast_period"] = {"units": "hours", "dtype": "int64"}
    for name in ds.coords:
        if name not in enc:  # CF: coordinate variables have no missing values
            enc[name] = {"_FillValue": None}
    enc[REALIZATION]["bounds"] = REALIZATION_BOUNDS
    return enc
