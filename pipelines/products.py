"""``hens products``: CF-1.11 netCDF forecast products from an ensemble store.

One file per initial time, ``OUT/<store stem>_<YYYYMMDDTHH>.nc``, dims ``time`` (valid time),
``lat``, ``lon`` plus ``quantile`` / ``threshold_quantile`` where needed. Per channel ``c``
(hens names, :mod:`hens.forecast.channels`), from the members completed at that initial
time (``completed`` flag of :mod:`hens.forecast.zarr_sink`):

``c_mean``, ``c_spread``
    Ensemble mean and standard deviation over members (ddof = 1), channel units.
``c_quantile(quantile, ...)``
    Ensemble quantiles (numpy "linear"), channel units.
``c_threshold(threshold_quantile, ...)``, ``c_probability(threshold_quantile, ...)``
    Climatological thresholds Q_clim(level) of the valid time's day-of-year window (channel
    units) and the fraction of members above them (units 1; ``ancillary_variables`` names
    the threshold).
``c_efi``, ``c_sot_upper``, ``c_sot_lower``
    Extreme Forecast Index and Shift of Tails (:mod:`hens.scoring.extremes`), units 1.

Scalar coordinates: the channel's level (``plev500``, Pa, or ``height2m``, m, from the channel
registry) and ``realization``, the reduced member axis (bounds: first and last member used).

The climatology is a statistics store (:mod:`hens.forecast.stats`); by default the one beside
the data the ensemble was started from (``hens_config.data`` in the store's attributes). Its
analysis climate stands in for a model climate in EFI/SOT (as in ``hens score``).

Global attributes: CF ``Conventions``, ``title``, ``institution``, ``source``, ``history``;
``ensemble_size`` and ``ensemble_members`` (half-open runs ``[[start, stop], ...]`` of the
member indices used); every attribute of the store as ``ensemble_<name>`` (its
``hens_config``, ``checkpoints`` with sha256, ``batch_partition``, ``hens_version``, ...),
numbers and text as stored, anything else as JSON text.

Work: one (initial time, channel) at a time, read lazily in latitude bands of all members and
written by dask into a temporary file that is renamed when the initial time is complete, so a
failed run never leaves a half-written product. Memory: per dask thread, a few times one
band of all members (:data:`~hens.scoring.ensemble_store.BAND_BYTES` as stored, computed in
float64), plus whole output fields of one lead chunk.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from hens.forecast.channels import CHANNELS, get_channel
from hens.forecast.errors import ConfigError, DataError, OutputExists
from hens.forecast.grids import Grid
from hens.forecast.stats import open_world_stats, stats_path
from hens.forecast.store_check import reading
from hens.forecast.store_reader import global_grid, open_store
from hens.scoring.ensemble_store import BAND_BYTES, COMPLETED, DIMS, MEMBER_COORDS
from hens.scoring.evaluate import DEFAULT_THRESHOLDS

DEFAULT_QUANTILES = (0.1, 0.5, 0.9)
CONVENTIONS = "CF-1.11"
#: degrees of freedom of the spread: the unbiased sample variance, as ``hens score``
DDOF = 1
#: a spread needs two members
MIN_MEMBERS = 2
_YEAR_DAYS = 365.25
_TIME_UNITS = "hours since 1970-01-01 00:00:00"
_NO_LEAP_SECONDS = "leap_seconds: none"  # CF 1.11: numpy datetimes count no leap seconds
#: the scalar coordinate of the members the statistics are over, and its bounds
REALIZATION, REALIZATION_BOUNDS = "realization", "realization_bnds"
_EFI_CLIMATE = (
    "EFI and SOT compare the members with the analysis climatology (quantiles of the valid "
    "time's day-of-year window) standing in for a model climate from reforecasts, so they "
    "include the model's bias and its drift with lead time"
)


@dataclass(frozen=True)
class _Ensemble:
    """An opened, checked ensemble store: fields lazily, completion flags in memory."""

    path: Path
    dataset: xr.Dataset
    channels: tuple[str, ...]
    grid: Grid
    completed: np.ndarray  # (init_time, member) bool


def _not_hens(path: Path, why: str) -> DataError:
    return DataError(f"{path} is not a hens ensemble store ({why}); make one with `hens forecast`")


def _open_ensemble(path: Path) -> _Ensemble:
    """Open ``path`` and check the hens layout and that every init has enough members.

    Unlike scoring, each initial time uses its own completed members, so a member missing
    at one initial time does not remove it from the others.
    """
    if not path.exists():
        raise DataError(f"{path}: no such ensemble store")
    try:
        ds = open_store(path)
    except DataError as err:
        raise _not_hens(path, f"cannot open it as Zarr: {err}") from None
    if COMPLETED not in ds.data_vars or any(c not in ds.coords for c in MEMBER_COORDS):
        raise _not_hens(path, "no `completed` flags or member coordinates")
    held = {str(n) for n, v in ds.data_vars.items() if v.dims == DIMS}
    channels = tuple(c for c in CHANNELS if c in held)  # registry order
    if not channels:
        raise _not_hens(path, f"no hens channel over {', '.join(DIMS)}")
    grid = global_grid(ds, path, "hens products")
    with reading(path, COMPLETED):
        done = np.asarray(ds[COMPLETED].values).astype(bool)
    short = np.flatnonzero(done.sum(axis=1) < MIN_MEMBERS)
    if short.size:
        i = short[0]
        raise DataError(
            f"{path}: {short.size} of {done.shape[0]} initial times have fewer than "
            f"{MIN_MEMBERS} completed members (first {_hour(ds['init_time'].values[i])}: "
            f"{int(done[i].sum())} of {done.shape[1]}); finish the run with "
            "`hens forecast CONFIG --resume`"
        )
    return _Ensemble(path, ds, channels, grid, done)


def _hour(t: np.datetime64) -> str:
    return str(np.datetime_as_string(np.datetime64(t, "h"), unit="h"))


def _default_climatology(ens: _Ensemble) -> Path:
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


def _open_climatology(path: Path, ens: _Ensemble, thresholds: tuple[float, ...]) -> xr.Dataset:
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


def _levels(name: str, values: tuple[float, ...]) -> tuple[float, ...]:
    levels = tuple(sorted(float(v) for v in values))
    if not levels or any(not 0.0 < v < 1.0 for v in levels) or len(set(levels)) != len(levels):
        raise ConfigError(f"--{name} {list(values)}: give distinct levels in (0, 1), e.g. 0.1")
    return levels


def _climate(windows: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
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


def channel_products(
    members: xr.DataArray,
    climate: xr.DataArray,
    *,
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS,
) -> dict[str, xr.DataArray]:
    """Lazy products of one channel (see the module docstring), keyed by suffix.

    Parameters
    ----------
    members
        ``(member, time, lat, lon)``, channel units; NaN in a member makes its cells NaN.
    climate
        Climate quantiles ``(time, quantile, lat, lon)`` with levels 0..1 (101 in hens
        statistics stores), channel units; NaN (a window without data) gives NaN products.
    quantiles, thresholds
        Ensemble quantile levels; climate quantile levels of the exceedance thresholds.

    Returns
    -------
    ``mean``, ``spread`` (ddof = 1), ``quantile`` and ``threshold`` in channel units;
    ``probability`` (fraction of members > threshold), ``efi``, ``sot_upper``,
    ``sot_lower``, dimensionless.
    """
    import hens.scoring as hs
    from hens.scoring.verification import thresholds_of

    threshold = thresholds_of(climate, thresholds).rename(threshold="threshold_quantile")
    above = (members > threshold).mean("member")
    return {
        "mean": members.mean("member"),
        "spread": members.std("member", ddof=DDOF),
        "quantile": members.quantile(list(quantiles), dim="member", method="linear"),
        "threshold": threshold,
        "probability": above.where(threshold.notnull()),
        "efi": hs.efi(members, climate),
        "sot_upper": hs.sot(members, climate, tail="upper"),
        "sot_lower": hs.sot(members, climate, tail="lower"),
    }


def _variable_attrs(channel: str, size: int) -> dict[str, dict[str, Any]]:
    """CF attributes of each product of ``channel`` from ``size`` members."""
    same = get_channel(channel).attrs()  # units, standard_name, long_name (level: a coordinate)
    text = same["long_name"]
    # a spread of temperatures is a temperature difference (CF 1.11 units_metadata)
    spread_metadata = {"units_metadata": "temperature: difference"} if "units_metadata" in same else {}
    index = {"units": "1", "comment": _EFI_CLIMATE}
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


def _global_attrs(ens: _Ensemble, i: int, members: np.ndarray, climatology: Path,
                  institution: str) -> dict[str, Any]:
    from hens import __version__

    init = _hour(ens.dataset["init_time"].values[i])
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
        "efi_climate": _EFI_CLIMATE,
        # the store's provenance (config, checkpoints and sha256, member layout, version)
        **{f"ensemble_{k}": _flat(v) for k, v in ens.dataset.attrs.items()},
    }


def _members(ens: _Ensemble, channel: str, i: int, members: np.ndarray) -> xr.DataArray:
    """``(member, time, lat, lon)`` float64 of one init, lazily in latitude bands of all
    members and whole stored lead chunks (each stored chunk is read once per band)."""
    lead_chunk = max(1, int(ens.dataset.attrs.get("lead_chunk", 1)))
    per_row = ens.completed.shape[1] * lead_chunk * ens.grid.nlon * 4  # read before selecting
    band = int(max(1, min(ens.grid.nlat, BAND_BYTES // per_row)))
    chunks = {"init_time": 1, "member": -1, "lead_time": lead_chunk, "lat": band, "lon": -1}
    da = open_store(ens.path, chunks=chunks)[channel]
    da = da.isel(init_time=i, member=members).chunk({"member": -1})
    init, leads = da["init_time"].values, da["lead_time"].values
    da = da.drop_vars([c for c in da.coords if c not in ("lat", "lon", "lead_time")])
    da = da.rename(lead_time="time").assign_coords(time=init + leads)
    return da.astype(np.float64)


def _coords(ens: _Ensemble, i: int, members: np.ndarray, channel: str,
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


def _encoding(ds: xr.Dataset, grid: Grid) -> dict[str, dict[str, Any]]:
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


def _channel_dataset(ens: _Ensemble, stats: xr.Dataset, i: int, members: np.ndarray,
                     channel: str, quantiles: tuple[float, ...],
                     thresholds: tuple[float, ...]) -> xr.Dataset:
    """The lazy products of one channel at initial time ``i``, with CF coordinates."""
    x = _members(ens, channel, i, members)
    windows = stats["climatology_quantiles"].sel(channel=channel, drop=True)
    climate = _climate(windows, x).chunk(
        {"time": x.chunksizes["time"], "quantile": -1, "lat": x.chunksizes["lat"], "lon": -1})
    products = channel_products(x, climate, quantiles=quantiles, thresholds=thresholds)
    attrs = _variable_attrs(channel, members.size)
    data_vars = {}
    for key, value in products.items():
        # CF order: dims other than T, Z, Y, X first
        dims = (*[d for d in ("quantile", "threshold_quantile") if d in value.dims],
                "time", "lat", "lon")
        # whole fields per dask chunk: each compressed netCDF chunk is then written once
        data = value.transpose(*dims).chunk({"lat": -1}).data
        data_vars[f"{channel}_{key}"] = (dims, data, attrs[key])
    coords = _coords(ens, i, members, channel, quantiles, thresholds)
    # each field names its auxiliary and scalar coordinates: xarray would leave out
    # `realization` (the name of its bounds contains it)
    scalars = " ".join(sorted(n for n, (dims, *_) in coords.items()
                              if n not in dims and n != REALIZATION_BOUNDS))
    for _dims, _data, var_attrs in data_vars.values():
        var_attrs["coordinates"] = scalars
    ds = xr.Dataset(data_vars, coords=coords)
    # xarray finds bounds in a variable's own encoding (not in to_netcdf's): else it lists
    # realization_bnds in a global `coordinates` attribute
    ds[REALIZATION].encoding["bounds"] = REALIZATION_BOUNDS
    return ds


def _targets(ens: _Ensemble, out: Path) -> list[Path]:
    """The file of each initial time: ``out/<ens stem>_<YYYYMMDDTHH>.nc``."""
    stem = ens.path.name.removesuffix(".zarr")
    inits = ens.dataset["init_time"].values
    return [out / f"{stem}_{_hour(t).replace('-', '')}.nc" for t in inits]


def _check_outputs(out: Path, targets: list[Path], *, overwrite: bool) -> None:
    """Refuse existing files unless ``overwrite``, and anything but files and folders always."""
    if out.exists() and not out.is_dir():
        raise OutputExists(f"{out} exists and is not a folder")
    existing = [p for p in targets if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputExists(f"{existing[0]} exists{more}; pass --overwrite to replace it")
    odd = [p for p in existing if not p.is_file()]
    if odd:
        raise OutputExists(f"{odd[0]} exists and is not a file; refusing to replace it")


def _write(ds: xr.Dataset, tmp: Path, *, append: bool, ens: _Ensemble) -> None:
    ds.to_netcdf(tmp, mode="a" if append else "w", engine="netcdf4", format="NETCDF4",
                 encoding=_encoding(ds, ens.grid))


def write_products(
    ens: str | Path,
    out: str | Path,
    *,
    climatology: str | Path | None = None,
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS,
    institution: str = "unknown",
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Write one CF-1.11 netCDF file of forecast products per initial time of ``ens``.

    Parameters
    ----------
    ens
        Ensemble store written by ``hens forecast``.
    out
        Folder for the files (created); ``<ens stem>_<YYYYMMDDTHH>.nc`` per initial time.
    climatology
        Statistics store (or the data store beside it) for thresholds and EFI/SOT; default:
        the one beside the data recorded in the store's ``hens_config``.
    quantiles
        Ensemble quantile levels in (0, 1).
    thresholds
        Climatological quantile levels in (0, 1) of the exceedance thresholds; must be
        among the statistics store's quantiles (0.00, 0.01, ..., 1.00).
    institution
        CF ``institution`` attribute.
    overwrite
        Replace existing files (otherwise any existing one refuses the whole run).
    progress
        Rich progress bar on stderr over (initial time, channel).

    Returns
    -------
    The files written, in initial-time order. Fields are float32: mean, spread (ddof = 1),
    quantiles and thresholds in the channel's units (e.g. m2 s-2 for z500, K for t2m);
    probabilities, EFI and SOT dimensionless (units "1"); ``forecast_period`` in hours,
    ``time`` and ``forecast_reference_time`` in hours since 1970-01-01.

    Raises
    ------
    OutputExists
        A file exists and ``overwrite`` is false (nothing is written), or is not a file.
    DataError, GridMismatch, ConfigError
        Missing or unreadable store or climatology, an initial time with fewer than 2
        completed members, bad levels (one line each, before any file is written).
    """
    import rich.progress
    from rich.console import Console

    out = Path(out)
    quantiles = _levels("quantile", tuple(quantiles))
    thresholds = _levels("threshold", tuple(thresholds))
    store = _open_ensemble(Path(ens))
    targets = _targets(store, out)
    _check_outputs(out, targets, overwrite=overwrite)
    clim_path = stats_path(climatology) if climatology is not None else _default_climatology(store)
    stats = _open_climatology(clim_path, store, thresholds)
    out.mkdir(parents=True, exist_ok=True)
    with rich.progress.Progress(console=Console(stderr=True), disable=not progress) as bar:
        task = bar.add_task("products", total=len(targets) * len(store.channels))
        for i, target in enumerate(targets):
            members = np.flatnonzero(store.completed[i])
            tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
            try:
                for k, channel in enumerate(store.channels):
                    bar.update(task, description=f"products {target.stem} {channel}")
                    # the fields are read lazily, inside the netCDF write: a damaged chunk is one line naming it
                    with reading(store.path, channel, init_time=i):
                        ds = _channel_dataset(store, stats, i, members, channel, quantiles, thresholds)
                        if k == 0:
                            ds.attrs = _global_attrs(store, i, members, clim_path, institution)
                        _write(ds, tmp, append=k > 0, ens=store)
                    bar.advance(task)
                tmp.replace(target)  # atomic: a file is either complete or absent
            finally:
                tmp.unlink(missing_ok=True)
    return targets
