"""The data source hens reads analyses from: stacks parts into ``(time, channel, lat, lon)``."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

import numpy as np
import pandas as pd
import xarray as xr

from hens.forecast.channels import CHANNELS, get_channels
from hens.forecast.errors import DataError, GridMismatch
from hens.forecast.grids import Grid, parse_grid
from hens.forecast.sources.part import Part

LAT_ATTRS = {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude",
             "axis": "Y", "comment": "descending: north first"}
LON_ATTRS = {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude",
             "axis": "X"}


class GriddedSource:
    """Analyses on one grid, read lazily from Zarr or netCDF; implements ``DataSource``.

    Parameters
    ----------
    parts
        Pieces with their own time axes (e.g. CDS pressure-level and single-level files).
        The source offers the union of their channels at their common times.
    layout
        Human-readable layout(s), for :meth:`describe`.
    name
        The input path(s), for messages.

    Raises
    ------
    GridMismatch
        If the parts are on different grids.
    DataError
        If two parts hold the same channel or the parts share no time.
    """

    def __init__(self, parts: Sequence[Part], *, layout: str, name: str) -> None:
        grids = {part.grid for part in parts}
        if len(grids) > 1:
            raise GridMismatch(
                f"{name} mixes grids {', '.join(sorted(g.spec for g in grids))}; "
                "pass files on one grid"
            )
        self._owner: dict[str, Part] = {}
        for part in parts:
            for channel in part.fields:
                if channel in self._owner:
                    raise DataError(
                        f"channel {channel} is in both {self._owner[channel].name} and "
                        f"{part.name}; pass each channel once"
                    )
                self._owner[channel] = part
        self.parts: tuple[Part, ...] = tuple(parts)
        self.grid: Grid = parts[0].grid
        self.channels: tuple[str, ...] = tuple(c for c in CHANNELS if c in self._owner)
        self.times: np.ndarray = reduce(np.intersect1d, [part.times for part in parts])
        self.layout = layout
        self.name = name
        if self.times.size == 0:
            spans = "; ".join(f"{p.name}: {_span(p.times)}" for p in parts)
            raise DataError(f"{name}: the files share no valid time ({spans})")

    def check_grid(self, grid: Grid | str) -> None:
        """Raise :class:`GridMismatch` unless the source is on ``grid`` (a Grid or spec)."""
        expected = parse_grid(grid)
        if expected != self.grid:
            raise GridMismatch(
                f"{self.name} is on grid {self.grid.spec}, expected {expected.spec}; "
                "regrid the data or use the model trained on its grid"
            )

    def describe(self) -> str:
        """A short summary: layout, grid, channels, times."""
        g = self.grid
        kind = "" if ":" in g.spec else f" ({g.kind})"
        return "\n".join([
            f"{self.name}: {self.layout}",
            f"  grid      {g.spec}{kind}, latitude north first, longitude 0..{g.lon[-1]:g}",
            f"  channels  {len(self.channels)}: {' '.join(self.channels)}",
            f"  times     {self.times.size}: {_span(self.times)}",
        ])

    def __call__(
        self,
        times: Sequence | np.ndarray,
        channels: Sequence[str],
        *,
        grid: Grid | str | None = None,
    ) -> xr.DataArray:
        """Load data as float32 with dims ``(time, channel, lat, lon)``.

        Parameters
        ----------
        times
            Valid times (anything :func:`pandas.to_datetime` reads), each in :attr:`times`.
        channels
            hens channel names, each in :attr:`channels` (one name may be a plain string).
        grid
            If given, first check that the source is on this grid.

        Returns
        -------
        xarray.DataArray
            Coords ``time`` (datetime64[ns]), ``channel``, ``units`` (per channel, CF),
            ``lat`` (degrees north, **descending**), ``lon`` (degrees east, ascending in
            [0, 360)); grid attributes.

        Raises
        ------
        DataError
            A channel or time that the source lacks, or NaN/Inf in the loaded values.
        GridMismatch
            The source is not on ``grid``.
        """
        if grid is not None:
            self.check_grid(grid)
        chans, when = self._channels(channels), self._times(times)
        out = self._read(when, chans)
        return xr.DataArray(
            out,
            dims=("time", "channel", "lat", "lon"),
            coords={
                "time": when,
                "channel": chans,
                "units": ("channel", [CHANNELS[c].units for c in chans]),
                "lat": ("lat", self.grid.lat, LAT_ATTRS),
                "lon": ("lon", self.grid.lon, LON_ATTRS),
            },
            attrs={**self.grid.attrs(), "source": self.name, "layout": self.layout},
        )

    def read(self, times: Sequence | np.ndarray, channels: Sequence[str]) -> np.ndarray:
        """The values of :meth:`__call__` without the DataArray around them: float32
        ``(time, channel, lat, lon)``. For loops that read many small blocks (training
        batches), where building coordinates costs more than decoding the data."""
        return self._read(self._times(times), self._channels(channels))

    def _channels(self, channels: Sequence[str] | str) -> list[str]:
        names = [channels] if isinstance(channels, str) else list(channels)
        chans = [ch.name for ch in get_channels(names)]
        for channel in chans:
            if channel not in self._owner:
                raise DataError(
                    f"channel {channel} ({_describe_channel(channel)}) is not in {self.name}; "
                    f"it has {', '.join(self.channels)}"
                )
        return chans

    def _read(self, when: np.ndarray, chans: list[str]) -> np.ndarray:
        out = np.empty((when.size, len(chans), *self.grid.shape), dtype=np.float32)
        for k, channel in enumerate(chans):
            self._owner[channel].read_into(channel, when, out[:, k])
        self._check_finite(out, when, chans)
        return out

    def _times(self, times: Sequence | np.ndarray) -> np.ndarray:
        try:
            when = pd.to_datetime(np.atleast_1d(np.asarray(times))).values.astype("datetime64[ns]")
        except (ValueError, TypeError) as err:
            raise DataError(f"cannot read times {times!r}: {err}") from err
        idx = np.searchsorted(self.times, when).clip(0, self.times.size - 1)
        missing = when[self.times[idx] != when]
        if missing.size:
            raise DataError(
                f"time {_fmt(missing[0])} is not in {self.name}"
                + (f" (nor {missing.size - 1} more)" if missing.size > 1 else "")
                + f"; it holds {self.times.size} times: {_span(self.times)}"
            )
        return when

    def _check_finite(self, out: np.ndarray, when: np.ndarray, chans: list[str]) -> None:
        # one pairwise sum is cheaper than isfinite (which writes a boolean block); the sum is
        # non-finite whenever a value is, and rarely on overflow (then the search finds none)
        if np.isfinite(out.sum()):
            return
        bad = ~np.isfinite(out).all(axis=(2, 3))
        if bad.any():
            t, c = np.argwhere(bad)[0]
            raise DataError(
                f"NaN/Inf in {chans[c]} at {_fmt(when[t])} in {self.name} "
                f"({int(bad.sum())} of {bad.size} time-channel fields affected); "
                "pick other times or fill the gaps in the data"
            )


def _describe_channel(channel: str) -> str:
    ch = CHANNELS[channel]
    level = f" at {ch.level} hPa" if ch.level is not None else ""
    return f"{ch.long_name}{level}, CDS {ch.short_name}"


def _fmt(t: np.datetime64) -> str:
    return str(np.datetime_as_string(t, unit="m"))


def _span(times: np.ndarray) -> str:
    """``first .. last, every 6 h`` (or ``irregular steps``)."""
    if times.size == 0:
        return "no times"
    if times.size == 1:
        return _fmt(times[0])
    text = f"{_fmt(times[0])} .. {_fmt(times[-1])}"
    steps = np.unique(np.diff(times))
    if steps.size == 1:
        hours = steps[0] / np.timedelta64(1, "h")
        text += f", every {hours:g} h"
    elif steps.size > 1:
        text += ", irregular steps"
    return text


def summarize(data: xr.DataArray) -> str:
    """One line per channel of a block from :class:`GriddedSource`: min, mean, max, units."""
    values = data.values
    lines = [f"loaded {data.sizes['time']} time(s) x {data.sizes['channel']} channel(s), float32"]
    for k, channel in enumerate(data["channel"].values.tolist()):
        v = values[:, k]
        lines.append(
            f"  {channel:<6} min {v.min():11.5g}  mean {v.mean():11.5g}  max {v.max():11.5g}  "
            f"[{data['units'].values[k]}]"
        )
    return "\n".join(lines)
