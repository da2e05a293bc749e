"""Forcing inputs: phases of the year and day, the Stepper's time argument, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hens.forecast.errors import CheckpointError, ConfigError, DataError
from hens.models.checkpoint import load_checkpoint, save_checkpoint
from hens.models.forcings import forcing_channels, forcing_fields, parse_forcings
from hens.models.sfno.network import SFNO, SFNOConfig
from hens.models.stepper import Stepper

torch.set_num_threads(1)
EPOCH = np.datetime64("1970-01-01T00", "ns")
DAY = np.timedelta64(86_400, "s")
STATS = dict(mean=[5.4e4, 280.0], std=[3e3, 20.0], tendency_std=[300.0, 2.0])


def test_year_progress_is_the_phase_of_a_365_25_day_year():
    quarter = EPOCH + np.timedelta64(int(365.25 / 4 * 86_400), "s")
    f = forcing_fields(["year_progress"], np.array([EPOCH, quarter, EPOCH + 4 * 365 * DAY + DAY]), 4, 8).double()
    assert f.shape == (3, 2, 4, 8)
    # constant in space; (sin, cos) = (0, 1) at the epoch, (1, 0) a quarter year later, (0, 1) four years later
    assert torch.equal(f, f[:, :, :1, :1].expand_as(f))
    torch.testing.assert_close(f[:, :, 0, 0], torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64),
                               atol=1e-6, rtol=0)


def test_day_progress_is_local_mean_solar_time():
    f = forcing_fields(["day_progress"], EPOCH + np.timedelta64(6, "h"), 2, 4).double()
    # lon 0, 90, 180, 270 E at 06 UTC: local 06, 12, 18, 24 h -> phases 1/4, 1/2, 3/4, 1
    expected_sin = torch.tensor([1.0, 0.0, -1.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(f[0, 0, 1], expected_sin, atol=1e-6, rtol=0)
    torch.testing.assert_close(f[0, 1, 0], torch.tensor([0.0, -1.0, 0.0, 1.0], dtype=torch.float64), atol=1e-6, rtol=0)


def test_names_are_checked():
    assert parse_forcings("none") == () and parse_forcings("year_progress, day_progress") == ("year_progress",
                                                                                               "day_progress")
    assert forcing_channels(("year_progress", "day_progress")) == 4
    with pytest.raises(ConfigError, match="unknown forcing solar_flux"):
        parse_forcings("solar_flux")
    with pytest.raises(ConfigError, match="repeat"):
        parse_forcings(["year_progress", "year_progress"])
    with pytest.raises(DataError, match="NaT"):
        forcing_fields(["year_progress"], np.array(["NaT"], "datetime64[ns]"), 2, 4)


def _stepper(forcings=("year_progress",)):
    torch.manual_seed(0)
    model = SFNO(SFNOConfig(2 + forcing_channels(forcings), 2, grid="8x16", embed_dim=8, num_layers=1))
    return Stepper(model, forcings=forcings, **STATS).eval()


def test_stepper_feeds_the_valid_time():
    stepper = _stepper()
    x = torch.tensor(STATS["mean"], dtype=torch.float32).view(1, 2, 1, 1) + torch.randn(3, 2, 8, 16)
    times = EPOCH + np.array([0, 90, 180]) * DAY
    with torch.no_grad():
        rows = stepper(x, time=times)
        one = stepper(x[1:2], time=times[1])
        later = stepper(x, time=times + 30 * DAY)
    torch.testing.assert_close(rows[1:2], one, rtol=0, atol=0)  # a row sees its own time only
    assert not torch.allclose(rows, later)  # the season changes the step
    with pytest.raises(ValueError, match="pass the valid time"):
        stepper(x)
    with pytest.raises(DataError, match="2 valid times for 3 states"):
        stepper(x, time=times[:2])


def test_checkpoint_keeps_forcings(tmp_path):
    stepper = _stepper(("year_progress", "day_progress"))
    path = save_checkpoint(tmp_path / "f.pt", stepper.model, channels=("z500", "t2m"), seed=0, data_sha256="x",
                           forcings=stepper.forcings, **STATS)
    ckpt = load_checkpoint(path)
    assert ckpt.forcings == ("year_progress", "day_progress")
    x = torch.tensor(STATS["mean"], dtype=torch.float32).view(1, 2, 1, 1) + torch.randn(2, 2, 8, 16)
    with torch.no_grad():
        t = EPOCH + np.array([3, 200]) * DAY
        torch.testing.assert_close(ckpt.stepper()(x, time=t), stepper(x, time=t), rtol=0, atol=0)
    with pytest.raises(ConfigError, match="forcings"):  # 2 channels and no forcings do not fill 6 inputs
        save_checkpoint(tmp_path / "g.pt", stepper.model, channels=("z500", "t2m"), seed=0, data_sha256="x", **STATS)
    raw = torch.load(path, weights_only=True)
    raw["forcings"] = ["year_progress"]
    torch.save(raw, tmp_path / "h.pt")
    with pytest.raises(CheckpointError, match="does not fit 2 channels and forcings"):
        load_checkpoint(tmp_path / "h.pt")


def test_checkpoint_without_forcings_key_loads_as_none(tmp_path):
    """Checkpoints written before forcings existed (format 1) still load and step without times."""
    stepper = _stepper(())
    path = save_checkpoint(tmp_path / "old.pt", stepper.model, channels=("z500", "t2m"), seed=0, data_sha256="x",
                           **STATS)
    raw = torch.load(path, weights_only=True)
    del raw["forcings"]
    raw["format_version"] = 1
    torch.save(raw, path)
    ckpt = load_checkpoint(path)
    assert ckpt.forcings == ()
    x = torch.tensor(STATS["mean"], dtype=torch.float32).view(1, 2, 1, 1) + torch.randn(1, 2, 8, 16)
    with torch.no_grad():
        torch.testing.assert_close(ckpt.stepper()(x), stepper(x), rtol=0, atol=0)
