"""Models behind the engine's :class:`~hens.forecast.protocols.Stepper` protocol.

* :class:`CheckpointStepper`: an SFNO checkpoint. A deterministic one ignores seeds; a
  stochastic one gives each member its own generator on the model's device, seeded from the
  member's ``model-noise`` stream and carried across steps (so step k's noise is the k-th draw
  of the member's stream, whatever batch and rank it runs in; on CUDA the generator is
  Philox, counter-based, and the noise never crosses the host-device link). On CPU the
  numbers are those of earlier versions (a CPU generator per member).
* :class:`PhysicsStepper`: the world's shallow-water solver (``models: [physics]``), one
  solver state per member, forcing noise seeded from the member's ``physics-noise`` stream.
  The physics ensemble thus runs through the same engine and store layout as the SFNOs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from hens.forecast.channels import WORLD_CHANNELS
from hens.forecast.errors import DataError
from hens.forecast.members import Stream
from hens.forecast.types import check_choice
from hens.models.checkpoint import Checkpoint
from hens.models.noise import make_generator
from hens.models.shallow_water import ShallowWaterWorld, WorldConfig, WorldState
from hens.models.stepper import Stepper as ModelStepper
from hens.models.training_data import SIX_HOURS
from hens.models.types import Precision


_AUTOCAST = {"bfloat16": torch.bfloat16, "float16": torch.float16}


class _NetworkRollout:
    def __init__(
        self, model: ModelStepper, x: torch.Tensor, generators: list[torch.Generator] | None, time: np.datetime64,
        precision: Precision,
    ) -> None:
        self.model, self.x, self.generators, self.precision = model, x, generators, precision
        self.time = np.datetime64(time, "ns")  # valid time of ``x`` (the model's forcings need it)

    def step(self) -> torch.Tensor:
        dtype = _AUTOCAST.get(self.precision)
        with torch.autocast(self.x.device.type, dtype=dtype, enabled=dtype is not None):
            x = self.model(self.x, self.generators, time=self.time)  # no generators: deterministic
        self.x = x.float()  # the state stays float32 (x + tendency_std * dz promotes already)
        self.time = self.time + SIX_HOURS
        return self.x


class CheckpointStepper:
    """A loaded checkpoint as an ensemble stepper, on the device of its model.

    ``precision``: ``"float32"``, or autocast of the network to ``"bfloat16"``/``"float16"``
    (GEMMs and activations; the spherical transforms and the spectral contraction stay
    float32, and the state is float32 between steps). Accuracy cost: docs/gpu.md.
    """

    def __init__(self, ckpt: Checkpoint, *, precision: Precision = "float32") -> None:
        check_choice("precision", precision, Precision)
        self.precision = precision
        self.name = ckpt.path.name
        self.grid = ckpt.grid
        self.channels = ckpt.channels
        self.noise_stream: Stream | None = "model-noise" if ckpt.stochastic else None
        self.model = ckpt.stepper()
        self.device = next(self.model.parameters()).device

    def start(self, x: torch.Tensor, *, init_time: np.datetime64, seeds: Sequence[int]) -> _NetworkRollout:
        generators = [make_generator(s, self.device) for s in seeds] if self.noise_stream else None
        return _NetworkRollout(self.model, x.to(self.device, torch.float32), generators, init_time, self.precision)


class _PhysicsRollout:
    def __init__(self, world: ShallowWaterWorld, states: list[WorldState]) -> None:
        self.world, self.states = world, states

    def step(self) -> torch.Tensor:
        n = self.world.config.steps_per_save
        self.states = [self.world.advance(s, n) for s in self.states]
        return torch.from_numpy(np.stack([self.world.fields(s) for s in self.states])).to(torch.float32)


class PhysicsStepper:
    """The world's solver (float64 spectral state per member) on CPU.

    Parameters
    ----------
    config
        The world's settings, e.g. from :func:`world_config_from_attrs` of its store.
    """

    name = "physics"
    channels = WORLD_CHANNELS
    noise_stream: Stream | None = "physics-noise"

    def __init__(self, config: WorldConfig) -> None:
        self.world = ShallowWaterWorld(config)
        self.grid = self.world.grid

    def start(self, x: torch.Tensor, *, init_time: np.datetime64, seeds: Sequence[int]) -> _PhysicsRollout:
        fields = x.detach().cpu().to(torch.float64)
        states = [self.world.from_fields(f, time=init_time, seed=int(s)) for f, s in zip(fields, seeds, strict=True)]
        return _PhysicsRollout(self.world, states)


def world_config_from_attrs(attrs: Mapping[str, Any], *, where: str) -> WorldConfig:
    """The :class:`WorldConfig` recorded in a world store's attributes (``world_*``, ``grid``)."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(WorldConfig):
        if not f.init:
            continue
        key = "grid" if f.name == "grid" else f"world_{f.name}"
        if key not in attrs:
            raise DataError(f"models: [physics] needs a hens world store; {where} lacks the attribute {key}")
        values[f.name] = attrs[key]
    lo, hi = str(values["noise_band"]).split("..")
    values["noise_band"] = (int(lo), int(hi))
    return WorldConfig(**values)
