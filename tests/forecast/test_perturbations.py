"""Perturbations: hemispheric norm, bred vectors (+/- pairs, amplitude, seeding), Gaussian fields, clipping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from hens.forecast.grids import parse_grid
from hens.forecast.members import MemberId
from hens.forecast.perturb import (
    BredVector,
    GaussianPerturbation,
    band_rows,
    clip_physical,
    hemispheric_norm,
    rescale,
)
from hens.forecast.protocols import Perturbation, Stepper
from hens.models.sfno.noise import SphericalNoise

torch.set_num_threads(1)
GRID = parse_grid("16x32")
CHANNELS = ("z500", "u500", "q700")
AMPLITUDE = torch.tensor([300.0, 2.0, 1e-4], dtype=torch.float64)
T0 = np.datetime64("2000-01-03T00", "ns")


class WaveSource:
    """Analytic analyses: a travelling wave per channel around a typical value."""

    grid, channels = GRID, CHANNELS
    times = np.datetime64("2000-01-01T00", "ns") + np.arange(40) * np.timedelta64(6, "h")

    def __call__(self, times, channels):
        t = ((np.asarray(times, "datetime64[ns]") - self.times[0]) / np.timedelta64(1, "D"))[:, None, None, None]
        lat, lon = np.radians(GRID.lat)[:, None], np.radians(GRID.lon)[None, :]
        base = np.array([5.5e4, 10.0, 2e-3])[None, :, None, None]
        scale = np.array([1e3, 10.0, 1e-3])[None, :, None, None]
        values = base + scale * np.cos(lat) * np.sin(2 * lon - 0.5 * t)
        return xr.DataArray(values.astype(np.float32), dims=("time", "channel", "lat", "lon"))


class ToyRollout:
    def __init__(self, x, seeds):
        self.x, self.seeds = x, seeds

    def step(self):
        # nonlinear (so perturbations grow unevenly) plus seeded per-row noise
        noise = torch.stack([torch.randn(self.x.shape[1:], generator=torch.Generator().manual_seed(s))
                             for s in self.seeds])
        scale = torch.tensor([50.0, 0.5, 1e-5]).view(1, -1, 1, 1)
        self.x = self.x + scale * (torch.sin(self.x / (4 * scale)).roll(1, dims=-1) + 0.1 * noise)
        return self.x


class ToyStepper:
    name, grid, channels, noise_stream = "toy", GRID, CHANNELS, "model-noise"

    def start(self, x, *, init_time, seeds):
        return ToyRollout(x.clone(), list(seeds))


def _bred(centred=True, cycles=3):
    noise = SphericalNoise(GRID, [500.0] * len(CHANNELS))
    return BredVector(WaveSource(), noise, AMPLITUDE, cycles=cycles, base_seed=0, centred=centred)


def _ids(*qs_signs, c=0):
    return [MemberId(c=c, q=q, sgn=sgn, s=0) for q, sgn in qs_signs]


def test_protocols_are_satisfied():
    assert isinstance(ToyStepper(), Stepper)
    assert isinstance(_bred(), Perturbation)


def test_hemispheric_norm_is_per_band_and_linear_in_the_tropics():
    n = band_rows(GRID.nlat)
    assert n == int(70 / 180 * 16) == 6
    d = torch.zeros(1, 2, *GRID.shape)
    d[:, 0, :n] = 3.0
    d[:, 0, -n:] = -5.0  # tropics zero: they do not enter the norm
    d[:, 1] = 2.0
    norm = hemispheric_norm(d, GRID)[0, :, :, 0]
    assert torch.allclose(norm[0, :n], torch.tensor(3.0, dtype=torch.float64))
    assert torch.allclose(norm[0, -n:], torch.tensor(5.0, dtype=torch.float64))
    assert torch.allclose(norm[0, n:-n], torch.linspace(3.0, 5.0, GRID.nlat - 2 * n, dtype=torch.float64))
    assert torch.allclose(norm[1], torch.tensor(2.0, dtype=torch.float64))
    assert (hemispheric_norm(torch.zeros(1, 1, *GRID.shape), GRID) == 1).all()  # zero field: no NaN


def test_rescale_gives_each_channel_its_amplitude_in_both_hemispheres():
    scale = torch.tensor([1e4, 1.0, 1e-6]).view(1, 3, 1, 1)
    d = torch.randn(2, 3, *GRID.shape, generator=torch.Generator().manual_seed(1)) * scale
    norm = hemispheric_norm(rescale(d, AMPLITUDE, GRID), GRID)[..., 0]
    n = band_rows(GRID.nlat)
    for rows in (slice(0, n), slice(-n, None)):
        torch.testing.assert_close(norm[..., rows], AMPLITUDE.view(1, 3, 1).expand(2, 3, n), rtol=1e-6, atol=0)


def test_centred_pairs_are_exact_negatives_with_the_amplitude_as_norm():
    p = _bred()(T0, _ids((0, 0), (0, 1), (1, 0), (1, 1)), checkpoint=0, stepper=ToyStepper())
    assert p.shape == (4, 3, *GRID.shape) and p.dtype == torch.float32
    assert torch.equal(p[1], -p[0]) and torch.equal(p[3], -p[2])
    assert not torch.equal(p[0], p[2])
    n = band_rows(GRID.nlat)
    norm = hemispheric_norm(p, GRID)[..., 0]
    torch.testing.assert_close(norm[..., :n], AMPLITUDE.view(1, 3, 1).expand(4, 3, n), rtol=1e-5, atol=0)
    torch.testing.assert_close(norm[..., -n:], AMPLITUDE.view(1, 3, 1).expand(4, 3, n), rtol=1e-5, atol=0)


def test_a_pair_gets_the_same_vector_whatever_the_batch():
    bred, stepper = _bred(), ToyStepper()
    alone = bred(T0, _ids((3, 1)), checkpoint=1, stepper=stepper)
    batch = bred(T0, _ids((0, 0), (3, 0), (2, 1), (3, 1)), checkpoint=1, stepper=stepper)
    assert torch.equal(batch[3], alone[0]) and torch.equal(batch[1], -alone[0])
    other_checkpoint = bred(T0, _ids((3, 1)), checkpoint=0, stepper=stepper)
    other_time = bred(T0 + np.timedelta64(6, "h"), _ids((3, 1)), checkpoint=1, stepper=stepper)
    assert not torch.equal(other_checkpoint, alone) and not torch.equal(other_time, alone)


class DeterministicToyStepper(ToyStepper):
    """The toy model without noise (it ignores seeds); counts the rows of each call."""

    noise_stream = None

    def __init__(self):
        self.rows = []

    def start(self, x, *, init_time, seeds):
        self.rows.append(x.shape[0])
        return ToyRollout(x.clone(), [0] * len(seeds))


def test_a_deterministic_model_runs_its_control_once_per_checkpoint_and_time():
    from hens.forecast.perturb.bred import breed, breeding_times

    bred, stepper = _bred(), DeterministicToyStepper()
    batch = bred(T0, _ids((0, 0), (0, 1), (1, 0), (2, 1)), checkpoint=0, stepper=stepper)
    assert stepper.rows == [1] * 3 + [1] * 3 * 3  # 3 control rows, then one row per pair and cycle
    stepper.rows.clear()
    later = bred(T0, _ids((5, 0)), checkpoint=0, stepper=stepper)  # the next batch: controls kept
    assert stepper.rows == [1] * 3
    # the same vectors as breeding each pair beside its own control run (the definition)
    times = breeding_times(T0, 3)
    analyses = torch.from_numpy(WaveSource()(times, CHANNELS).values)
    from hens.forecast.members import Stream, stream_seed
    from hens.forecast.perturb.gaussian import seed_field

    for q, got in ((0, batch[0]), (2, -batch[3]), (5, later[0])):
        seed = seed_field(bred.noise, stream_seed(0, T0, Stream.BRED_SEED, 0, q))
        want = breed(stepper, analyses, times, seed, AMPLITUDE, GRID, [0, 0, 0])
        unit = AMPLITUDE.float().view(-1, 1, 1)  # each channel in units of its amplitude
        torch.testing.assert_close(got / unit, want / unit, rtol=0, atol=1e-5)
        assert not torch.equal(got, torch.zeros_like(got))
    # and a pair's bits do not depend on the batch, nor on what was bred before
    fresh = _bred()(T0, _ids((2, 1)), checkpoint=0, stepper=DeterministicToyStepper())
    assert torch.equal(fresh[0], batch[3])


class LinearRollout:
    """x -> x + 3 x' along longitude, x' the zonal wavenumber-3 part: a linear model whose
    leading mode is wavenumber 3 (growth 4 per step) while every other component is kept."""

    def __init__(self, x):
        self.x = x

    def step(self):
        c = torch.fft.rfft(self.x.double(), dim=-1)
        grow = torch.zeros(c.shape[-1], dtype=torch.float64)
        grow[3] = 3.0
        self.x = (self.x.double() + torch.fft.irfft(c * grow, n=self.x.shape[-1], dim=-1)).float()
        return self.x


class LinearStepper(ToyStepper):
    def __init__(self, noise_stream):
        self.noise_stream = noise_stream

    def start(self, x, *, init_time, seeds):
        return LinearRollout(x.clone())


@pytest.mark.parametrize("noise_stream", [None, "model-noise"])
def test_bred_vectors_of_a_linear_model_converge_to_its_leading_mode(noise_stream):
    """Breeding is a power iteration: after 8 cycles (contamination 4^-8 in amplitude) every
    row of every channel is the model's growing mode, zonal wavenumber 3, and the hemispheric
    norm is the amplitude -- with the shared control run of a deterministic model and with the
    control beside each pair."""
    p = _bred(cycles=8)(T0, _ids((0, 0), (4, 1)), checkpoint=0, stepper=LinearStepper(noise_stream))
    power = torch.fft.rfft(p.double(), dim=-1).abs() ** 2
    share = power[..., 3] / power.sum(-1)
    n = band_rows(GRID.nlat)
    assert share.min() > 0.999, share.min()
    norm = hemispheric_norm(p, GRID)[..., 0]
    torch.testing.assert_close(norm[..., :n], AMPLITUDE.view(1, 3, 1).expand(2, 3, n), rtol=1e-5, atol=0)
    seed_power = torch.fft.rfft(_bred(cycles=1)(T0, _ids((0, 0)), checkpoint=0,
                                                stepper=LinearStepper(noise_stream)).double(), dim=-1).abs() ** 2
    assert (seed_power[..., 3] / seed_power.sum(-1)).min() < 0.9  # one cycle is not enough: breeding did it


def test_breeding_changes_the_seed_field():
    stepper = ToyStepper()
    one, three = (_bred(cycles=k)(T0, _ids((0, 0)), checkpoint=0, stepper=stepper) for k in (1, 3))
    assert not torch.equal(one, three) and torch.isfinite(three).all()


def test_uncentred_bred_vectors_differ_within_a_pair():
    p = _bred(centred=False)(T0, _ids((0, 0), (0, 1)), checkpoint=0, stepper=ToyStepper())
    assert not torch.equal(p[0], -p[1]) and not torch.equal(p[0], p[1])
    assert _bred(centred=False).kind == "bred_vector" and _bred().kind == "hemispheric_bred_vector"


def test_gaussian_pairs_are_centred_with_per_channel_amplitude():
    noise = SphericalNoise(GRID, [500.0] * len(CHANNELS))
    gauss = GaussianPerturbation(noise, AMPLITUDE, base_seed=0)
    p = gauss(T0, _ids((0, 0), (0, 1), (5, 0)), checkpoint=0, stepper=ToyStepper())
    assert torch.equal(p[1], -p[0]) and not torch.equal(p[0], p[2])
    ratio = p.std(dim=(0, 2, 3)).double() / AMPLITUDE
    assert ((ratio > 0.5) & (ratio < 1.5)).all(), ratio  # unit-variance field times A_c
    again = gauss(T0, _ids((5, 0)), checkpoint=0, stepper=ToyStepper())
    assert torch.equal(again[0], p[2])


def test_humidity_is_clipped_identically_for_both_signs():
    x = torch.tensor([-1.0, 1.0]).view(2, 1, 1, 1).expand(2, 3, *GRID.shape)
    out = clip_physical(x, CHANNELS)
    assert (out[0, 2] == 0).all() and (out[1, 2] == 1).all()
    assert (out[:, :2] == x[:, :2]).all() and (x[0, 2] == -1).all()  # input left alone
