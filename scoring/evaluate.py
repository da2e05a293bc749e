"""Score an ensemble store against a truth source into a Zarr store of scores.

:func:`score_ensemble` opens the ensemble lazily (:mod:`hens.scoring.ensemble_store`), reads
the verifying truth at every valid time init + lead (:mod:`hens.scoring.verification`) and
computes, one (channel, block of leads) at a time with dask, the scores of
:data:`hens.scoring.scorecard.VARIABLES`, all over ``(channel, lead_time, ...)``:

* ensemble-mean RMSE and MAE, spread, spread-skill ratio, standard and fair CRPS, and
  persistence RMSE / MAE (the analysis at init as the forecast; its MAE is also its CRPS);
* rank histogram (relative frequencies over M + 1 ranks), outlier fraction (expected
  2 / (M + 1));
* for ``y > climate quantile`` thresholds (``threshold`` = quantile level): Brier score
  (standard, fair, skill vs the climatological probability), observed frequency, ROC area,
  reliability table over ``probability_bin``;
* EFI means and the EFI map of the first initial time, SOT means -- against the analysis
  climate standing in for the model climate (see :mod:`hens.scoring.verification`);
* spectra over total ``wavenumber``: mean member spectrum, ensemble-mean spectrum, truth;
* best-member MAE and outlier fraction of nested balanced sub-ensembles (``ensemble_size``).

Aggregation: per lead time, cases are pooled over initial times and cells with the grid's
area weights (``weights`` attribute); squared quantities are averaged over initial times
after the spatial mean and before the root. Memory: one block's dask graph at a time (blocks
of whole stored lead chunks, their truth under
:data:`~hens.scoring.ensemble_store.BLOCK_BYTES`), dask chunks of all members over a latitude
band (:data:`~hens.scoring.ensemble_store.BAND_BYTES`).

Members: only members whose ``completed`` flag is set count; by default a store with any
other member is refused (``incomplete="drop"``: score the members completed at every init).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hens.forecast.channels import get_channel
from hens.forecast.errors import ConfigError, GridMismatch, OutputExists
from hens.forecast.sources import SourcePath
from hens.forecast.store_check import reading
from hens.scoring.ensemble_store import (
    EnsembleStore,
    field_block,
    member_block,
    member_subsets,
    open_ensemble,
)
from hens.scoring.scorecard import (
    ONE,
    SAME,
    VARIABLES,
    core_scores,
    extreme_scores,
    spectrum_scores,
    subset_scores,
    threshold_scores,
)
from hens.scoring.tails import expected_outlier_fraction
from hens.scoring.types import Incomplete
from hens.scoring.verification import Verification, thresholds_of

DEFAULT_THRESHOLDS = (0.9, 0.99)
AGGREGATION = (
    "per lead time over init times and cells; area weights over lat; squared quantities "
    "averaged over init times after the spatial mean and before the root"
)
EFI_CLIMATE = (
    "EFI/SOT use the analysis climatology (day-of-year window quantiles of the truth's "
    "statistics store) in place of a model climate from reforecasts: they then include the "
    "model's bias and its drift with lead time"
)


def _is_zarr(path: Path) -> bool:
    return any((path / name).exists() for name in (".zgroup", ".zmetadata", "zarr.json"))


def _claim(out: Path, *, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise OutputExists(f"{out} exists; pass --overwrite to replace it")
    if out.exists() and not _is_zarr(out):
        raise OutputExists(f"{out} exists and is not a Zarr store; refusing to replace it")


def _check_thresholds(thresholds: tuple[float, ...]) -> tuple[float, ...]:
    levels = tuple(float(t) for t in thresholds)
    if not levels or any(not 0.0 < t < 1.0 for t in levels) or len(set(levels)) != len(levels):
        raise ConfigError(
            f"thresholds {levels} must be distinct climate quantile levels in (0, 1), e.g. 0.9 and 0.99"
        )
    return levels


class _Table:
    """Output arrays ``(channel, lead_time, *extra)`` declared on first use, filled by block."""

    def __init__(self, store: EnsembleStore) -> None:
        self.store = store
        self.arrays: dict[str, np.ndarray] = {}
        self.coords: dict[str, Any] = {}

    def fill(self, name: str, channel: int, leads: slice, value: xr.DataArray) -> None:
        extra = VARIABLES[name].dims
        value = value.transpose("lead_time", *extra)
        if name not in self.arrays:
            shape = (len(self.store.channels), self.store.lead_times.size, *value.shape[1:])
            self.arrays[name] = np.full(shape, np.nan)
            for d in extra:
                for cname, coord in value.coords.items():
                    if coord.dims == (d,):
                        self.coords[str(cname)] = (d, coord.values)
        self.arrays[name][channel, leads] = value.values

    def dataset(self, levels: tuple[float, ...], sizes: np.ndarray, attrs: dict) -> xr.Dataset:
        """The scores with coordinates and attributes (coords of unused dims left out)."""
        store, m = self.store, self.store.size
        data_vars = {
            name: (("channel", "lead_time", *VARIABLES[name].dims), arr,
                   _variable_attrs(name, m, attrs["weights"]))
            for name, arr in self.arrays.items()
        }
        data_vars["expected_outlier_fraction"] = (
            ("ensemble_size",), 2.0 / (sizes + 1.0), {"long_name": "2 / (M + 1)", "units": "1"}
        )
        coords = {
            "channel": ("channel", list(store.channels)),
            "channel_units": ("channel", [get_channel(c).units for c in store.channels]),
            "lead_time": ("lead_time", store.lead_times, {"long_name": "lead time"}),
            "lat": ("lat", store.dataset["lat"].values),
            "lon": ("lon", store.dataset["lon"].values),
            "rank": ("rank", np.arange(m + 1)),
            "threshold": ("threshold", np.asarray(levels), {"long_name": "climate quantile level"}),
            "ensemble_size": ("ensemble_size", sizes),
            **self.coords,
        }
        used = {d for dims, *_ in data_vars.values() for d in dims}
        coords = {k: v for k, v in coords.items() if v[0] in used}
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _variable_attrs(name: str, m: int, weights: str) -> dict[str, Any]:
    var = VARIABLES[name]
    attrs: dict[str, Any] = {"long_name": var.long_name, "ensemble_size": m, "weights": weights}
    if var.estimator:
        attrs["estimator"] = var.estimator
    if var.units == ONE:
        attrs["units"] = "1"
    else:
        squared = "(channel_units)^2 sr"
        attrs["units_per_channel"] = "channel_units" if var.units == SAME else squared
    return attrs


def _attrs(store: EnsembleStore, verification: Verification, notes: list[str]) -> dict[str, Any]:
    from hens import __version__

    inits = [str(t)[:16] for t in (store.init_times[0], store.init_times[-1])]
    return {
        "title": "hens ensemble scores",
        "forecast": str(store.path),
        "truth": verification.source.name,
        "climatology": verification.climatology_path or "none",
        "ensemble_size": store.size,
        "members_dropped_incomplete": store.dropped,
        "n_init_times": int(store.init_times.size),
        "first_init_time": inits[0],
        "last_init_time": inits[1],
        "weights": f"{store.grid.kind} quadrature, {store.grid.nlat} latitudes",
        "aggregation": AGGREGATION,
        "efi_model_climate": EFI_CLIMATE,
        "threshold_events": "y > climatology quantile at level `threshold` of the valid time's "
        "day-of-year window",
        "expected_outlier_fraction_full": expected_outlier_fraction(store.size),
        "grid": store.grid.spec,
        "hens_version": __version__,
        "notes": "; ".join(notes) or "none",
    }


def _score_block(
    store: EnsembleStore,
    verification: Verification,
    channel: str,
    leads: slice,
    *,
    levels: tuple[float, ...],
    subsets: list[tuple[int, np.ndarray]],
    spectra: bool,
) -> dict[str, xr.DataArray]:
    """Every score of one (channel, lead block), computed in one dask pass."""
    import dask

    fc = member_block(store, channel, leads)
    truth, persistence = verification.fields(channel, fc)
    band = {"init_time": 1, "lead_time": 1, "lat": store.band(), "lon": -1}
    truth_c = truth.chunk(band)
    persistence_c = persistence.chunk({k: v for k, v in band.items() if k != "lead_time"})
    lazy = core_scores(fc, truth_c, persistence_c)
    lazy.update(subset_scores(fc, truth_c, subsets))
    climate = verification.climate(channel, fc)
    if climate is not None:
        lazy.update(threshold_scores(fc, truth_c, thresholds_of(climate, levels)))
        lazy.update(extreme_scores(fc, climate))
    if spectra:
        lazy.update(spectrum_scores(field_block(store, channel, leads), truth))
    (values,) = dask.compute(lazy)
    return values


def score_ensemble(
    forecast_path: str | Path,
    truth_path: SourcePath,
    *,
    out: str | Path,
    climatology: str | Path | None = None,
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS,
    incomplete: Incomplete = "raise",
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Score an ensemble store against a truth and write the scores as a Zarr store.

    Parameters
    ----------
    forecast_path
        A store written by ``hens forecast``.
    truth_path
        Anything :func:`hens.forecast.open_source` reads, holding every channel at every
        initial and valid time.
    out
        Zarr store of scores (module docstring); written beside under a temporary name and
        renamed when complete.
    climatology
        Statistics store for thresholds and EFI/SOT (default: the one beside the truth;
        without one those scores are skipped and the ``notes`` attribute says so).
    thresholds
        Climate quantile levels of the exceedance events ``y > Q_clim(level)``.
    incomplete
        ``"raise"``: refuse a store with members not completed; ``"drop"``: score the
        members completed at every initial time.
    overwrite
        Replace an existing scores store.
    progress
        Rich progress bar (stderr) over the (channel, lead block) pieces.

    Returns
    -------
    Path of the scores store.

    Raises
    ------
    OutputExists
        ``out`` exists and ``overwrite`` is false (or ``out`` is not a Zarr store).
    DataError, GridMismatch
        Not a hens ensemble, incomplete members, truth lacking a channel or time, another
        grid (one line each, before any scoring).
    """
    import rich.progress
    from rich.console import Console

    out = Path(out)
    _claim(out, overwrite=overwrite)
    levels = _check_thresholds(tuple(thresholds))
    store = open_ensemble(forecast_path, incomplete=incomplete)
    verification = Verification(truth_path, climatology=climatology)
    verification.check(store)
    notes = list(verification.notes)
    try:
        spectra = bool(store.grid.sht_grid)
    except GridMismatch as err:  # no SHT on this grid
        notes.append(f"spectra skipped: {err}")
        spectra = False
    table = _Table(store)
    blocks = store.lead_blocks()
    subsets = member_subsets(member_block(store, store.channels[0], blocks[0]))
    options = {"levels": levels, "subsets": subsets, "spectra": spectra}
    with rich.progress.Progress(console=Console(stderr=True), disable=not progress) as bar:
        task = bar.add_task("scoring", total=len(store.channels) * len(blocks))
        for c, channel in enumerate(store.channels):
            for leads in blocks:
                hours = store.lead_times[leads] / np.timedelta64(1, "h")
                bar.update(task, description=f"score {channel} {hours[0]:g}..{hours[-1]:g} h")
                with reading(store.path, channel, lead_time=leads):  # a damaged chunk: one line naming it
                    scores = _score_block(store, verification, channel, leads, **options)
                for name, value in scores.items():
                    table.fill(name, c, leads, value)
                bar.advance(task)
    sizes = np.array([n for n, _ in subsets])
    ds = table.dataset(levels, sizes, _attrs(store, verification, notes))
    return _write(ds, out, overwrite=overwrite)


def _write(ds: xr.Dataset, out: Path, *, overwrite: bool) -> Path:
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        ds.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True,
                   encoding={"lead_time": {"units": "hours", "dtype": "int64"}})
        if out.exists():
            _claim(out, overwrite=overwrite)
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
