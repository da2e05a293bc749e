"""The options of one ``hens train`` run (:class:`TrainConfig`) and the network they build."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hens.forecast.errors import ConfigError
from hens.forecast.types import check_choice
from hens.models.forcings import DEFAULT_FORCINGS, check_forcings, forcing_channels
from hens.models.sfno.network import SFNOConfig
from hens.models.sfno.noise import DEFAULT_DECORRELATION_HOURS
from hens.models.training.periods import check_periods
from hens.models.training.schedule import DECAY_FRACTION
from hens.models.types import DeterministicLoss, NoiseInjection


def check_input_options(input_noise_degrees: int | None, pushforward: int, pushforward_degrees: int | None) -> None:
    """The rules of ``--input-noise-degrees``, ``--pushforward`` and ``--pushforward-degrees``
    (checked by :class:`TrainConfig`, and by ``hens demo`` before it builds a world)."""
    if input_noise_degrees is not None and int(input_noise_degrees) < 1:
        raise ConfigError(f"--input-noise-degrees {input_noise_degrees} must be >= 1")
    if int(pushforward) < 1:
        raise ConfigError(f"--pushforward {pushforward} must be >= 1")
    if pushforward_degrees is not None and (int(pushforward_degrees) < 0 or pushforward == 1):
        raise ConfigError(f"--pushforward-degrees {pushforward_degrees} needs --pushforward K > 1 and must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """Options of one training run (see :func:`train`); validated on construction."""

    data: tuple[str, ...]
    out: Path
    seed: int = 0
    stochastic: bool = False
    loss: DeterministicLoss = "mse"
    minutes: float | None = None
    steps: int | None = None
    rollout: int = 1
    rollout_fraction: float = 0.25
    pushforward: int = 1
    pushforward_degrees: int | None = None
    batch: int = 8
    lr: float = 2e-3
    members: int = 4
    alpha: float = 0.95
    spectral_weight: float = 1.0  # chosen by measurement: docs/models.md, "The stochastic recipe"
    injection: NoiseInjection = "input"
    noise_decorrelation_hours: float = DEFAULT_DECORRELATION_HOURS
    input_noise: float = 0.0
    input_noise_km: float = 1000.0
    input_noise_degrees: int | None = None
    channels: tuple[str, ...] | None = None
    forcings: tuple[str, ...] = DEFAULT_FORCINGS
    val_days: float | None = None
    train_period: str | None = None
    valid_period: str | None = None
    cache_mb: float = 1024.0
    embed_dim: int = 64
    num_layers: int = 4
    scale_factor: int = 1
    init_from: Path | None = None
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if (self.minutes is None) == (self.steps is None):
            raise ConfigError("pass exactly one of --minutes M or --steps N")
        if self.minutes is not None and self.minutes <= 0:
            raise ConfigError(f"--minutes {self.minutes} must be > 0")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps {self.steps} must be >= 1")
        for name in ("rollout", "batch", "embed_dim", "num_layers", "scale_factor"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)} must be >= 1")
        check_choice("--loss", self.loss, DeterministicLoss)
        check_input_options(self.input_noise_degrees, self.pushforward, self.pushforward_degrees)
        object.__setattr__(self, "forcings", check_forcings(self.forcings))
        if self.stochastic and self.loss != "mse":
            raise ConfigError(f"--loss {self.loss} is for deterministic models; stochastic ones train with CRPS")
        check_choice("--injection", self.injection, NoiseInjection)
        if not 0.0 <= self.noise_decorrelation_hours < float("inf"):
            raise ConfigError(f"--noise-decorrelation-hours {self.noise_decorrelation_hours} must be finite and >= 0")
        if not 0.0 <= self.input_noise < float("inf"):
            raise ConfigError(f"--input-noise {self.input_noise} must be finite and >= 0")
        if not 0.0 < self.input_noise_km < float("inf"):
            raise ConfigError(f"--input-noise-km {self.input_noise_km} must be finite and > 0")
        if self.stochastic and self.members < 2:
            raise ConfigError(f"--members {self.members}: stochastic training needs at least 2 members")
        if not 0.0 <= self.rollout_fraction <= DECAY_FRACTION or not 0.0 <= self.alpha <= 1.0 or self.lr <= 0:
            raise ConfigError(f"need 0 <= rollout_fraction <= {DECAY_FRACTION}, 0 <= alpha <= 1 and lr > 0")
        if not 0.0 <= self.spectral_weight < float("inf"):
            raise ConfigError(f"--spectral-weight {self.spectral_weight} must be >= 0")
        if self.val_days is not None and self.val_days <= 0:
            raise ConfigError(f"--val-days {self.val_days} must be > 0")
        check_periods(self.train_period, self.valid_period, val_days=self.val_days)
        if self.cache_mb < 0:
            raise ConfigError(f"--cache-mb {self.cache_mb} must be >= 0")
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"--seed {self.seed} must be in [0, 2**63)")
        if self.init_from is not None:
            object.__setattr__(self, "init_from", Path(self.init_from))
            if not self.init_from.is_file():
                raise ConfigError(f"--init-from {self.init_from} does not exist")

    @property
    def resume_path(self) -> Path:
        return self.out.with_name(self.out.name + ".resume")

    @property
    def curve_path(self) -> Path:
        return self.out.with_suffix(".loss.png")

    def options(self) -> dict[str, Any]:
        """What made a checkpoint: :meth:`identity` plus the budget (recorded as ``extra["options"]``)."""
        return {**self.identity(), "minutes": self.minutes, "steps": self.steps}

    def identity(self) -> dict[str, Any]:
        """Options that must match for a run to resume (not the budget, paths or display)."""
        skip = {"out", "minutes", "steps", "overwrite", "progress", "cache_mb", "init_from"}  # cache_mb: same bits
        # unset periods, and noise options that a run does not use or that have the values of
        # the runs before these options existed, are left out: those resume files stay valid
        skip |= {k for k in ("train_period", "valid_period") if getattr(self, k) is None}
        skip |= {"input_noise", "input_noise_km", "input_noise_degrees"} if self.input_noise == 0.0 else set()
        skip |= {"input_noise_degrees"} if self.input_noise_degrees is None else set()
        skip |= {"pushforward"} if self.pushforward == 1 else set()
        skip |= {"pushforward_degrees"} if self.pushforward_degrees is None else set()
        skip |= {k for k, before in (("injection", "input"), ("noise_decorrelation_hours", 0.0))
                 if not self.stochastic or getattr(self, k) == before}
        values = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items() if k not in skip}
        if self.init_from is not None:  # by content: a retrained start is another run, a moved one is not
            from hens.models.checkpoint import file_sha256

            values["init_from_sha256"] = file_sha256(self.init_from)
        return values


def model_config(cfg: TrainConfig, channels: int, grid: str) -> SFNOConfig:
    """The SFNO of a run; block layer norms where the noise conditions them (injection norm, both)."""
    conditioned = cfg.stochastic and cfg.injection != "input"
    return SFNOConfig(
        channels + forcing_channels(cfg.forcings), channels, grid=grid, embed_dim=cfg.embed_dim,
        num_layers=cfg.num_layers, scale_factor=cfg.scale_factor, pos_embed="learnable lat",
        norm="layer" if conditioned else "none",
    )
