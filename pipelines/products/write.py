"""``hens products``' work: the products of each (initial time, channel), written per initial
time into a temporary netCDF file that is renamed when complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from hens.forecast.errors import ConfigError, OutputExists
from hens.forecast.stats import stats_path
from hens.forecast.store_check import reading
from hens.forecast.store_reader import CheckedStore, open_store
from hens.pipelines.products.cf import (DDOF, REALIZATION, REALIZATION_BOUNDS, global_attrs, netcdf_encoding,
                                        product_coords, variable_attrs)
from hens.pipelines.products.inputs import (climate_at, default_climatology, hour_label,
                                            open_climatology, open_ensemble)
from hens.scoring.evaluate.score import DEFAULT_THRESHOLDS
from hens.scoring.evaluate.store import BAND_BYTES

DEFAULT_QUANTILES = (0.1, 0.5, 0.9)


def _levels(name: str, values: tuple[float, ...]) -> tuple[float, ...]:
    levels = tuple(sorted(float(v) for v in values))
    if not levels or any(not 0.0 < v < 1.0 for v in levels) or len(set(levels)) != len(levels):
        raise ConfigError(f"--{name} {list(values)}: give distinct levels in (0, 1), e.g. 0.1")
    return levels


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
    from hens.scoring.evaluate.truth import thresholds_of

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


def _members(ens: CheckedStore, channel: str, i: int, members: np.ndarray) -> xr.DataArray:
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


def _channel_dataset(ens: CheckedStore, stats: xr.Dataset, i: int, members: np.ndarray,
                     channel: str, quantiles: tuple[float, ...],
                     thresholds: tuple[float, ...]) -> xr.Dataset:
    """The lazy products of one channel at initial time ``i``, with CF coordinates."""
    x = _members(ens, channel, i, members)
    windows = stats["climatology_quantiles"].sel(channel=channel, drop=True)
    climate = climate_at(windows, x).chunk(
        {"time": x.chunksizes["time"], "quantile": -1, "lat": x.chunksizes["lat"], "lon": -1})
    products = channel_products(x, climate, quantiles=quantiles, thresholds=thresholds)
    attrs = variable_attrs(channel, members.size)
    data_vars = {}
    for key, value in products.items():
        # CF order: dims other than T, Z, Y, X first
        dims = (*[d for d in ("quantile", "threshold_quantile") if d in value.dims],
                "time", "lat", "lon")
        # whole fields per dask chunk: each compressed netCDF chunk is then written once
        data = value.transpose(*dims).chunk({"lat": -1}).data
        data_vars[f"{channel}_{key}"] = (dims, data, attrs[key])
    coords = product_coords(ens, i, members, channel, quantiles, thresholds)
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


def _targets(ens: CheckedStore, out: Path) -> list[Path]:
    """The file of each initial time: ``out/<ens stem>_<YYYYMMDDTHH>.nc``."""
    stem = ens.path.name.removesuffix(".zarr")
    inits = ens.dataset["init_time"].values
    return [out / f"{stem}_{hour_label(t).replace('-', '')}.nc" for t in inits]


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


def _write(ds: xr.Dataset, tmp: Path, *, append: bool, ens: CheckedStore) -> None:
    ds.to_netcdf(tmp, mode="a" if append else "w", engine="netcdf4", format="NETCDF4",
                 encoding=netcdf_encoding(ds, ens.grid))


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
    store = open_ensemble(Path(ens))
    targets = _targets(store, out)
    _check_outputs(out, targets, overwrite=overwrite)
    clim_path = stats_path(climatology) if climatology is not None else default_climatology(store)
    stats = open_climatology(clim_path, store, thresholds)
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
                            ds.attrs = global_attrs(store, i, members, clim_path, institution)
                        _write(ds, tmp, append=k > 0, ens=store)
                    bar.advance(task)
                tmp.replace(target)  # atomic: a file is either complete or absent
            finally:
                tmp.unlink(missing_ok=True)
    return targets
