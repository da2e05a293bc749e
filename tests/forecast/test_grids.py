"""Grid registry: nodes and weights against torch-harmonics and known values; detection."""

from __future__ import annotations

import numpy as np
import pytest
from torch_harmonics.quadrature import clenshaw_curtiss_weights, legendre_gauss_weights

from hens.forecast.errors import GridMismatch
from hens.forecast.grids import GRID_KINDS, Grid, parse_grid


@pytest.mark.parametrize("nlat", [2, 8, 32, 96])
def test_legendre_gauss_matches_torch_harmonics(nlat):
    x, w = legendre_gauss_weights(nlat, -1.0, 1.0)
    grid = Grid(nlat, 2 * nlat)
    # torch-harmonics orders nodes by ascending cos(colatitude): reverse for north first
    np.testing.assert_allclose(np.sin(np.radians(grid.lat)), np.asarray(x)[::-1], atol=1e-12)
    np.testing.assert_allclose(grid.quadrature_weights, np.asarray(w)[::-1], atol=1e-12)


@pytest.mark.parametrize("nlat", [3, 5, 33, 121])
def test_equiangular_matches_torch_harmonics(nlat):
    x, w = clenshaw_curtiss_weights(nlat, -1.0, 1.0)
    grid = Grid(nlat, 64, "equiangular")
    np.testing.assert_allclose(np.sin(np.radians(grid.lat)), np.asarray(x)[::-1], atol=1e-12)
    np.testing.assert_allclose(grid.quadrature_weights, np.asarray(w)[::-1], atol=1e-12)
    np.testing.assert_allclose(grid.lat, np.linspace(90, -90, nlat), atol=1e-9)


def test_known_weights():
    np.testing.assert_allclose(Grid(5, 8, "equiangular").quadrature_weights,
                               [0.066667, 0.533333, 0.8, 0.533333, 0.066667], atol=1e-6)
    np.testing.assert_allclose(Grid(3, 8, "equiangular").quadrature_weights, [1 / 3, 4 / 3, 1 / 3])
    gauss = Grid(2, 4)
    np.testing.assert_allclose(gauss.quadrature_weights, [1.0, 1.0])
    np.testing.assert_allclose(gauss.lat, np.degrees(np.arcsin([1, -1] / np.sqrt(3.0))))


def test_wb2_64x32_grid_is_equiangular_nopoles():
    lat = np.linspace(-87.1875, 87.1875, 32)  # WB2's regridded stores are south first
    lon = np.arange(64) * 5.625
    grid = Grid.detect(lat, lon)
    assert grid == Grid(32, 64, "equiangular-nopoles")
    assert grid.lat[0] == pytest.approx(87.1875)
    bounds = np.radians(np.linspace(90, -90, 33))
    np.testing.assert_allclose(grid.quadrature_weights, np.sin(bounds[:-1]) - np.sin(bounds[1:]))
    with pytest.raises(GridMismatch, match="no spherical harmonic transform"):
        _ = grid.sht_grid


@pytest.mark.parametrize("kind", GRID_KINDS)
@pytest.mark.parametrize("flip", [False, True], ids=["north-first", "south-first"])
def test_detect_both_latitude_orders(kind, flip):
    grid = Grid(16, 32, kind)
    lat = grid.lat[::-1] if flip else grid.lat
    assert Grid.detect(lat, grid.lon) == grid
    assert np.all(np.diff(grid.lat) < 0) and np.all(np.diff(grid.lon) > 0)


def test_detect_longitudes_from_minus_180():
    grid = Grid(8, 16)
    assert Grid.detect(grid.lat, np.where(grid.lon >= 180, grid.lon - 360, grid.lon)) == grid


def test_detect_float32_coordinates():
    """WB2 stores keep float32 latitudes, rounding Gaussian nodes by up to 4e-6 deg."""
    grid = Grid(32, 64)
    lat32, lon32 = grid.lat.astype(np.float32), grid.lon.astype(np.float32)
    assert np.abs(lat32 - grid.lat).max() > 1e-6
    assert Grid.detect(lat32, lon32) == grid
    grid.check(lat32, lon32)
    with pytest.raises(GridMismatch):
        Grid.detect(grid.lat + 1e-5, grid.lon)  # float64 input keeps the 1e-6 deg tolerance


def test_unknown_grid_and_check_raise():
    lat = np.linspace(80, -80, 10)
    with pytest.raises(GridMismatch, match="unknown 10x16 grid"):
        Grid.detect(lat, np.arange(16) * 22.5)
    with pytest.raises(GridMismatch, match="8x16 grid, expected 9x16:equiangular"):
        Grid(9, 16, "equiangular").check(Grid(8, 16).lat, Grid(8, 16).lon)
    with pytest.raises(GridMismatch, match="differ from grid 8x16"):
        Grid(8, 16).check(Grid(8, 16, "equiangular-nopoles").lat, Grid(8, 16).lon)


def test_specs_and_weights_normalisation():
    for spec in ("32x64", "33x64:equiangular", "32x64:equiangular-nopoles"):
        grid = parse_grid(spec)
        assert grid.spec == spec and parse_grid(grid) is grid
        assert grid.quadrature_weights.sum() == pytest.approx(2.0)
        assert grid.area_weights.mean() == pytest.approx(1.0)
    for bad in ("32", "32x64:gaussian", "1x4"):
        with pytest.raises(GridMismatch):
            parse_grid(bad)


def test_detecting_a_grid_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from hens.forecast.grids import Grid, parse_grid\n"
        "g = parse_grid('32x64')\n"
        "assert Grid.detect(g.lat.astype(np.float32), g.lon) == g\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
