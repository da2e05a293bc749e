"""The ``hens`` command line.

Each command only parses its options and calls a workflow function; heavy modules (torch,
xarray) are imported inside the commands so that ``hens --help`` starts fast. User mistakes
(:class:`~hens.forecast.errors.HensError`) print one line on stderr and exit with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from hens.forecast.errors import HensError

app = typer.Typer(
    name="hens",
    help="Huge ensembles of spherical neural weather models: world, train, forecast, score.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_STATE = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    _STATE["debug"] = debug


@app.command()
def world(
    out: Annotated[Path, typer.Option("--out", help="Output Zarr store (WeatherBench2 ERA5 layout).")],
    grid: Annotated[str, typer.Option("--grid", help="NLATxNLON[:KIND]; Legendre-Gauss by default.")] = "32x64",
    days: Annotated[float, typer.Option("--days", help="Simulated days to save after spin-up.", min=0.25)] = 730.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stochastic forcing.")] = 0,
    spinup_days: Annotated[float, typer.Option("--spinup-days", help="Days run before saving.", min=0)] = 60.0,
    start: Annotated[str, typer.Option("--start", help="Valid time of the first saved state.")] = "2000-01-01T00",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing store.")] = False,
) -> None:
    """Generate the shallow-water world: a 6-hourly "reanalysis" plus its statistics.

    Example: hens world --out world.zarr --grid 32x64 --days 730 --seed 0
    """
    from hens.pipelines.world import generate_world

    generate_world(out, grid=grid, days=days, seed=seed, spinup_days=spinup_days, start=start,
                   overwrite=overwrite)


@app.command()
def inspect(
    path: Annotated[list[str], typer.Argument(help="Zarr store, netCDF file(s) or a glob.")],
) -> None:
    """Detect the layout of a data source and list its grid, channels and times.

    Example: hens inspect world.zarr
    """
    from hens.forecast.sources import open_source

    source = open_source(path if len(path) > 1 else path[0])
    typer.echo(source.describe())


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's products.")] = Path("demo-out"),
    days: Annotated[float, typer.Option("--days", help="Simulated days of the demo world.", min=1)] = 730.0,
) -> None:
    """Run the demo chain; finished steps are reused on a second run.

    Example: hens demo --out demo-out
    """
    from hens.pipelines.demo import run_demo

    run_demo(out, days=days)


def main() -> None:
    """Console entry point: maps :class:`HensError` to one stderr line and exit status 2."""
    try:
        app()  # standalone mode: usage errors print one message and exit 2 themselves
    except HensError as err:
        if _STATE["debug"]:
            raise
        typer.echo(f"hens: error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
