"""Checkpoints: weights_only round trip, compatibility checks, one-line errors; the Stepper."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hens.forecast.errors import CheckpointError, ConfigError, GridMismatch
from hens.models.checkpoint import (
    REQUIRED_KEYS,
    build_model,
    describe,
    description_sha256,
    load_checkpoint,
    save_checkpoint,
)
from hens.models.compatibility import check_compatible, check_ensemble
from hens.models.sfno.network import SFNO, SFNOConfig
from hens.models.sfno.noise import make_generator
from hens.models.sfno.stochastic import StochasticSFNO, StochasticSFNOConfig
from hens.models.stepper import Stepper

torch.set_num_threads(1)
CHANNELS = ("z500", "u500", "v500", "t2m")
STATS = dict(mean=[5.4e4, 10.0, 0.0, 280.0], std=[3e3, 15.0, 10.0, 20.0], tendency_std=[300.0, 5.0, 5.0, 2.0])


class Custom:
    """Not a tensor: unpickling it would run arbitrary code paths."""

    def __init__(self) -> None:
        self.value = 1


def _save(path, model=None, channels=CHANNELS, grid="16x32", seed=3):
    model = model or SFNO(SFNOConfig(len(channels), len(channels), grid=grid, embed_dim=8, num_layers=2))
    sha = description_sha256({"source": "world.zarr", "channels": list(channels)})
    stats = {k: v[: len(channels)] for k, v in STATS.items()}
    return save_checkpoint(path, model, channels=channels, seed=seed, data_sha256=sha,
                           extra={"steps": 10, "losses": [1.0, 0.5]}, **stats), model


def test_round_trip_with_weights_only(tmp_path):
    path, model = _save(tmp_path / "a.pt")
    raw = torch.load(path, weights_only=True)
    assert set(REQUIRED_KEYS) <= set(raw) and raw["grid"] == "16x32" and raw["seed"] == 3
    ckpt = load_checkpoint(path)
    assert ckpt.channels == CHANNELS and ckpt.grid.spec == "16x32" and ckpt.kind == "sfno"
    assert ckpt.extra == {"steps": 10, "losses": [1.0, 0.5]} and len(ckpt.sha256) == 64
    assert ckpt.data_sha256 == description_sha256({"channels": list(CHANNELS), "source": "world.zarr"})
    assert not ckpt.model.training
    x = torch.randn(2, 4, 16, 32)
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model(x), model(x), rtol=0, atol=0)
        stepper = ckpt.stepper()
        phys = torch.tensor(STATS["mean"]).view(1, 4, 1, 1) + x * 10
        expected = phys + torch.tensor(STATS["tendency_std"]).view(1, 4, 1, 1) * model(
            (phys - torch.tensor(STATS["mean"]).view(1, 4, 1, 1)) / torch.tensor(STATS["std"]).view(1, 4, 1, 1)
        )
        torch.testing.assert_close(stepper(phys), expected)


def test_stochastic_round_trip(tmp_path):
    base = SFNOConfig(4, 4, grid="16x32", embed_dim=8, num_layers=2, norm="layer")
    model = StochasticSFNO(StochasticSFNOConfig(base, noise_lengths_km=(700.0, 3000.0), injection="both"))
    path, _ = _save(tmp_path / "s.pt", model=model)
    ckpt = load_checkpoint(path)
    assert ckpt.stochastic and ckpt.model.cfg == model.cfg
    x = torch.randn(1, 4, 16, 32)
    with torch.no_grad():
        assert torch.equal(ckpt.model(x, make_generator(1)), model.eval()(x, make_generator(1)))
    assert ckpt.config["noise_decorrelation_hours"] == 6.0
    assert "  noise     2 channels (700, 3000 km), injection both, AR(1), tau 6 h (phi 0.368 per step)" in describe(ckpt)


def test_a_stochastic_checkpoint_from_before_the_ar1_noise_keeps_its_bits(tmp_path):
    """A checkpoint whose config has no decorrelation time (written before it existed) draws
    white noise: the engine's rollout, which threads the noise state, gives the bits of the
    earlier engine, which let the model draw afresh from each member's generator every step."""
    from hens.pipelines.forecast.steppers import CheckpointStepper

    base = SFNOConfig(4, 4, grid="16x32", embed_dim=8, num_layers=2)
    path, _ = _save(tmp_path / "new.pt", model=StochasticSFNO(StochasticSFNOConfig(base, noise_decorrelation_hours=0)))
    payload = torch.load(path, weights_only=True)
    payload["model_config"] = {k: v for k, v in payload["model_config"].items() if k != "noise_decorrelation_hours"}
    assert payload["format_version"] == 2 and set(payload["model_config"]) == {"sfno", "noise_lengths_km", "injection"}
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    ckpt = load_checkpoint(old)
    assert ckpt.model.cfg.noise_decorrelation_hours == 0.0 and "white in time" in describe(ckpt)
    x0 = torch.tensor(STATS["mean"]).view(1, 4, 1, 1) + torch.randn(3, 4, 16, 32)
    seeds = [12, 40, 12]
    rollout = CheckpointStepper(ckpt).start(x0, init_time=np.datetime64("2000-01-01T00"), seeds=seeds)
    stepper, gens, x = ckpt.stepper(), [make_generator(s) for s in seeds], x0
    with torch.inference_mode():
        for _ in range(3):
            x = stepper(x, gens)  # the earlier engine's step
            assert torch.equal(rollout.step(), x)


