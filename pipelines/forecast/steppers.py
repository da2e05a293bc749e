"""Models behind the engine's :class:`~hens.forecast.protocols.Stepper` protocol.

* :class:`CheckpointStepper`: an SFNO checkpoint (or published package), loaded on first use
  within a rank's weight budget (:class:`ResidentModels`). A deterministic one ignores seeds; a
  stochastic one gives each member its own generator on the model's device, seeded from the
  member's ``model-noise`` stream and carried across steps, and holds the members' noise
  states, advanced once per step (AR(1) in time; step k's state is a function of the first k
  draws of the member's stream, whatever batch and rank it runs in; on CUDA the generator is
  Philox, counter-based, and the noise never crosses the host-device link). On CPU a model
  with white noise gives the numbers of earlier versions (a CPU generator per member).
* :class:`PhysicsStepper`: the world's shallow-water solver (``models: [physics]``), one
  solver state per member, forcing noise seeded from the member's ``physics-noise`` stream.
  The physics ensemble thus runs through the same engine and store layout as the SFNOs.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hens.forecast.channels import WORLD_CHANNELS
from hens.forecast.errors import DataError
from hens.forecast.members import Stream
from hens.forecast.types import STEP, check_choice
from hens.models.checkpoint import Checkpoint, CheckpointHeader, load_checkpoint
from hens.models.sfno.noise import make_generator
from hens.models.shallow_water.solver import ShallowWaterWorld, WorldConfig, WorldState
from hens.models.stepper import ModelStep
from hens.models.types import Precision


_AUTOCAST = {"bfloat16": torch.bfloat16, "float16": torch.float16}


class _NetworkRollout:
    def __init__(
        self, model: ModelStep, x: torch.Tensor, generators: list[torch.Generator] | None, time: np.datetime64,
        precision: Precision, noise_scale: float = 1.0,
    ) -> None:
        self.model, self.x, self.generators, self.precision = model, x, generators, precision
        self.time = np.datetime64(time, "ns")  # valid time of ``x`` (the model's forcings need it)
        self.noise: torch.Tensor | None = None  # the members' noise state (stochastic), float32
        self.noise_scale = noise_scale

    def step(self) -> torch.Tensor:
        dtype = _AUTOCAST.get(self.precision)
        if self.generators is not None:  # outside autocast: the state stays float32
            self.noise = self.model.next_noise(self.generators, self.x.shape[0], self.noise)
        with torch.autocast(self.x.device.type, dtype=dtype, enabled=dtype is not None):
            noise = self.noise
            if noise is not None and self.noise_scale != 1.0:
                # the state advances unscaled and is scaled where the network reads it (the same as
                # scaling every AR(1) innovation): the network saw unit-std noise in training, so
                # this widens or narrows the members' spread at inference only
                noise = noise * self.noise_scale
            x = self.model(self.x, noise=noise, time=self.time)  # no noise: deterministic
        self.x = x.float()  # the state stays float32 (x + tendency_std * dz promotes already)
        self.time = self.time + STEP
        return self.x


#: model weights a rank keeps loaded on the CPU; on a GPU, half of its memory
CPU_RESIDENT_BYTES = 8 << 30


class ResidentModels:
    """The checkpoints of a run, loaded when a batch first needs them and kept within a byte budget.

    A HENS ensemble has 29 published packages of ~9 GB each: no device holds them all. Each
    rank loads a checkpoint when one of its batches needs it and drops the least recently used
    ones while the loaded weights exceed ``budget_bytes`` (the one in use always stays). The
    engine deals each rank a contiguous run of batches, so a rank meets few checkpoints. A
    reloaded checkpoint has the same weights, so members do not depend on what was resident.

    Parameters
    ----------
    device
        Where the models run.
    budget_bytes
        Weight bytes to keep loaded; default :data:`CPU_RESIDENT_BYTES`, or half the GPU's memory.
    """

    def __init__(self, device: torch.device, budget_bytes: int | None = None) -> None:
        self.device = torch.device(device)
        if budget_bytes is None:
            budget_bytes = (torch.cuda.get_device_properties(self.device).total_memory // 2
                            if self.device.type == "cuda" else CPU_RESIDENT_BYTES)
        self.budget_bytes = int(budget_bytes)
        self._loaded: OrderedDict[Path, tuple[ModelStep, int]] = OrderedDict()
        self.sha256: dict[Path, str] = {}  # of every checkpoint loaded so far

    @property
    def loaded(self) -> tuple[Path, ...]:
        """Paths of the checkpoints loaded now, least recently used first."""
        return tuple(self._loaded)

    def release(self, path: Path | None = None) -> None:
        """Drop the checkpoint at ``path`` (every checkpoint: ``None``) until a batch needs it again."""
        if path is None:
            self._loaded.clear()
        else:
            self._loaded.pop(path, None)

    def get(self, path: Path) -> ModelStep:
        """The physical-units stepper of the checkpoint at ``path``, loading it if needed."""
        if path in self._loaded:
            self._loaded.move_to_end(path)
            return self._loaded[path][0]
        ckpt = load_checkpoint(path, map_location=self.device)
        self.sha256[path] = ckpt.sha256
        size = sum(p.numel() * p.element_size() for p in ckpt.model.parameters())
        while self._loaded and sum(b for _, b in self._loaded.values()) + size > self.budget_bytes:
            self._loaded.popitem(last=False)
        model = ckpt.stepper()
        self._loaded[path] = (model, size)
        return model


class CheckpointStepper:
    """A checkpoint as an ensemble stepper: loaded now (a :class:`Checkpoint`), or described by
    its header and loaded on first use through ``models`` (a :class:`ResidentModels`).

    ``precision``: ``"float32"``, or autocast of the network to ``"bfloat16"``/``"float16"``
    (GEMMs and activations; the spherical transforms and the spectral contraction stay
    float32, and the state is float32 between steps). Accuracy cost: docs/gpu.md.
    ``noise_scale``: factor on a stochastic model's noise draws (1: as trained; the YAML's
    ``noise_scale``, tuned by ``hens calibrate``); a deterministic model ignores it.
    """

    def __init__(
        self, ckpt: Checkpoint | CheckpointHeader, *, precision: Precision = "float32",
        models: ResidentModels | None = None, noise_scale: float = 1.0,
    ) -> None:
        check_choice("precision", precision, Precision)
        self.precision = precision
        self.noise_scale = float(noise_scale)
        self.name = ckpt.path.name
        self.grid = ckpt.grid
        self.channels = ckpt.channels
        self.noise_stream: Stream | None = Stream.MODEL_NOISE if ckpt.stochastic else None
        self._path, self._models = ckpt.path, models
        if isinstance(ckpt, Checkpoint):
            self._model: ModelStep | None = ckpt.stepper()
            self.device = next(self._model.parameters()).device
        elif models is None:
            raise ValueError("a stepper described by a header needs the ResidentModels that load it")
        else:
            self._model, self.device = None, models.device

    @property
    def model(self) -> ModelStep:
        """The physical-units model (loaded now if it is not)."""
        return self._model if self._model is not None else self._models.get(self._path)  # type: ignore[union-attr]

    def release(self) -> None:
        """Let the weights go when this rank needs them no more (a resident model only; one
        loaded up front stays)."""
        if self._models is not None:
            self._models.release(self._path)

    def with_noise_scale(self, noise_scale: float) -> CheckpointStepper:
        """This stepper with another noise factor, sharing its model (loaded or resident)."""
        other = copy.copy(self)
        other.noise_scale = float(noise_scale)
        return other

    def start(self, x: torch.Tensor, *, init_time: np.datetime64, seeds: Sequence[int]) -> _NetworkRollout:
        generators = [make_generator(s, self.device) for s in seeds] if self.noise_stream else None
        return _NetworkRollout(self.model, x.to(self.device, torch.float32), generators, init_time, self.precision,
                               self.noise_scale)


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
    noise_stream: Stream | None = Stream.PHYSICS_NOISE

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
