"""Kinetic energy spectra: Parseval against the grid, known single-degree fields."""

from __future__ import annotations

import numpy as np
import pytest

from hens.forecast.grids import Grid
from hens.scoring.spectra import kinetic_energy_spectrum


@pytest.mark.parametrize("grid", [Grid(32, 64), Grid(33, 64, "equiangular")], ids=lambda g: g.spec)
def test_solid_body_rotation_is_all_in_degree_one(grid):
    """u = U cos(lat), v = 0: kinetic energy U^2 / 3 (area mean of U^2 cos^2 / 2), all at l = 1."""
    lat = np.radians(grid.lat)[:, None]
    u = 20.0 * np.cos(lat) * np.ones(grid.nlon)
    spectrum = kinetic_energy_spectrum(u, np.zeros_like(u), grid)
    assert spectrum[1] == pytest.approx(20.0**2 / 3, rel=1e-6)
    assert spectrum.sum() - spectrum[1] < 1e-6 * spectrum[1]


def test_parseval_for_the_world_winds():
    from hens.models.shallow_water.solver import ShallowWaterWorld

    world = ShallowWaterWorld()
    state = world.advance(world.initial_state(0, "2000-01-01T00"), 20)
    fields = world.fields(state)
    grid = world.grid
    spectrum = kinetic_energy_spectrum(fields[1], fields[2], grid)
    grid_ke = (0.5 * (fields[1] ** 2 + fields[2] ** 2) * grid.area_weights[:, None]).mean()
    assert spectrum.sum() == pytest.approx(grid_ke, rel=1e-6)
    batched = kinetic_energy_spectrum(np.stack([fields[1]] * 2), np.stack([fields[2]] * 2), grid)
    assert batched.shape == (2, grid.nlat) and np.allclose(batched[1], spectrum)
