"""Inputs of published SFNO packages: the zenith angle, the static fields, the state-output step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hens.forecast.errors import DataError
from hens.forecast.grids import parse_grid
from hens.models.makani.static_fields import grid_fields, land_mask_fields, orography_field, static_fields
from hens.models.sfno.network import SFNO, SFNOConfig
from hens.models.stepper import Stepper
from hens.models.zenith import cos_zenith

torch.set_num_threads(1)
GRID = parse_grid("25x48:equiangular")


def _ephemeris64(t: np.datetime64, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """An independent float64 low-precision solar position (Astronomical Almanac form)."""
    d = (t - np.datetime64("2000-01-01T12:00", "ns")) / np.timedelta64(1, "D")
    g = np.radians((357.529 + 0.98560028 * d) % 360)
    ecl = np.radians((280.459 + 0.98564736 * d) % 360 + 1.915 * np.sin(g) + 0.020 * np.sin(2 * g))
    eps = np.radians(23.439 - 0.00000036 * d)
    ra = np.arctan2(np.cos(eps) * np.sin(ecl), np.cos(ecl))
    dec = np.arcsin(np.sin(eps) * np.sin(ecl))
    gmst = np.radians((280.46061837 + 360.98564736629 * d) % 360)
    hour = gmst + np.radians(lon)[None, :] - ra
    phi = np.radians(lat)[:, None]
    return np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(hour)


@pytest.mark.parametrize("when", ["2021-03-20T12:00", "2021-06-21T06:00", "1995-12-21T18:00", "2040-09-01T00:00"])
def test_zenith_agrees_with_a_float64_ephemeris_to_float32_sidereal_rounding(when):
    t = np.datetime64(when, "ns")
    got = cos_zenith(t, GRID.lat, GRID.lon)
    assert got.shape == (1, 25, 48) and got.dtype == np.float32
    # float32 sidereal time is good to ~0.25 degree of hour angle: |d cos z| <= sin(0.25 deg) ~ 0.0044
    np.testing.assert_allclose(got[0], _ephemeris64(t, GRID.lat, GRID.lon), atol=6e-3, rtol=0)


def test_zenith_one_field_per_time_and_noon_sun_overhead_at_equinox():
    times = np.array(["2021-03-20T12:00", "2021-03-21T00:00"], dtype="datetime64[ns]")
    z = cos_zenith(times, GRID.lat, GRID.lon)
    assert z.shape == (2, 25, 48)
    equator = z[0, 12]
    assert equator.max() > 0.999 and abs(GRID.lon[equator.argmax()] - 0.0) <= 7.5  # sun over Greenwich at noon
    assert z[1, 12].max() > 0.999 and abs(GRID.lon[z[1, 12].argmax()] - 180.0) <= 7.5


def test_grid_fields_interleave_latitude_and_longitude_sines():
    f = grid_fields(25, 48, 16)
    assert f.shape == (32, 25, 48) and f.dtype == torch.float32
    s_lat, s_lon = torch.arange(25) / 25.0, torch.arange(48) / 48.0
    for k in (1, 2, 16):
        torch.testing.assert_close(f[2 * (k - 1)], torch.sin(k * s_lat)[:, None].expand(25, 48))
        torch.testing.assert_close(f[2 * (k - 1) + 1], torch.sin(k * s_lon)[None, :].expand(25, 48))


def test_orography_is_minmax_scaled_then_standardised_with_the_unbiased_std():
    z = np.random.default_rng(0).gamma(2.0, 3000.0, size=(25, 48)).astype(np.float32)
    f = orography_field(z)[0].double()
    assert abs(f.mean()) < 1e-6 and abs(f.std(unbiased=True) - 1.0) < 1e-5
    assert abs(f.std(unbiased=False) - 1.0) > 1e-4  # the biased std would be a measurable mistake
    with pytest.raises(DataError, match="not constant"):
        orography_field(np.zeros((2, 4)))


def test_land_mask_is_a_one_hot_of_its_floor():
    lsm = np.array([[0.0, 0.3, 0.99, 1.0]])
    f = land_mask_fields(lsm)
    assert f.shape == (2, 1, 4)
    torch.testing.assert_close(f[1, 0], torch.tensor([0.0, 0.0, 0.0, 1.0]))  # 0.99 floors to sea
    s = static_fields(1, 4, grid_frequencies=1, land_mask=lsm)
    assert s.shape == (4, 1, 4)
    with pytest.raises(DataError, match="land mask has shape"):
        static_fields(2, 4, land_mask=lsm)


def test_a_state_output_stepper_feeds_zenith_and_static_fields_and_denormalises():
    c = 3
    static = static_fields(25, 48, grid_frequencies=2)
    cfg = SFNOConfig(c + 1 + 4, c, grid=GRID.spec, embed_dim=8, num_layers=2, scale_factor=2, norm="instance",
                     inner_skip="none", outer_skip="linear", layout="makani")
    model = SFNO(cfg).eval()
    mean, std = [5e4, 280.0, 1.0], [3e3, 20.0, 5.0]
    stepper = Stepper(model, mean, std, forcings=("cos_zenith",), output="state", static=static, lat=GRID.lat)
    x = torch.tensor(mean).view(1, c, 1, 1) + torch.tensor(std).view(1, c, 1, 1) * torch.randn(2, c, 25, 48)
    t = np.datetime64("2021-03-17T06:00", "ns")
    inputs = stepper.inputs(x, t)
    assert inputs.shape == (2, c + 1 + 4, 25, 48)
    torch.testing.assert_close(inputs[:, c], torch.from_numpy(cos_zenith(t, GRID.lat, GRID.lon)).expand(2, -1, -1))
    torch.testing.assert_close(inputs[:, c + 1:], static.expand(2, -1, -1, -1))
    with torch.no_grad():
        out = stepper(x, time=t)
        expected = model(inputs) * torch.tensor(std).view(1, c, 1, 1) + torch.tensor(mean).view(1, c, 1, 1)
    torch.testing.assert_close(out, expected)
    with pytest.raises(DataError, match="tendency std"):
        Stepper(model, mean, std)


def test_grid_fields_use_the_listed_angles_when_a_config_lists_them():
    lat, lon = GRID.lat, GRID.lon
    f = grid_fields(25, 48, 3, lat=lat, lon=lon)
    rad_lat = torch.deg2rad(torch.as_tensor(lat, dtype=torch.float32))
    torch.testing.assert_close(f[4], torch.sin(3 * rad_lat)[:, None].expand(25, 48))
