"""``hens demo``: a small world and its quick-look plots.

Products in ``out``: ``world.zarr`` (+ ``world.stats.zarr``), reused when a complete world of
the requested length is already there, and ``plots/*.png``.
"""

from __future__ import annotations

from pathlib import Path

from hens.forecast.errors import OutputExists

_GRID = "32x64"
_SEED = 0
_SPECTRUM_SAMPLES = 120  # saved states averaged for the energy spectrum


def _world(out: Path, days: float) -> Path:
    import xarray as xr

    from hens.forecast.stats import stats_path
    from hens.pipelines.world import generate_world

    path = out / "world.zarr"
    if not path.exists():
        return generate_world(path, grid=_GRID, days=days, seed=_SEED)
    # generate_world renames the trajectory last, so an existing one is complete
    have = xr.open_zarr(path, consolidated=True).attrs.get("days")
    if have != round(days * 4) / 4 or not stats_path(path).exists():
        raise OutputExists(f"{path} holds another world ({have} days); use --days {have} or another --out")
    return path


def run_demo(out: str | Path, *, days: float) -> Path:
    """Generate (or reuse) the demo world and draw its plots.

    Parameters
    ----------
    out
        Folder for the products.
    days
        Simulated days of the world (32x64, seed 0, 60 days spin-up).

    Returns
    -------
    The folder of the PNGs.
    """
    from rich.console import Console

    from hens.forecast.grids import parse_grid
    from hens.pipelines.world import load_world
    from hens.scoring import plots
    from hens.scoring.spectra import kinetic_energy_spectrum

    out = Path(out)
    world = _world(out, days)
    data = load_world(world)
    grid = parse_grid(_GRID)
    figures = out / "plots"
    last = data.isel(time=-1)
    for name in data["channel"].values:
        plots.plot_map(last.sel(channel=name), figures / f"map_{name}.png",
                       title=f"{name} at {str(last['time'].values)[:16]}")
    plots.plot_global_means(data, grid, figures / "global_means.png")
    sample = data.isel(time=slice(None, None, max(1, data.sizes["time"] // _SPECTRUM_SAMPLES)))
    spectrum = kinetic_energy_spectrum(sample.sel(channel="u500").values, sample.sel(channel="v500").values, grid,
                                       lmax=grid.lmax)  # the world is truncated there
    plots.plot_spectra({"world, time mean": spectrum.mean(axis=0)}, figures / "ke_spectrum.png")
    Console(stderr=True).print(f"demo: plots in {figures}")
    return figures
