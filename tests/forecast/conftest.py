"""Fixtures of the data-source tests: one truth on a 9x16 grid with poles, in each layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr
from sample_layouts import make_truth, write_cds_legacy, write_cds_new, write_wb2

from hens.forecast.grids import Grid


@pytest.fixture(scope="session")
def grid9() -> Grid:
    """9x16 equiangular with both poles, the shape of ERA5's 0.25 deg grid."""
    return Grid(9, 16, "equiangular")


@pytest.fixture(scope="session")
def truth9(grid9: Grid) -> xr.DataArray:
    return make_truth(grid9)


@pytest.fixture(scope="session")
def wb2_store(truth9: xr.DataArray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wb2(truth9, tmp_path_factory.mktemp("wb2") / "era5.zarr")


@pytest.fixture(scope="session")
def cds_new_files(truth9: xr.DataArray, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_cds_new(truth9, tmp_path_factory.mktemp("cds-new"))


@pytest.fixture(scope="session", params=[False, True], ids=["single-expver", "expver-dim"])
def cds_legacy_files(request: pytest.FixtureRequest, truth9: xr.DataArray,
                     tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_cds_legacy(truth9, tmp_path_factory.mktemp("cds-legacy"), expver=request.param)
