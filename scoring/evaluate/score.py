"""Score an ensemble store against a truth source into a Zarr store of scores.

:func:`score_ensemble` opens the ensemble lazily (:mod:`hens.scoring.evaluate.store`), reads
the verifying truth at every valid time init + lead (:mod:`hens.scoring.evaluate.truth`) and
computes, one (channel, block of leads) at a time with dask tasks, the scores of
:data:`hens.scoring.evaluate.scorecard.VARIABLES`, all over ``(channel, lead_time, ...)``:

* ensemble-mean RMSE and MAE, spread, spread-skill ratio, standard and fair CRPS, and
  persistence RMSE / MAE (the analysis at init as the forecast; its MAE is also its CRPS);
* rank histogram (relative frequencies over M + 1 ranks), outlier fraction (expected
  2 / (M + 1));
* for ``y > climate quantile`` thresholds (``threshold`` = quantile level): Brier score
  (standard, fair, skill vs the climatological probability), observed frequency, ROC area,
  reliability table over ``probability_bin``;
* EFI means and the EFI map of the first initial time, SOT means -- against the analysis
  climate standing in for the model climate (see :mod:`hens.scoring.evaluate.truth`);
* spectra over total ``wavenumber``: mean member spectrum (over a balanced sample of up to
  64 members, :meth:`~hens.scoring.evaluate.store.EnsembleStore.spectrum_sample`), ensemble-mean spectrum, truth;
* best-member MAE and outlier fraction of nested balanced sub-ensembles (``ensemble_size``).

Aggregation: per lead time, cases are pooled over initial times and cells with the grid's
area weights (``weights`` attribute); squared quantities are averaged over initial times
after the spatial mean and before the root. Memory: one block's task graph at a time (blocks
of whole stored lead chunks, their truth under
:data:`~hens.scoring.evaluate.store.BLOCK_BYTES`; :mod:`hens.scoring.evaluate.tasks`), each task
holding all members over a latitude band (:data:`~hens.scoring.evaluate.store.BAND_BYTES`).

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
from hens.forecast.errors import ConfigError, DataError, GridMismatch, OutputExists
from hens.forecast.sources import SourcePath
from hens.forecast.store_check import reading
from hens.scoring.evaluate.cluster import check_cluster, compute_on
from hens.scoring.evaluate.partials import (
    SIGMA_BINS,
    SIGMA_LEVELS,
    PieceOptions,
)
from hens.scoring.evaluate.scorecard import ONE, SAME, VARIABLES
from hens.scoring.evaluate.store import EnsembleStore, open_ensemble
from hens.scoring.evaluate.subsets import DRAWS, subset_plan
from hens.scoring.evaluate.tasks import score_block
from hens.scoring.evaluate.truth import Verification
from hens.scoring.tails import expected_max_sigma, expected_outlier_fraction
from hens.scoring.types import Incomplete

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


class _Writer:
    """The scores store, declared from the first block of each variable and filled by block.

    Each output array is ``(channel, lead_time, *extra)``, chunked by (1 channel, one lead
    block), so every block is written as whole chunks (no read-modify-write) and nothing but
    the block in hand is held in memory.
    """

    def __init__(self, path: Path, store: EnsembleStore, coords: dict[str, Any], attrs: dict[str, Any]) -> None:
        self.path, self.store, self.coords, self.attrs = path, store, coords, attrs
        self.declared: set[str] = set()
        self.block = len(range(*store.lead_blocks()[0].indices(store.lead_times.size)))
        xr.Dataset(coords=self._coords(("channel", "lead_time")), attrs=attrs).to_zarr(
            path, mode="w", zarr_format=2, consolidated=False,
            encoding={"lead_time": {"units": "hours", "dtype": "int64"}})

    def _coords(self, dims: tuple[str, ...]) -> dict[str, Any]:
        return {k: v for k, v in self.coords.items() if v[0] in dims}

    def _declare(self, scores: dict[str, np.ndarray]) -> None:
        import dask.array as dsa

        new = [name for name in scores if name not in self.declared]
        if not new:
            return
        m, n_ch, n_lead = self.store.size, len(self.store.channels), self.store.lead_times.size
        data_vars = {}
        for name in new:
            extra = scores[name].shape[1:]
            dtype = np.float32 if name == "efi_map" else np.float64
            data = dsa.full((n_ch, n_lead, *extra), np.nan, dtype=dtype, chunks=(1, self.block, *extra))
            data_vars[name] = (("channel", "lead_time", *VARIABLES[name].dims), data,
                               _variable_attrs(name, m, self.attrs["weights"]))
        dims = {d for v in data_vars.values() for d in v[0]}
        ds = xr.Dataset(data_vars, coords={k: v for k, v in self.coords.items()
                                           if v[0] in dims and k not in ("channel", "lead_time")},
                        attrs=self.attrs)  # mode "a" replaces the group's attributes
        ds.to_zarr(self.path, mode="a", compute=False, zarr_format=2, consolidated=False)
        self.declared.update(new)

    def write(self, channel: int, leads: slice, scores: dict[str, np.ndarray]) -> None:
        import zarr

        self._declare(scores)
        group = zarr.open_group(self.path, mode="r+", zarr_format=2)
        for name, value in scores.items():
            group[name][channel, leads] = value.astype(group[name].dtype)

    def finish(self, extra: dict[str, Any]) -> None:
        """Reference variables without (channel, lead_time), then consolidated metadata."""
        import zarr

        xr.Dataset(extra, coords={k: v for k, v in self.coords.items()
                                  if any(v[0] in e[0] for e in extra.values())}, attrs=self.attrs).to_zarr(
            self.path, mode="a", zarr_format=2, consolidated=False)
        zarr.consolidate_metadata(self.path)


def _coords(store: EnsembleStore, levels: tuple[float, ...], sizes: np.ndarray) -> dict[str, Any]:
    """Coordinates of every dim a score may use (each written with the first variable using it)."""
    m = store.size
    if m <= 20:
        lower = upper = np.arange(m + 1) / m
    else:
        edges = np.linspace(0.0, 1.0, 11)
        lower, upper = edges[:-1], edges[1:]
    lmax = store.grid.nlat if store.grid.sht_grid == "legendre-gauss" else (store.grid.nlat + 1) // 2
    return {
        "channel": ("channel", list(store.channels)),
        "channel_units": ("channel", [get_channel(c).units for c in store.channels]),
        "lead_time": ("lead_time", store.lead_times, {"long_name": "lead time"}),
        "lat": ("lat", store.dataset["lat"].values),
        "lon": ("lon", store.dataset["lon"].values),
        "rank": ("rank", np.arange(m + 1)),
        "threshold": ("threshold", np.asarray(levels), {"long_name": "climate quantile level"}),
        "probability_bin": ("probability_bin", np.arange(lower.size)),
        "bin_lower": ("probability_bin", lower),
        "bin_upper": ("probability_bin", upper),
        "ensemble_size": ("ensemble_size", sizes),
        "sigma": ("sigma", np.asarray(SIGMA_LEVELS), {"long_name": "k of |y - xbar| > k s", "units": "1"}),
        "sigma_bin": ("sigma_bin", SIGMA_BINS, {"long_name": "lower edge of the max-sigma bin (last open)",
                                                "units": "1"}),
        "wavenumber": ("wavenumber", np.arange(lmax)),
    }


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


def _attrs(
    store: EnsembleStore, verification: Verification, notes: list[str], *,
    scheduler: str | None, workers: int | None, draws: int,
) -> dict[str, Any]:
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
        "expected_max_sigma_full": expected_max_sigma(store.size, tail="both"),
        "subsets": f"{draws} random draws of balanced (checkpoint, pair) units (hens.scoring.evaluate.subsets, "
        "seed 0); scores are the mean over draws, *_spread their standard deviation",
        "scheduler": scheduler or (f"LocalCluster, {workers} processes" if workers else "dask threads"),
        "grid": store.grid.spec,
        "hens_version": __version__,
        "notes": "; ".join(notes) or "none",
    }


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
    scheduler: str | None = None,
    workers: int | None = None,
    draws: int = DRAWS,
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
    scheduler
        Address of a running ``dask.distributed`` scheduler (``tcp://host:8786``) whose
        workers compute the tasks; they must read the same paths.
    workers
        Start a ``LocalCluster`` of this many worker processes instead of dask's threads.
        Every choice gives the same scores bit for bit (fixed summation tree).
    draws
        Random balanced draws per sub-ensemble size (:mod:`hens.scoring.evaluate.subsets`).

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
    check_cluster(scheduler, workers)
    store = open_ensemble(forecast_path, incomplete=incomplete)
    verification = Verification(truth_path, climatology=climatology)
    verification.check(store)
    notes = list(verification.notes)
    try:
        spectra = bool(store.grid.sht_grid)
    except GridMismatch as err:  # no SHT on this grid
        notes.append(f"spectra skipped: {err}")
        spectra = False
    blocks = store.lead_blocks()
    members = store.dataset.isel(member=store.members)
    plan = subset_plan(members["checkpoint"].values, members["pair"].values, draws=draws)
    sample = store.spectrum_sample() if spectra else None
    p = verification.quantile_levels()
    options = PieceOptions(
        members=store.size, levels=levels,
        threshold_index=tuple(_level_index(p, level) for level in levels) if p is not None else (),
        quantile_p=p, units=plan.units, orders=plan.orders, counts=plan.counts,
    )
    attrs = _attrs(store, verification, notes, scheduler=scheduler, workers=workers, draws=draws)
    if sample is not None:
        attrs["spectrum_members_sample"] = (
            f"{sample.size} of {store.size} members: the stored batches evenly spaced over the ensemble "
            "(hens.scoring.evaluate.store.EnsembleStore.spectrum_sample)")
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        writer = _Writer(tmp, store, _coords(store, levels, plan.sizes), attrs)
        with compute_on(scheduler, workers) as compute, rich.progress.Progress(
            console=Console(stderr=True), disable=not progress
        ) as bar:
            task = bar.add_task("scoring", total=len(store.channels) * len(blocks))
            for c, channel in enumerate(store.channels):
                for leads in blocks:
                    hours = store.lead_times[leads] / np.timedelta64(1, "h")
                    bar.update(task, description=f"score {channel} {hours[0]:g}..{hours[-1]:g} h")
                    with reading(store.path, channel, lead_time=leads):  # a damaged chunk: one line naming it
                        scores = score_block(store, verification, channel, leads, options=options,
                                             sample=sample, compute=compute)
                    writer.write(c, leads, scores)
                    bar.advance(task)
        writer.finish(_references(plan.sizes))
        if out.exists():
            _claim(out, overwrite=overwrite)
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _level_index(p: np.ndarray, level: float) -> int:
    i = int(np.argmin(np.abs(p - level)))
    if abs(p[i] - level) > 1e-6:
        raise DataError(f"the climatology has no {level:g} quantile; use thresholds among its "
                        f"quantiles ({p[0]:g}, {p[1]:g}, ..., {p[-1]:g})")
    return i


def _references(sizes: np.ndarray) -> dict[str, Any]:
    """Expectations of a calibrated (Gaussian) ensemble beside the scores."""
    from scipy.stats import norm

    return {
        "expected_outlier_fraction": (("ensemble_size",), 2.0 / (sizes + 1.0),
                                      {"long_name": "2 / (M + 1)", "units": "1"}),
        "expected_sigma_exceedance": (("sigma",), 2.0 * norm.sf(np.asarray(SIGMA_LEVELS)),
                                      {"long_name": "2 (1 - Phi(k)): Gaussian P(|Z| > k)", "units": "1"}),
        "expected_max_sigma": (("ensemble_size",), np.array([expected_max_sigma(int(n), tail="both") for n in sizes]),
                               {"long_name": "E max_m |Z_m| of M Gaussian members", "units": "1"}),
    }
