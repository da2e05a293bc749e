"""Small synthetic ensembles on hens grids for the scoring tests (imported by them)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from hens.forecast.grids import Grid


def grid_coords(grid: Grid) -> dict[str, np.ndarray]:
    return {"lat": grid.lat, "lon": grid.lon}


def make_ensemble(
    members: int = 8,
    times: int = 3,
    grid: Grid | None = None,
    *,
    seed: int = 0,
    dtype: str = "float64",
) -> tuple[xr.DataArray, xr.DataArray]:
    """Members and truth drawn from one N(0, 1) distribution, dims (member, time, lat, lon)."""
    grid = grid or Grid(8, 16)
    rng = np.random.default_rng(seed)
    coords = {"time": np.arange(times), **grid_coords(grid)}
    fc = xr.DataArray(
        rng.standard_normal((members, times, *grid.shape)).astype(dtype),
        dims=("member", "time", "lat", "lon"),
        coords=coords,
        attrs={"units": "K"},
    )
    truth = xr.DataArray(
        rng.standard_normal((times, *grid.shape)).astype(dtype),
        dims=("time", "lat", "lon"),
        coords=coords,
        attrs={"units": "K"},
    )
    return fc, truth
