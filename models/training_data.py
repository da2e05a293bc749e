"""Training data for ``hens train``: time-block split, normalisation statistics, batches.

The record of a data source is split into a training block and a validation block at its
end, separated by a gap of more than 30 days that neither uses (weather decorrelates in
~2 weeks, so validation scores are not inflated by near-duplicates of training states).
Statistics (area-weighted per-channel mean, std and 6-hour tendency std) come from the
training block only. A sample is a start index with ``rollout`` further 6-hour states
available in the same block; batches are drawn from a seeded ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hens.forecast.errors import DataError
from hens.forecast.grids import Grid

SIX_HOURS = np.timedelta64(6, "h")
#: gap between training and validation blocks: more than 30 days
GAP = np.timedelta64(31, "D")
_LOAD_BLOCK = 256  # times read from the source at once


@dataclass(frozen=True)
class Split:
    """Training and validation valid times (``datetime64[ns]``, ascending)."""

    train: np.ndarray
    val: np.ndarray

    def describe(self) -> dict[str, object]:
        def span(t: np.ndarray) -> list[object]:
            return [str(t[0]), str(t[-1]), int(t.size)]

        return {"train": span(self.train), "val": span(self.val), "gap_days": int(GAP / np.timedelta64(1, "D"))}


def split_times(times: np.ndarray, *, val_days: float | None = None) -> Split:
    """Last ``val_days`` of the record for validation, a > 30-day gap, the rest for training.

    ``val_days`` defaults to 15 % of the record, between 2 and 365 days.
    """
    times = np.unique(np.asarray(times, dtype="datetime64[ns]"))
    if times.size < 2:
        raise DataError("the data source has fewer than two times")
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


def area_weighted_stats(data: np.ndarray, times: np.ndarray, grid: Grid) -> dict[str, np.ndarray]:
    """Per-channel mean, std and 6-hour tendency std of ``data`` ``(time, channel, lat, lon)``."""
    w = grid.area_weights[None, :, None] / (grid.area_weights.sum() * grid.nlon)
    mean = np.zeros(data.shape[1])
    sq = np.zeros(data.shape[1])
    for x in data:
        x = x.astype(np.float64)
        mean += (x * w).sum((-2, -1))
        sq += (x * x * w).sum((-2, -1))
    mean /= data.shape[0]
    std = np.sqrt(np.maximum(sq / data.shape[0] - mean**2, 0.0))
    pairs = np.flatnonzero(np.diff(times) == SIX_HOURS)
    if pairs.size == 0:
        raise DataError("the training block has no consecutive 6-hourly times")
    tend = np.zeros(data.shape[1])
    for i in pairs:
        d = data[i + 1].astype(np.float64) - data[i]
        tend += (d * d * w).sum((-2, -1))
    tendency_std = np.sqrt(tend / pairs.size)
    for name, value in (("std", std), ("tendency_std", tendency_std)):
        if not (value > 0).all():
            raise DataError(f"a channel has zero {name} in the training block; drop constant channels")
    return {"mean": mean, "std": std, "tendency_std": tendency_std}


class Trajectory:
    """One block of consecutive states in memory: ``data`` float32 ``(time, channel, lat, lon)``.

    Parameters
    ----------
    source
        A :class:`~hens.forecast.protocols.DataSource`.
    times
        The block's valid times.
    channels
        Channels to load, model order.
    """

    def __init__(self, source, times: np.ndarray, channels: Sequence[str]) -> None:
        self.times = np.asarray(times, dtype="datetime64[ns]")
        self.data = np.empty((self.times.size, len(channels), *source.grid.shape), dtype=np.float32)
        for i in range(0, self.times.size, _LOAD_BLOCK):
            block = source(self.times[i : i + _LOAD_BLOCK], list(channels))
            self.data[i : i + block.shape[0]] = block.values

    def starts(self, rollout: int) -> np.ndarray:
        """Indices ``i`` whose states ``i + 1 .. i + rollout`` follow every 6 hours."""
        steps = np.diff(self.times) == SIX_HOURS
        ok = np.ones(self.times.size - rollout, dtype=bool) if self.times.size > rollout else np.zeros(0, bool)
        for k in range(rollout):
            ok &= steps[k : k + ok.size]
        return np.flatnonzero(ok)

    def batch(self, starts: np.ndarray, rollout: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0, targets)``: ``(B, C, H, W)`` and ``(rollout, B, C, H, W)`` float32 tensors."""
        x0 = torch.from_numpy(self.data[starts])
        targets = torch.from_numpy(np.stack([self.data[starts + k] for k in range(1, rollout + 1)]))
        return x0, targets


def draw_starts(generator: torch.Generator, candidates: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` start indices drawn uniformly (with replacement) from ``candidates``."""
    picks = torch.randint(candidates.size, (batch,), generator=generator).numpy()
    return candidates[picks]