def test_compatibility_with_sources_and_ensembles(tmp_path):
    a = load_checkpoint(_save(tmp_path / "a.pt")[0])
    b = load_checkpoint(_save(tmp_path / "b.pt", seed=4)[0])
    check_ensemble([a, b])
    check_compatible(a, SimpleNamespace(grid="16x32", channels=("t2m", "z500", "u500", "v500", "msl")))
    with pytest.raises(CheckpointError, match="needs channels v500, t2m that the data lack"):
        check_compatible(a, SimpleNamespace(grid="16x32", channels=("z500", "u500")))
    with pytest.raises(GridMismatch, match="a.pt is for grid 16x32, the data are on 32x64"):
        check_compatible(a, grid="32x64", channels=CHANNELS)
    other_channels = load_checkpoint(_save(tmp_path / "c.pt", channels=("z500", "u500", "v500", "t850"))[0])
    with pytest.raises(CheckpointError, match="c.pt has other channels than a.pt: has t850; lacks t2m"):
        check_ensemble([a, other_channels])
    other_grid = load_checkpoint(_save(tmp_path / "d.pt", grid="32x64")[0])
    with pytest.raises(GridMismatch, match="d.pt is for grid 32x64, a.pt for 16x32"):
        check_ensemble([a, b, other_grid])
    reordered = load_checkpoint(_save(tmp_path / "e.pt", channels=("u500", "z500", "v500", "t2m"))[0])
    with pytest.raises(CheckpointError, match="orders them u500, z500"):
        check_ensemble([a, reordered])


def test_truncated_file(tmp_path):
    path, _ = _save(tmp_path / "a.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_arbitrary_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "hens-checkpoint", "payload": Custom()}, path)
    with pytest.raises(CheckpointError, match="arbitrary Python objects") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)


def test_missing_keys_and_bad_contents(tmp_path):
    path, model = _save(tmp_path / "a.pt")
    raw = torch.load(path, weights_only=True)
    for key, value, match in [
        ("normalisation", None, "lacks normalisation"),
        ("model_kind", "unet", "unknown model kind 'unet'"),
        ("grid", "16 by 32", "bad grid"),
        ("format_version", 99, "upgrade hens"),
    ]:
        broken = dict(raw)
        if value is None:
            del broken[key]
        else:
            broken[key] = value
        torch.save(broken, path)
        with pytest.raises(CheckpointError, match=match):
            load_checkpoint(path)
    broken = dict(raw, state_dict={k: v for k, v in raw["state_dict"].items() if "encoder" not in k})
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_checkpoint(path)
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a hens checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_save_checks(tmp_path):
    model = SFNO(SFNOConfig(4, 4, grid="16x32", embed_dim=8, num_layers=1))
    kwargs = dict(seed=0, data_sha256="0" * 64, **STATS)
    with pytest.raises(ConfigError, match="3 channels"):
        save_checkpoint(tmp_path / "x.pt", model, channels=CHANNELS[:3], **kwargs)
    with pytest.raises(ConfigError, match="extra.when is a"):
        save_checkpoint(tmp_path / "x.pt", model, channels=CHANNELS, extra={"when": object()}, **kwargs)
    with pytest.raises(ConfigError, match="cannot checkpoint"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2), channels=CHANNELS, **kwargs)
    assert not list(tmp_path.iterdir())  # nothing half-written
    assert isinstance(build_model("sfno", model.cfg.to_dict()), SFNO)


def test_stepper_rejects_bad_statistics_and_generators():
    model = SFNO(SFNOConfig(2, 2, grid="16x32", embed_dim=4, num_layers=1))
    from hens.forecast.errors import DataError

    with pytest.raises(DataError, match="std must be finite and > 0"):
        Stepper(model, [0.0, 0.0], [1.0, 0.0], [1.0, 1.0])
    with pytest.raises(DataError, match="3 values for 2 channels"):
        Stepper(model, [0.0, 0.0], [1.0, 1.0], [1.0, 1.0, 1.0])
    stepper = Stepper(model, [0.0, 0.0], [1.0, 1.0], [1.0, 1.0])
    assert not stepper.stochastic
    with pytest.raises(ValueError, match="takes no generator"):
        stepper(torch.zeros(1, 2, 16, 32), make_generator(0))
