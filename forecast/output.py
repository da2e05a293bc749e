"""What of a member's states a store keeps: a subset of channels, a latitude/longitude box and
every n-th lead (HENS kept a few fields of its 7,424 members). The engine computes every
6-hour step of every channel on the whole grid and hands the sink only the selection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hens.forecast.errors import ConfigError
from hens.forecast.grids import Grid
from hens.forecast.types import HOURS_PER_STEP


@dataclass(frozen=True)
class OutputSelection:
    """Indices of the kept channels, latitudes and longitudes, and the kept leads' stride.

    Attributes
    ----------
    channels
        Names of the kept channels, in the order stored.
    channel_index
        Their positions among the model's channels.
    lat_index, lon_index
        Kept rows and columns of the model's grid (latitude north first; a box across the
        prime meridian keeps longitudes from its west edge through 360 and on from 0).
    lead_stride
        Kept leads: every ``lead_stride``-th 6-hour step, lead 0 included.
    whole
        Everything is kept (the selection is then skipped).
    """

    channels: tuple[str, ...]
    channel_index: tuple[int, ...]
    lat_index: np.ndarray
    lon_index: np.ndarray
    lead_stride: int
    whole: bool

    @property
    def shape(self) -> tuple[int, int]:
        """Kept ``(nlat, nlon)``."""
        return self.lat_index.size, self.lon_index.size

    @property
    def member_bytes(self) -> int:
        """Bytes of the kept part of one member's state (float32)."""
        return len(self.channels) * self.shape[0] * self.shape[1] * 4

    def keeps(self, step: int) -> bool:
        """Whether the state after ``step`` 6-hour steps is stored."""
        return step % self.lead_stride == 0

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_model, nlat, nlon)`` -> ``(B, C_kept, n_lat_kept, n_lon_kept)``, contiguous."""
        if self.whole:
            return x
        idx = [torch.as_tensor(i, dtype=torch.long) for i in (self.channel_index, self.lat_index, self.lon_index)]
        return x[:, idx[0]][:, :, idx[1]][:, :, :, idx[2]].contiguous()


def select_output(
    model_channels: Sequence[str], grid: Grid, *, channels: Sequence[str] | None = None,
    region: Mapping[str, Sequence[float]] | None = None, every_hours: int = HOURS_PER_STEP,
) -> OutputSelection:
    """The selection of the YAML keys ``output_channels``, ``region`` and ``output_every_hours``.

    Parameters
    ----------
    model_channels, grid
        What the models compute.
    channels
        Kept channels (default: all), each one of ``model_channels``.
    region
        ``{"lat": [south, north], "lon": [west, east]}`` in degrees north / east in [0, 360)
        (``west > east``: a box across the prime meridian); default: the globe.
    every_hours
        Hours between kept leads, a multiple of 6.

    Raises
    ------
    ConfigError
        One line naming the key and what is wrong.
    """
    names = tuple(model_channels if channels is None else channels)
    unknown = [c for c in names if c not in model_channels]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(f"output_channels must list distinct channels of the models ({', '.join(model_channels)}); "
                          f"got {list(names)}")
    if every_hours < HOURS_PER_STEP or every_hours % HOURS_PER_STEP:
        raise ConfigError(f"output_every_hours must be a positive multiple of 6, got {every_hours}")
    lat_index, lon_index = np.arange(grid.nlat), np.arange(grid.nlon)
    if region is not None:
        lat_index, lon_index = _box(grid, region)
    stride = every_hours // HOURS_PER_STEP
    whole = names == tuple(model_channels) and region is None and stride == 1
    return OutputSelection(names, tuple(list(model_channels).index(c) for c in names), lat_index, lon_index,
                           stride, whole)


def _box(grid: Grid, region: Mapping[str, Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(region, Mapping) or set(region) != {"lat", "lon"}:
        raise ConfigError(f"region must be {{lat: [south, north], lon: [west, east]}}, got {region!r}")
    try:
        (south, north), (west, east) = (tuple(float(v) for v in region[k]) for k in ("lat", "lon"))
    except (TypeError, ValueError):
        raise ConfigError(f"region must be {{lat: [south, north], lon: [west, east]}} in degrees, got {region!r}") from None
    if not -90 <= south < north <= 90 or not (0 <= west < 360 and 0 <= east < 360) or west == east:
        raise ConfigError(f"region lat [{south}, {north}] must rise within -90..90 and lon [{west}, {east}] lie in "
                          "0..360 (west > east crosses the prime meridian)")
    lat_index = np.flatnonzero((grid.lat >= south) & (grid.lat <= north))
    if west < east:
        lon_index = np.flatnonzero((grid.lon >= west) & (grid.lon <= east))
    else:
        lon_index = np.concatenate([np.flatnonzero(grid.lon >= west), np.flatnonzero(grid.lon <= east)])
    if lat_index.size == 0 or lon_index.size == 0:
        raise ConfigError(f"region {dict(region)} holds no point of grid {grid.spec}")
    return lat_index, lon_index
