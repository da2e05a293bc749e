"""Grids, channels, data sources, perturbations and the ensemble engine.

Latitude convention everywhere in hens: **north first** (descending latitude, row 0 on the
North Pole side, as torch-harmonics expects); longitudes ascending in [0, 360).
"""

from hens.forecast.channels import CHANNELS, Channel, get_channel
from hens.forecast.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    GridMismatch,
    HensError,
    OutputExists,
)
from hens.forecast.grids import Grid, parse_grid

__all__ = [
    "CHANNELS",
    "Channel",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Grid",
    "GridMismatch",
    "HensError",
    "OutputExists",
    "get_channel",
    "open_source",
    "open_store",
    "parse_grid",
]


def __getattr__(name: str):  # lazy: keeps `import hens.forecast` free of xarray/zarr
    if name == "open_source":
        from hens.forecast.sources import open_source

        return open_source
    if name == "open_store":
        from hens.forecast.store_reader import open_store

        return open_store
    raise AttributeError(name)
