"""``hens world``: integrate the shallow-water world and write it as a WeatherBench2 ERA5 store.

The trajectory is written every 6 simulated hours in the layout of WeatherBench2's ERA5
Zarr stores (Zarr v2, consolidated; ``geopotential``, ``u_component_of_wind``,
``v_component_of_wind`` on ``(time, level, latitude, longitude)`` with ``level = [500]``,
``2m_temperature`` on ``(time, latitude, longitude)``; float32; latitude 90 -> -90; one time
step per chunk), so that ERA5 and the world share one reader. The statistics store
(:mod:`hens.forecast.stats`) is written beside it. Both are built under hidden temporary
siblings and renamed at the end: a killed run never leaves a partial store at the target.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hens.forecast.channels import WORLD_CHANNELS, get_channel
from hens.forecast.errors import ConfigError, OutputExists
from hens.forecast.stats import compute_stats, stats_path, write_stats
from hens.forecast.types import HOURS_PER_STEP

if TYPE_CHECKING:
    import xarray as xr

    from hens.forecast.grids import Grid
    from hens.models.shallow_water.solver import ShallowWaterWorld, WorldState

_WRITE_BLOCK = 40  # saved states buffered per region write (10 simulated days)
_DESCRIPTIONS = {
    "z500": "Phi = g h of a one-layer shallow-water model (m2 s-2, mean ~9.8e4, not rescaled "
            "to the ~5.5e4 of real 500 hPa geopotential)",
    "u500": "eastward wind of the shallow-water layer",
    "v500": "northward wind of the shallow-water layer",
    "t2m": "a temperature-like tracer advected by the shallow-water wind and relaxed to a "
           "seasonal equilibrium; not a physical 2 m temperature",
}


def _is_zarr(path: Path) -> bool:
    return any((path / name).exists() for name in (".zgroup", ".zmetadata", "zarr.json"))


def _claim(paths: list[Path], *, overwrite: bool) -> None:
    """Refuse existing outputs unless ``overwrite``; never accept a non-Zarr path to replace."""
    for path in paths:
        if not path.exists():
            continue
        if not overwrite:
            raise OutputExists(f"{path} exists; pass --overwrite to replace it")
        if not _is_zarr(path):
            raise OutputExists(f"{path} exists and is not a Zarr store; refusing to replace it")


def _replace(tmp: Path, target: Path, *, overwrite: bool) -> None:
    """Move ``tmp`` to ``target``, deleting an old ``target`` only after the move succeeded."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        _claim([target], overwrite=overwrite)  # it may have appeared while we integrated
        target.rename(old)
    tmp.rename(target)
    if old.exists():
        shutil.rmtree(old)


