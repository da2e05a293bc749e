"""Protocols at the seams of hens. Implementations do not inherit from them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import xarray as xr

    from hens.forecast.grids import Grid


@runtime_checkable
class DataSource(Protocol):
    """Gridded analyses (reanalysis, the world's trajectory) on one grid.

    Attributes
    ----------
    grid
        The grid of the returned data (latitude north first, longitude in [0, 360)).
    channels
        hens channel names the source can deliver.
    times
        Valid times available, ``datetime64[ns]``, ascending.
    """

    grid: Grid
    channels: tuple[str, ...]
    times: np.ndarray

    def __call__(self, times: Sequence | np.ndarray, channels: Sequence[str]) -> xr.DataArray:
        """Return float32 data with dims ``(time, channel, lat, lon)``.

        Raises :class:`~hens.forecast.errors.DataError` naming a missing channel or time, and
        for NaN/Inf values in the requested data.
        """
        ...
