"""The world's solver: numerics, purity in (seed, step), seasons, chaos and stationarity."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from hens.forecast.errors import ConfigError, DataError
from hens.models.shallow_water import forcing as wf
from hens.models.shallow_water.solver import ShallowWaterWorld, WorldConfig, WorldState, default_dt

G = 9.80616


@pytest.fixture(scope="module")
def world() -> ShallowWaterWorld:
    return ShallowWaterWorld()


@pytest.fixture(scope="module")
def state(world: ShallowWaterWorld) -> WorldState:
    """Two days after an initial state in northern winter."""
    return world.advance(world.initial_state(0, "2000-01-01T00"), 2 * 192)


def _from_store(world: ShallowWaterWorld, store, index: int) -> WorldState:
    from hens.pipelines.world import load_world

    data = load_world(store).isel(time=index)
    return world.from_fields(data.values.astype(np.float64), time=data["time"].values, seed=0)


def _rms_h(world: ShallowWaterWorld, a: WorldState, b: WorldState) -> float:
    """Area-weighted rms difference of the layer depth h = Phi / g (m)."""
    diff = (world.fields(a)[0] - world.fields(b)[0]) / G
    return float(np.sqrt((diff**2 * world.grid.area_weights[:, None]).mean()))


def test_time_step_follows_the_grid():
    assert default_dt(21) == 450 and default_dt(42) == 225
    assert WorldConfig().dt_s == 450 and WorldConfig(grid="64x128").dt_s == 225
    assert WorldConfig(grid="33x64:equiangular").lmax == 21
    with pytest.raises(ConfigError, match="dt_s"):
        WorldConfig(dt_s=600)
    with pytest.raises(ConfigError, match="forcing band 6..40"):
        WorldConfig(noise_band=(6, 40))
    with pytest.raises(ConfigError, match="at least 20 latitudes"):
        WorldConfig(grid="16x32")
    WorldConfig(grid="20x40")


def test_advance_does_not_depend_on_chunking(world, state):
    whole = world.advance(state, 30)
    parts = world.advance(world.advance(world.advance(state, 7), 1), 22)
    assert whole.step == parts.step == state.step + 30
    assert torch.equal(whole.spec, parts.spec) and torch.equal(whole.noise, parts.noise)


def test_state_is_a_pure_function_of_seed_and_step(world):
    a = world.advance(world.initial_state(3, "2001-07-01T06"), 10)
    b = world.advance(world.initial_state(3, "2001-07-01T06"), 10)
    c = world.advance(world.initial_state(4, "2001-07-01T06"), 10)
    assert torch.equal(a.spec, b.spec)
    assert not torch.equal(a.spec, c.spec)
    assert world.time_of(a.step) == np.datetime64("2001-07-01T07:15")


def test_noise_is_band_limited_with_unit_rms():
    noise = wf.band_noise(7, 123, lmax=21, mmax=21, band=(6, 12))
    power = noise.abs() ** 2
    assert power[:6].sum() == 0 and power[13:].sum() == 0 and torch.triu(power, 1).sum() == 0
    assert float(wf.spectral_mean_square(noise)) == pytest.approx(1.0, rel=1e-12)
    assert torch.equal(noise, wf.band_noise(7, 123, lmax=21, mmax=21, band=(6, 12)))
    assert not torch.equal(noise, wf.band_noise(7, 124, lmax=21, mmax=21, band=(6, 12)))


def test_fields_round_trip(world, state):
    fields = world.fields(state)
    again = world.fields(world.from_fields(fields, time=world.time_of(state.step), seed=0))
    # torch-harmonics 0.8.1's vector transforms invert each other to ~3e-8 only
    for got, want in zip(again, fields, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-7 * np.abs(want).max())
    with pytest.raises(DataError, match="shape"):
        world.from_fields(fields[:3], time="2000-01-01", seed=0)


def test_tracer_gradient_is_exact_for_sin_lat(world):
    """The ivsht of (0, T / a) is grad T: for T = sin(lat) it is (0, cos(lat) / a).

    Exact up to torch-harmonics 0.8.1's ~3e-8 relative error of its vector transforms.
    """
    lat = world.lats.unsqueeze(1).expand(world.grid.shape)
    spec = world.solver.grid2spec(torch.sin(lat).contiguous())
    grad = world.solver.ivsht(torch.stack((torch.zeros_like(spec), world._grad_factor * spec)))
    expected = torch.cos(lat) / world.radius
    assert float(grad[0].abs().max()) < 1e-20
    assert float((grad[1] - expected).abs().max()) < 1e-7 * float(expected.max())  # see above


def test_seasons_move_jets_and_thermal_equator(world):
    january = world.equilibrium(world.step_of("2000-01-15T00"))
    july = world.equilibrium(world.step_of("2000-07-15T00"))
    lat = np.degrees(world.lats.numpy())
    u_jan, u_jul = (world.fields(WorldState(0, 0, eq, (), eq[1]))[1][:, 0] for eq in (january, july))
    north = lat > 0
    # the winter jet is stronger and nearer the equator than the summer jet
    assert u_jan[north].max() > 1.3 * u_jul[north].max()
    assert lat[north][u_jan[north].argmax()] < lat[north][u_jul[north].argmax()] - 15
    t_jan = world.solver.spec2grid(january[3])[:, 0].numpy()
    assert -15 < lat[t_jan.argmax()] < -5  # thermal equator in the summer (south) hemisphere
    assert t_jan[0] < t_jan[-1] - 30  # the winter pole is colder


def test_equiangular_grid_with_poles_runs():
    world = ShallowWaterWorld(WorldConfig(grid="33x64:equiangular"))
    state = world.spin_up(world.initial_state(0, "2000-01-01T00"), 3)
    fields = world.fields(state)
    assert fields.shape == (4, 33, 64) and np.isfinite(fields).all()
    assert world.diagnostics(state)["mean_phi"] == pytest.approx(G * 1e4, rel=1e-12)


def test_blow_up_raises_data_error(world, state):
    bad = dataclasses.replace(state, spec=state.spec * float("nan"))
    with pytest.raises(DataError, match="blew up"):
        world.advance(bad, 1)


def test_twin_runs_diverge(world, world_store):
    """Chaos: a vorticity perturbation of grid rms 1e-8 s-1 grows >= 100x within 60 days.

    Same forcing sequence in both runs (same seed). Measured: ~1e3x growth, doubling ~6 days.
    """
    base = _from_store(world, world_store, 0)
    gen = torch.Generator().manual_seed(1)
    pert = torch.tril(world.solver.grid2spec(torch.randn(world.grid.shape, generator=gen, dtype=torch.float64)))
    pert *= 1e-8 / wf.spectral_mean_square(pert).sqrt()
    twin = dataclasses.replace(base, spec=base.spec + torch.stack((0 * pert, pert, 0 * pert, 0 * pert)))
    errors = []
    for _ in range(60):
        base, twin = world.spin_up(base, 1), world.spin_up(twin, 1)
        errors.append(_rms_h(world, base, twin))
    errors = np.array(errors)
    growth = errors[-1] / errors[0]
    days = np.arange(1, 61)
    growing = (days >= 2) & (errors < 0.3 * errors.max())  # before saturation
    doubling = math.log(2) / np.polyfit(days[growing], np.log(errors[growing]), 1)[0]
    print(f"twin rms h difference (m): day 1 {errors[0]:.3g}, 10 {errors[9]:.3g}, 30 {errors[29]:.3g}, "
          f"60 {errors[-1]:.3g}; growth {growth:.0f}x, doubling time {doubling:.1f} days")
    assert growth >= 100