@contextmanager
def _single_thread() -> Iterator[None]:
    """One intra-op thread: at these sizes extra threads only spin-wait (reference notes section 4)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _template(grid: Grid, times: np.ndarray, attrs: dict) -> xr.Dataset:
    import dask.array as da
    import xarray as xr

    nlat, nlon = grid.shape
    variables = {}
    for name in WORLD_CHANNELS:
        ch = get_channel(name)
        level = ch.level is not None
        shape = (times.size, 1, nlat, nlon) if level else (times.size, nlat, nlon)
        dims = ("time", "level", "latitude", "longitude") if level else ("time", "latitude", "longitude")
        data = da.zeros(shape, dtype=np.float32, chunks=(1, *shape[1:]))
        variables[ch.long_name] = (dims, data, {**ch.attrs(), "short_name": ch.short_name, "description": _DESCRIPTIONS[name]})
    coords = {
        "time": ("time", times),
        "level": ("level", np.array([500], dtype=np.int64), {"units": "millibars", "long_name": "pressure_level"}),
        "latitude": ("latitude", grid.lat.astype(np.float32),
                     {"units": "degrees_north", "long_name": "latitude", "standard_name": "latitude"}),
        "longitude": ("longitude", grid.lon.astype(np.float32),
                      {"units": "degrees_east", "long_name": "longitude", "standard_name": "longitude"}),
    }
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def _block(fields: list[np.ndarray], times: np.ndarray) -> xr.Dataset:
    """Saved states ``(n, 4, nlat, nlon)`` as the data variables of a region write."""
    import xarray as xr

    x = np.stack(fields).astype(np.float32)
    out = {}
    for i, name in enumerate(WORLD_CHANNELS):
        ch = get_channel(name)
        if ch.level is None:
            out[ch.long_name] = (("time", "latitude", "longitude"), x[:, i])
        else:
            out[ch.long_name] = (("time", "level", "latitude", "longitude"), x[:, i, None])
    return xr.Dataset(out, coords={"time": times})


def _integrate(world: ShallowWaterWorld, state: WorldState, times: np.ndarray, path: Path,
               *, advance: Callable[[], object]) -> None:
    """Save ``state`` and its successors every 6 hours at ``times`` into the template at ``path``.

    Buffers :data:`_WRITE_BLOCK` states per region write: memory stays bounded, and the
    store keeps WB2's one-step chunks. Calls ``advance()`` once per saved state.
    """
    buffer: list[np.ndarray] = []
    for i in range(times.size):
        if i:
            state = world.advance(state, world.config.steps_per_save)
        buffer.append(world.fields(state))
        advance()
        if len(buffer) == _WRITE_BLOCK or i == times.size - 1:
            region = slice(i + 1 - len(buffer), i + 1)
            _block(buffer, times[region]).to_zarr(path, region={"time": region}, zarr_format=2)
            buffer = []


def load_world(path: str | Path) -> xr.DataArray:
    """The whole world trajectory in hens layout ``(time, channel, lat, lon)``, in memory.

    Read through :func:`hens.forecast.open_source`, the reader that serves ERA5 too.
    """
    from hens.forecast.sources import open_source

    source = open_source(path)
    return source(source.times, WORLD_CHANNELS)


def generate_world(
    out: str | Path,
    *,
    grid: str = "32x64",
    days: float,
    seed: int,
    spinup_days: float = 60.0,
    start: str = "2000-01-01T00",
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Integrate the world and write its 6-hourly trajectory and statistics.

    Parameters
    ----------
    out
        Target Zarr store; the statistics go to :func:`~hens.forecast.stats.stats_path` of it.
    grid
        Grid spec, e.g. ``"32x64"`` (Legendre-Gauss, T21) or ``"64x128"``.
    days
        Simulated days saved (``round(4 days)`` states from ``start``).
    seed
        Seed of the initial eddies and of the stochastic forcing.
    spinup_days
        Days integrated before ``start`` and not saved.
    start
        Valid time of the first saved state, on the 6-hourly grid.
    overwrite
        Replace existing stores (only after the new ones are complete).
    progress
        Show a progress bar on stderr.

    Returns
    -------
    Path of the trajectory store.
    """
    import rich.progress
    from rich.console import Console

    from hens import __version__
    from hens.models.shallow_water.solver import ShallowWaterWorld, WorldConfig

    out = Path(out)
    targets = [out, stats_path(out)]
    _claim(targets, overwrite=overwrite)
    n_save = round(days * 24 / HOURS_PER_STEP)
    if n_save < 1:
        raise ConfigError(f"days={days} saves nothing; use at least 0.25 days")
    world = ShallowWaterWorld(WorldConfig(grid=grid))
    config = world.config
    try:
        t0 = np.datetime64(start, "s")
    except ValueError:
        raise ConfigError(f"bad start time {start!r}; write e.g. 2000-01-01T00") from None
    first_step = world.step_of(t0)
    n_spin = round(spinup_days * 24 / HOURS_PER_STEP)
    times = (t0 + np.arange(n_save) * np.timedelta64(HOURS_PER_STEP, "h")).astype("datetime64[ns]")
    attrs = {
        "title": "hens shallow-water world, WeatherBench2 ERA5 layout",
        "source": "hens.models.shallow_water (torch-harmonics ShallowWaterSolver + hens AB3 loop and forcing)",
        "hens_version": __version__,
        "seed": seed,
        "spinup_days": n_spin * HOURS_PER_STEP / 24,
        "days": n_save * HOURS_PER_STEP / 24,
        "first_step": first_step,
        "step_epoch": "1970-01-01T00:00:00",
        "Conventions": "CF-1.8",
        **config.attrs(),
    }
    tmps = [t.with_name(f".{t.name}.partial-{os.getpid()}") for t in targets]
    encoding = {"time": {"units": f"hours since {str(t0)[:10]}", "calendar": "proleptic_gregorian", "dtype": "int64"}}
    columns = (*rich.progress.Progress.get_default_columns(), rich.progress.TextColumn("{task.fields[phase]}"))
    try:
        _template(config.grid, times, attrs).to_zarr(tmps[0], mode="w", compute=False, zarr_format=2,
                                                     consolidated=True, encoding=encoding)
        with _single_thread(), rich.progress.Progress(*columns, console=Console(stderr=True), disable=not progress) as bar:
            task = bar.add_task(f"world {config.grid.spec}", total=n_spin + n_save, phase="spin-up")
            state = world.initial_state(seed, world.time_of(first_step - n_spin * config.steps_per_save))
            for _ in range(n_spin):
                state = world.advance(state, config.steps_per_save)
                bar.advance(task)
            bar.update(task, phase="saving")
            _integrate(world, state, times, tmps[0], advance=lambda: bar.advance(task))
            bar.update(task, phase="statistics")
            write_stats(compute_stats(load_world(tmps[0]), config.grid), tmps[1])
        # the trajectory goes last: its presence means the pair is complete
        _replace(tmps[1], targets[1], overwrite=overwrite)
        _replace(tmps[0], targets[0], overwrite=overwrite)
    finally:  # after a failure or interrupt; nothing is left after a success
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)
    return out
