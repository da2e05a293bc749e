"""Training data for ``hens train``: time-block split, normalisation statistics, start draws.

By default the record of a data source is split into a training block and a validation
block at its end, separated by a gap of more than 30 days that neither uses (weather
decorrelates in ~2 weeks, so validation scores are not inflated by near-duplicates of
training states); ``--train-period``/``--valid-period`` choose both blocks instead
(:mod:`hens.models.training.periods`). Statistics (area-weighted per-channel mean, std and 6-hour
tendency std) come from the training block only and are accumulated block by block, so
they never need the whole period in memory. Batches are read lazily
(:mod:`hens.models.training.batches`) from start indices drawn with a seeded ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hens.forecast.errors import DataError
from hens.forecast.grids import Grid
from hens.forecast.types import STEP
from hens.models.training.periods import parse_period

#: gap between training and validation blocks of the default split: more than 30 days
GAP = np.timedelta64(31, "D")
_LOAD_BLOCK = 256  # at most this many times read from the source at once
_READ_BYTES = 16 * 2**20  # and at most about this many bytes (float32): memory of the reads


@dataclass(frozen=True)
class Split:
    """Training and validation valid times (``datetime64[ns]``, ascending).

    ``periods``: the ``--train-period``/``--valid-period`` texts that chose them, if any.
    """

    train: np.ndarray
    val: np.ndarray
    periods: tuple[str, str] | None = None

    def describe(self) -> dict[str, object]:
        def span(t: np.ndarray) -> list[object]:
            return [str(t[0]), str(t[-1]), int(t.size)]

        if self.periods is None:
            return {"train": span(self.train), "val": span(self.val), "gap_days": int(GAP / np.timedelta64(1, "D"))}
        gap = abs(self.val[0] - self.train[-1]) if self.val[0] > self.train[-1] else abs(self.train[0] - self.val[-1])
        return {"train": span(self.train), "val": span(self.val), "gap_days": int(gap / np.timedelta64(1, "D")),
                "periods": list(self.periods)}


def split_times(
    times: np.ndarray, *, val_days: float | None = None, train_period: str | int | None = None,
    valid_period: str | int | None = None, name: str = "the data",
) -> Split:
    """The training and validation blocks of ``times``.

    With ``train_period`` and ``valid_period`` (checked by
    :func:`hens.models.training.periods.check_periods`): the times inside each. Otherwise the last
    ``val_days`` of the record for validation, a > 30-day gap, the rest for training;
    ``val_days`` defaults to 15 % of the record, between 2 and 365 days.

    Raises
    ------
    DataError
        A block with fewer than two times of the data.
    """
    times = np.unique(np.asarray(times, dtype="datetime64[ns]"))
    if times.size < 2:
        raise DataError("the data source has fewer than two times")
    if train_period is not None and valid_period is not None:
        blocks = []
        for option, text in (("--train-period", train_period), ("--valid-period", valid_period)):
            period = parse_period(text, option=option)
            inside = period.select(times)
            if inside.size < 2:
                raise DataError(
                    f"{option} {period.text} holds {inside.size} time(s) of {name}, which runs from "
                    f"{str(times[0])[:13]} to {str(times[-1])[:13]}; choose a period inside it"
                )
            blocks.append(inside)
        return Split(blocks[0], blocks[1], (str(train_period), str(valid_period)))
    span_days = (times[-1] - times[0]) / np.timedelta64(1, "D")
    if val_days is None:
        val_days = float(np.clip(0.15 * span_days, 2.0, 365.0))
    val_start = times[-1] - np.timedelta64(int(round(val_days * 86400)), "s")
    val = times[times >= val_start]
    train = times[times < val_start - GAP]
    if val.size < 2 or train.size < 2:
        raise DataError(
            f"a record of {span_days:.1f} days is too short for a {val_days:.3g}-day validation block "
            f"after a 31-day gap; use more data or a smaller --val-days"
        )
    return Split(train, val)


class Moments:
    """Area-weighted per-channel mean, std and 6-hour tendency std, accumulated block by block.

    Sums are float64 and grow one time at a time in time order, so a period fed in blocks
    of any size gives the same bits as the whole period at once.

    Parameters
    ----------
    grid
        The data's grid (area weights).
    channels
        Number of channels.
    """

    def __init__(self, grid: Grid, channels: int) -> None:
        self.w = grid.area_weights[None, :, None] / (grid.area_weights.sum() * grid.nlon)
        self.mean, self.sq, self.tend = (np.zeros(channels) for _ in range(3))
        self.count = self.pairs = 0
        self._last: tuple[np.datetime64, np.ndarray] | None = None  # a tendency can span two blocks

    def add(self, data: np.ndarray, times: np.ndarray) -> None:
        """Add ``data`` ``(time, channel, lat, lon)`` valid at ``times`` (later than any before)."""
        for x in data:
            x = x.astype(np.float64)
            self.mean += (x * self.w).sum((-2, -1))
            self.sq += (x * x * self.w).sum((-2, -1))
        self.count += data.shape[0]
        if self._last is not None and times[0] - self._last[0] == STEP:
            self._tendency(data[0], self._last[1])
        for i in np.flatnonzero(np.diff(times) == STEP):
            self._tendency(data[i + 1], data[i])
        self._last = (times[-1], data[-1].copy())

    def _tendency(self, after: np.ndarray, before: np.ndarray) -> None:
        d = after.astype(np.float64) - before
        self.tend += (d * d * self.w).sum((-2, -1))
        self.pairs += 1

    def result(self) -> dict[str, np.ndarray]:
        """``mean``, ``std`` and ``tendency_std`` per channel (units of the channel).

        Raises
        ------
        DataError
            No consecutive 6-hourly times, or a constant channel.
        """
        if self.pairs == 0:
            raise DataError("the training block has no consecutive 6-hourly times")
        mean = self.mean / self.count
        std = np.sqrt(np.maximum(self.sq / self.count - mean**2, 0.0))
        tendency_std = np.sqrt(self.tend / self.pairs)
        for name, value in (("std", std), ("tendency_std", tendency_std)):
            if not (value > 0).all():
                raise DataError(f"a channel has zero {name} in the training block; drop constant channels")
        return {"mean": mean, "std": std, "tendency_std": tendency_std}


def area_weighted_stats(data: np.ndarray, times: np.ndarray, grid: Grid) -> dict[str, np.ndarray]:
    """Per-channel mean, std and 6-hour tendency std of ``data`` ``(time, channel, lat, lon)``."""
    moments = Moments(grid, data.shape[1])
    moments.add(data, np.asarray(times, dtype="datetime64[ns]"))
    return moments.result()


def times_per_read(grid: Grid, channels: int) -> int:
    """Times read at once so that a float32 block stays under ~16 MiB (1 to 256)."""
    per_time = 4 * channels * grid.nlat * grid.nlon
    return int(np.clip(_READ_BYTES // per_time, 1, _LOAD_BLOCK))


def streaming_stats(
    source: Any, times: np.ndarray, channels: Sequence[str], *,
    keep: Callable[[int, np.ndarray], None] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`area_weighted_stats` of ``times`` of ``source``, read in blocks of <= ~16 MiB.

    Memory is one block whatever the length of the period; the values equal those of
    :func:`area_weighted_stats` on the whole period to the bit. ``keep(first, block)`` is
    given each block read (float32 ``(time, channel, lat, lon)`` from position ``first``),
    e.g. to cache it for training.
    """
    moments = Moments(source.grid, len(channels))
    step = times_per_read(source.grid, len(channels))
    for i in range(0, times.size, step):
        when = times[i : i + step]
        block = np.asarray(source(when, list(channels)).values, dtype=np.float32)
        moments.add(block, when)
        if keep is not None:
            keep(i, block)
    return moments.result()


def draw_starts(generator: torch.Generator, candidates: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` start indices drawn uniformly (with replacement) from ``candidates``."""
    picks = torch.randint(candidates.size, (batch,), generator=generator).numpy()
    return candidates[picks]
