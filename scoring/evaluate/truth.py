"""The verifying data of an ensemble: truth at valid times, persistence, climatology.

For initial time t0 and lead L the truth is the analysis at the valid time t0 + L, read with
:func:`hens.forecast.open_source`; persistence (the analysis at t0 used as the forecast for
every lead) is the reference forecast. Climatological thresholds and the model climate of
EFI/SOT come from the statistics store beside the truth (:mod:`hens.forecast.stats`):
per cell, the 101 quantiles of the +-30-day day-of-year window whose centre is nearest
(circularly) to the valid time's day of year. A window without data gives NaN there, and
those cases are left out of the threshold scores.

Approximation: ECMWF's EFI/SOT compare the ensemble with the *model's* climate (reforecasts
at the same lead). hens has no reforecasts, so the analysis climate stands in for it: the
index then also measures the model's bias and its drift with lead time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from hens.forecast.errors import DataError, GridMismatch
from hens.forecast.sources import SourcePath, open_source
from hens.forecast.stats import open_world_stats, stats_path
from hens.scoring.evaluate.store import EnsembleStore

_YEAR_DAYS = 365.25


def _fmt(t: np.datetime64) -> str:
    return str(np.datetime_as_string(np.datetime64(t, "m"), unit="m"))


class Verification:
    """Truth source and (optional) climatology store for one scoring run.

    Parameters
    ----------
    truth
        Anything :func:`~hens.forecast.open_source` reads.
    climatology
        Statistics store (``hens.forecast.stats`` layout). ``None``: the one beside a single
        truth store if it exists, else no climatology (the threshold scores, EFI and SOT are
        skipped and :attr:`notes` says why).
    """

    def __init__(self, truth: SourcePath, *, climatology: str | Path | None = None) -> None:
        self.source = open_source(truth)
        #: the truth's path(s) as a hashable value: dask tasks reopen the source by it
        self.truth_key: SourcePath = tuple(map(str, truth)) if isinstance(truth, list | tuple) else (
            truth if isinstance(truth, str) else str(truth))
        self.notes: list[str] = []
        self.stats: xr.Dataset | None = None
        self.climatology_path = ""
        if climatology is not None:
            self.stats = open_world_stats(climatology)
            self.climatology_path = str(stats_path(climatology))
        elif isinstance(truth, str | Path) and stats_path(truth).exists():
            self.stats = open_world_stats(truth)
            self.climatology_path = str(stats_path(truth))
        else:
            self.notes.append(
                "no climatology store beside the truth: threshold scores, EFI and SOT skipped "
                "(pass --climatology STATS)"
            )

    def check(self, store: EnsembleStore) -> None:
        """Raise a one-line :class:`DataError` unless every channel and time is in the truth."""
        src = self.source
        missing = [c for c in store.channels if c not in src.channels]
        if missing:
            raise DataError(
                f"truth {src.name} lacks channel {', '.join(missing)} of the forecast; "
                f"it has {', '.join(src.channels)}"
            )
        if src.grid != store.grid:
            raise GridMismatch(
                f"truth {src.name} is on grid {src.grid.spec}, the forecast on {store.grid.spec}; "
                "verify against data on the forecast's grid"
            )
        valid = store.init_times[:, None] + store.lead_times[None, :]
        have = np.isin(valid, src.times)
        if not have.all():
            i, k = np.argwhere(~have)[0]
            hours = int(store.lead_times[k] / np.timedelta64(1, "h"))
            raise DataError(
                f"truth {src.name} lacks valid time {_fmt(valid[i, k])} (init "
                f"{_fmt(store.init_times[i])} + {hours} h; {int((~have).sum())} valid times "
                f"missing); it covers {_fmt(src.times[0])} .. {_fmt(src.times[-1])}"
            )
        if self.stats is not None:
            self._check_stats(store)

    def _check_stats(self, store: EnsembleStore) -> None:
        stats = self.stats
        assert stats is not None
        lat, lon = stats["lat"].values, stats["lon"].values
        try:
            store.grid.check(lat, lon, what=f"climatology {self.climatology_path}")
        except GridMismatch as err:
            self.notes.append(f"climatology skipped: {err}")
            self.stats = None
            return
        absent = [c for c in store.channels if c not in stats["channel"].values]
        if absent:
            self.notes.append(
                f"no climatology for {', '.join(absent)}: its threshold scores, EFI, SOT skipped"
            )

    def fields(
        self, channel: str, forecast: xr.DataArray
    ) -> tuple[xr.DataArray, xr.DataArray]:
        """Truth ``(init_time, lead_time, lat, lon)`` at the valid times of ``forecast`` and
        persistence ``(init_time, lat, lon)`` (truth at the initial times), on its coordinates.
        """
        inits = forecast["init_time"].values
        valid = inits[:, None] + forecast["lead_time"].values[None, :]
        times = np.unique(np.concatenate([valid.ravel(), inits]))
        loaded = self.source(times, [channel]).isel(channel=0).values
        index = np.searchsorted(times, valid)
        coords = {d: forecast[d] for d in ("init_time", "lead_time", "lat", "lon")}
        truth = xr.DataArray(
            loaded[index], dims=("init_time", "lead_time", "lat", "lon"), coords=coords
        )
        persistence = xr.DataArray(
            loaded[np.searchsorted(times, inits)], dims=("init_time", "lat", "lon"),
            coords={d: coords[d] for d in ("init_time", "lat", "lon")},
        )
        return truth, persistence

    def quantile_levels(self) -> np.ndarray | None:
        """Probabilities of the climate quantiles (None without a climatology)."""
        return None if self.stats is None else np.asarray(self.stats["quantile"].values, dtype=np.float64)

    def windows(self, channel: str, forecast: xr.DataArray) -> np.ndarray | None:
        """Index along ``dayofyear`` of the climate window of each valid time, ``(init, lead)``,
        or None without a climatology for ``channel``."""
        if self.stats is None or channel not in self.stats["channel"].values:
            return None
        valid = forecast["init_time"].values[:, None] + forecast["lead_time"].values[None, :]
        centres = self.stats["dayofyear"].values.astype(np.float64)
        doy = pd.DatetimeIndex(valid.ravel()).day_of_year.to_numpy().astype(np.float64)
        distance = np.abs(doy[:, None] - centres[None, :])
        return np.argmin(np.minimum(distance, _YEAR_DAYS - distance), axis=1).reshape(valid.shape)

    def climate(self, channel: str, forecast: xr.DataArray) -> xr.DataArray | None:
        """Climate quantiles ``(init_time, lead_time, quantile, lat, lon)`` of each valid time
        (lazy), or None without a climatology for ``channel``."""
        if self.stats is None or channel not in self.stats["channel"].values:
            return None
        q = self.stats["climatology_quantiles"].sel(channel=channel, drop=True)
        valid = forecast["init_time"].values[:, None] + forecast["lead_time"].values[None, :]
        centres = self.stats["dayofyear"].values.astype(np.float64)
        doy = pd.DatetimeIndex(valid.ravel()).day_of_year.to_numpy().astype(np.float64)
        distance = np.abs(doy[:, None] - centres[None, :])
        window = np.argmin(np.minimum(distance, _YEAR_DAYS - distance), axis=1).reshape(valid.shape)
        picked = q.isel(dayofyear=xr.DataArray(window, dims=("init_time", "lead_time")), drop=True)
        picked = picked.drop_vars([c for c in picked.coords if c not in ("quantile",)])
        out = picked.assign_coords(
            {d: forecast[d] for d in ("init_time", "lead_time", "lat", "lon")}
        ).transpose("init_time", "lead_time", "quantile", "lat", "lon")
        chunks = forecast.chunksizes
        return out.astype(np.float64).chunk(
            {"init_time": 1, "lead_time": 1, "quantile": -1, "lat": chunks["lat"], "lon": -1}
        )


def thresholds_of(climate: xr.DataArray, levels: tuple[float, ...]) -> xr.DataArray:
    """The climate quantiles at ``levels`` along a new dim ``threshold`` (coords: levels)."""
    p = np.asarray(climate["quantile"].values, dtype=np.float64)
    picks = []
    for level in levels:
        i = int(np.argmin(np.abs(p - level)))
        if abs(p[i] - level) > 1e-6:
            raise DataError(
                f"the climatology has no {level:g} quantile; use thresholds among its "
                f"quantiles ({p[0]:g}, {p[1]:g}, ..., {p[-1]:g})"
            )
        picks.append(climate.isel(quantile=i, drop=True))
    out = xr.concat(picks, dim="threshold")
    return out.assign_coords(threshold=np.asarray(levels, dtype=np.float64))
