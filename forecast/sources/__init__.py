"""Data sources: WeatherBench2/ARCO Zarr stores and Copernicus CDS netCDF files (new and legacy).

:func:`open_source` recognises the layout from the content (dims, variable names), never
from the file name, and returns a :class:`GriddedSource` that loads
``(time, channel, lat, lon)`` float32 blocks with latitude **north first** and longitude
ascending in [0, 360).

Example
-------
>>> source = open_source("world.zarr")                       # doctest: +SKIP
>>> block = source(source.times[:4], ["z500", "t2m"], grid="32x64")  # doctest: +SKIP
"""

from __future__ import annotations

from hens.forecast.grids import Grid
from hens.forecast.sources.detect import SourcePath, open_parts
from hens.forecast.sources.source import GriddedSource, summarize

__all__ = ["GriddedSource", "SourcePath", "open_source", "summarize"]


def open_source(path: SourcePath, *, grid: Grid | str | None = None) -> GriddedSource:
    """Open a Zarr store, netCDF file(s) or a glob of them as a data source.

    Parameters
    ----------
    path
        A store or file, a glob string (``"era5/*.nc"``), an fsspec URL of a Zarr store
        (``gs://``, ``s3://``, ``https://``, ``file://``, ``memory://``; the cloud backends
        come with ``pip install 'hens[cloud]'``) or a list of these. CDS pressure-level and
        single-level files may be given together; their common times are used.
    grid
        If given, raise :class:`~hens.forecast.errors.GridMismatch` unless the data is on
        this grid (a :class:`~hens.forecast.grids.Grid` or a spec such as ``"32x64"``).

    Raises
    ------
    DataError
        Missing or unreadable paths, unknown layouts, files without hens channels, URLs
        whose fsspec backend is not installed.
    GridMismatch
        Coordinates of no registered grid, or another grid than ``grid``.
    """
    parts, layouts, label = open_parts(path)
    source = GriddedSource(parts, layout=", ".join(layouts), name=label)
    if grid is not None:
        source.check_grid(grid)
    return source
