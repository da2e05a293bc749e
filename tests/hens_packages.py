"""A WeatherBench2-layout ERA5 store with the 74 variables of the Huge Ensembles SFNO packages, and
tiny HENS-style packages on its 9x16 grid (``tests/models/makani/package_builders.py``: legacy checkpoint
style, embed 8, 2 blocks, scale factor 2), for the ensemble and campaign tests of packages."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent / "forecast"))
sys.path.insert(0, str(Path(__file__).parent / "models" / "makani"))
from package_builders import CHANNELS_73, write_package  # noqa: E402
from sample_layouts import ERA5_74, make_truth, write_wb2  # noqa: E402

from hens.forecast.grids import parse_grid  # noqa: E402

GRID = parse_grid("9x16:equiangular")
#: makani names, as in the HENS packages (2d is hens' d2m)
HENS_74 = CHANNELS_73[:5] + ("2d",) + CHANNELS_73[5:]
#: 6-hourly analyses of the store: breeding and the 48-hour RMSE before 2021-03-13, forecasts after
TIMES = pd.date_range("2021-03-10T00", "2021-03-16T00", freq="6h").values


def write_era5(folder: Path, channels: tuple[str, ...] = ERA5_74, name: str = "era5.zarr") -> Path:
    """The ERA5 store of ``channels`` (default: all 74) in ``folder``."""
    return write_wb2(make_truth(GRID, channels=channels, times=TIMES), folder / name)


def era5_and_packages(folder: Path, seeds: tuple[int, ...] = (1, 2)) -> tuple[Path, list[Path]]:
    """The 74-variable store and one package ``sfno_seed<s>`` per seed, all in ``folder``."""
    packages = [write_package(folder / f"sfno_seed{s}", style="hens-conversion", channels=HENS_74,
                              nlat=GRID.nlat, nlon=GRID.nlon, seed=s) for s in seeds]
    return write_era5(folder), packages
