"""``hens train``: fit an SFNO (or a stochastic SFNO) to 6-hour steps of any data source.

One run = one checkpoint; several independent checkpoints come from several seeds.

* Data: all channels of the source by default; the last part of the record is held out
  for validation behind a > 30-day gap (:mod:`hens.models.training_data`), or
  ``train_period``/``valid_period`` choose the blocks; normalisation statistics from the
  training block, accumulated block by block. Batches are read from the source as they are
  needed, the next ones on a background thread, and kept in a cache of ``cache_mb``
  (:mod:`hens.models.batches`): memory does not grow with the period.
* Model: :class:`~hens.models.stepper.Stepper` around an SFNO: z-scored input plus the
  forcing fields of the valid time (``forcings``, default the phase of the year), the network
  predicts the 6-hour increment in units of the per-channel tendency std.
* Loss: area-weighted MSE or the adjusted spectral MSE (``loss="amse"``: no reward for
  damping unpredictable scales) in tendency-std units (deterministic), or almost-fair CRPS
  (alpha 0.95) over ``members`` noise draws per sample, plus ``spectral_weight`` x spectral
  CRPS (stochastic). The last ``rollout_fraction`` of the steps unroll ``rollout`` steps
  (loss averaged over them, gradients through the rollout), at the low end of a cosine
  learning-rate schedule.
* Noise (stochastic): enters as ``injection`` says and is an AR(1) process with decorrelation
  time ``noise_decorrelation_hours``; every sample-member starts from a stationary draw and
  its noise state advances once per unrolled step.
* Reproducible: a run is a pure function of (data, options, seed, number of steps) on a given
  machine and thread count. ``--minutes`` times the first steps and fixes the number of
  steps from it (recorded in the checkpoint; rerun with ``--steps`` to reproduce exactly).
* Distributed: data parallel over torch.distributed (:mod:`hens.models.runtime`); every rank
  draws the same global batch and noise and takes its slice, gradients are averaged, so N
  ranks follow the loss curve of one rank with the same global batch.
* Resumable: ``<out>.resume`` (weights, optimizer, step, RNG states, losses) is written with
  every checkpoint; rerunning the same command continues from it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hens.forecast.errors import ConfigError, HensError, OutputExists
from hens.forecast.types import check_choice
from hens.models import losses
from hens.models.checkpoint import description_sha256, save_checkpoint
from hens.models.forcings import DEFAULT_FORCINGS, check_forcings, forcing_channels
from hens.models.noise import DEFAULT_DECORRELATION_HOURS, make_generator
from hens.models.runtime import Distributed, all_reduce_mean, setup_distributed, teardown, tune_cpu_allocator
from hens.models.schedule import DECAY_FRACTION, commit_total, decay_start, lr_at, planned_total
from hens.models.sfno import SFNO, SFNOConfig
from hens.models.stepper import Stepper
from hens.models.stochastic_sfno import StochasticSFNO, StochasticSFNOConfig
from hens.models.batches import Block, MemoryBlock, Prefetcher, TimeBlock
from hens.models.periods import check_periods
from hens.models.training_data import SIX_HOURS, draw_starts, split_times, streaming_stats
from hens.models.types import DeterministicLoss, NoiseInjection

_TIMING_WINDOW = 50  # recent steps whose mean duration plans a --minutes run
_VAL_SAMPLES = 64
_NOISE_SEED_OFFSET = 7919  # noise generator seed = seed + offset (independent of batch draws)
#: seconds between checkpoint + resume-file writes (and validations)
SAVE_INTERVAL_S = 120.0
_FINAL_RESERVE_S = 5.0  # kept free of a --minutes budget for the final validation and save
_PLAN_SHARE = 0.92  # a --minutes run plans its steps for this share of the budget (load varies)
_ROLLOUT_TIMING_STEP = 30  # a --minutes run times a rollout step here (after allocator warm-up)
_LOSS_NAMES = {"mse": "area-weighted MSE", "amse": "adjusted spectral MSE (AMSE)", "crps": "almost-fair CRPS"}


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
    batch: int = 8
    lr: float = 2e-3
    members: int = 4
    alpha: float = 0.95
    spectral_weight: float = 0.1
    injection: NoiseInjection = "input"
    noise_decorrelation_hours: float = DEFAULT_DECORRELATION_HOURS
    channels: tuple[str, ...] | None = None
    forcings: tuple[str, ...] = DEFAULT_FORCINGS
    val_days: float | None = None
    train_period: str | None = None
    valid_period: str | None = None
    cache_mb: float = 1024.0
    embed_dim: int = 64
    num_layers: int = 4
    scale_factor: int = 1
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
        object.__setattr__(self, "forcings", check_forcings(self.forcings))
        if self.stochastic and self.loss != "mse":
            raise ConfigError(f"--loss {self.loss} is for deterministic models; stochastic ones train with CRPS")
        check_choice("--injection", self.injection, NoiseInjection)
        if not 0.0 <= self.noise_decorrelation_hours < float("inf"):
            raise ConfigError(f"--noise-decorrelation-hours {self.noise_decorrelation_hours} must be finite and >= 0")
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
        skip = {"out", "minutes", "steps", "overwrite", "progress", "cache_mb"}  # cache_mb: same bits
        # unset periods, and noise options that a run does not use or that have the values of
        # the runs before these options existed, are left out: those resume files stay valid
        skip |= {k for k in ("train_period", "valid_period") if getattr(self, k) is None}
        skip |= {k for k, before in (("injection", "input"), ("noise_decorrelation_hours", 0.0))
                 if not self.stochastic or getattr(self, k) == before}
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items() if k not in skip}


def model_config(cfg: TrainConfig, channels: int, grid: str) -> SFNOConfig:
    """The SFNO of a run; block layer norms where the noise conditions them (injection norm, both)."""
    conditioned = cfg.stochastic and cfg.injection != "input"
    return SFNOConfig(
        channels + forcing_channels(cfg.forcings), channels, grid=grid, embed_dim=cfg.embed_dim,
        num_layers=cfg.num_layers, scale_factor=cfg.scale_factor, pos_embed="learnable lat",
        norm="layer" if conditioned else "none",
    )


class Run:
    """State of a training run on one rank: data, model, optimizer, generators, history.

    ``in_memory``: load both blocks up front instead of reading batches from the source
    (the same batches to the bit; memory grows with the period; for benchmarks).
    """

    def __init__(self, cfg: TrainConfig, info: Distributed, source: Any = None, *, in_memory: bool = False) -> None:
        self.cfg, self.info = cfg, info
        if cfg.batch % info.world_size:
            raise ConfigError(f"--batch {cfg.batch} is not divisible by the {info.world_size} ranks")
        if source is None:
            from hens.forecast.sources import open_source

            source = open_source(list(cfg.data) if len(cfg.data) > 1 else cfg.data[0])
        missing = [c for c in cfg.channels or () if c not in source.channels]
        if missing:
            raise ConfigError(f"channels {', '.join(missing)} are not in the data (it has {', '.join(source.channels)})")
        self.channels = tuple(cfg.channels or source.channels)
        self.split = split_times(source.times, val_days=cfg.val_days, train_period=cfg.train_period,
                                 valid_period=cfg.valid_period, name=str(getattr(source, "name", "the data")))
        self.grid = source.grid
        # validation reads its few fixed samples again at each validation: no cache for them
        self.train_data: Block = (MemoryBlock(source, self.split.train, self.channels) if in_memory else
                                  TimeBlock(source, self.split.train, self.channels, cache_bytes=int(cfg.cache_mb * 2**20)))
        self.val_data: Block = (MemoryBlock if in_memory else TimeBlock)(source, self.split.val, self.channels)
        self.prefetch = Prefetcher(self.train_data)
        # a training block that fits in the cache is cached by this pass over it, never read again
        keep = getattr(self.train_data, "keep", None)
        self.stats = streaming_stats(source, self.split.train, self.channels, keep=keep)
        # identifies the data by content (grid, channels, times, statistics), not by path
        self.source_name = str(getattr(source, "name", ""))
        description = {
            "layout": getattr(source, "layout", ""), "grid": self.grid.spec,
            "channels": list(self.channels), "split": self.split.describe(),
            "stats": {k: [float(x) for x in v] for k, v in self.stats.items()},
        }
        self.data_sha256 = description_sha256(description)
        self.starts = {k: self.train_data.starts(k) for k in {1, cfg.rollout}}
        val_starts = self.val_data.starts(1)
        if any(s.size == 0 for s in self.starts.values()) or val_starts.size == 0:
            raise ConfigError(
                f"too few consecutive 6-hourly states for --rollout {cfg.rollout} in the training or validation block"
            )
        self.val_starts = val_starts[np.linspace(0, val_starts.size - 1, min(_VAL_SAMPLES, val_starts.size)).astype(int)]
        torch.manual_seed(cfg.seed)
        base = model_config(cfg, len(self.channels), self.grid.spec)
        self.model = (StochasticSFNO(StochasticSFNOConfig(base, injection=cfg.injection,
                                                          noise_decorrelation_hours=cfg.noise_decorrelation_hours))
                      if cfg.stochastic else SFNO(base))
        self.model.to(info.device)
        self.stepper = Stepper(self.model, self.stats["mean"], self.stats["std"], self.stats["tendency_std"],
                               cfg.forcings, lat=self.grid.lat)
        self.stepper.to(info.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.0)
        self.weights = losses.area_weights(self.grid, device=info.device)
        self.batches = make_generator(cfg.seed)
        self.noise = make_generator(cfg.seed + _NOISE_SEED_OFFSET)
        self.step = 0
        self.total: int | None = cfg.steps
        self.train_loss: list[float] = []
        self.val_loss: list[list[float]] = []
        self.wall = 0.0
        self.step_seconds = 0.0  # time inside train_step: excludes loading, saves, validation

    # ------------------------------------------------------------------ one step
    def rollout_at(self, step: int) -> int:
        if self.total is None:  # a --minutes run before its decay: one-step training
            return 1
        tail = int(round(self.cfg.rollout_fraction * self.total)) if self.cfg.rollout > 1 else 0
        return self.cfg.rollout if step >= self.total - tail else 1

    def _scaled(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.stepper.mean) / self.stepper.tendency_std

    def loss(
        self, x0: torch.Tensor, targets: torch.Tensor, noise: list[torch.Tensor] | None, times: np.ndarray
    ) -> torch.Tensor:
        """Mean loss over the local samples (valid at ``times``) and the ``len(targets)`` unrolled steps."""
        cfg, total = self.cfg, 0.0
        x = x0.repeat_interleave(cfg.members, 0) if noise is not None else x0
        times = np.repeat(times, cfg.members) if noise is not None else times
        for k in range(targets.shape[0]):
            when = times + k * SIX_HOURS
            x = self.stepper(x, noise=noise[k] if noise is not None else None, time=when)
            y = self._scaled(targets[k])
            if noise is None:
                if cfg.loss == "amse":
                    total = total + losses.amse(self._scaled(x), y, self.grid).mean()
                else:
                    total = total + losses.mse(self._scaled(x), y, self.weights).mean()
                continue
            pred = self._scaled(x).view(y.shape[0], cfg.members, *y.shape[1:])
            term = losses.crps(pred, y, 1, self.weights, kind="almost_fair", alpha=cfg.alpha).mean()
            if cfg.spectral_weight:
                spec = losses.spectral_crps(pred, y, 1, self.grid, kind="almost_fair", alpha=cfg.alpha)
                term = term + cfg.spectral_weight * spec.mean()
            total = total + term
        return total / targets.shape[0]

    def noise_states(self, rows: int, steps: int, generator: torch.Generator, local: slice) -> list[torch.Tensor] | None:
        """Noise states of ``rows`` global rows at each of ``steps`` steps: a stationary draw,
        then AR(1) steps (every rank draws all, keeps its slice; drawn on the CPU generator)."""
        if not self.cfg.stochastic:
            return None
        states, state = [], None
        for _ in range(steps):
            state = self.model.next_noise(generator, rows, state)
            states.append(state[local].to(self.info.device))
        return states

    def rollout_cost(self) -> float:
        """Measured time of a ``rollout``-step forward + backward over that of a one-step one.

        Uses a throw-away generator and leaves weights, optimizer and generators untouched, so
        timing a ``--minutes`` run does not change its trajectory. Averaged over ranks.
        """
        if self.cfg.rollout == 1:
            return 1.0
        generator = make_generator(self.cfg.seed + 5 * _NOISE_SEED_OFFSET)
        per_rank = self.cfg.batch // self.info.world_size
        seconds = []
        self.model.train()
        for k in (1, self.cfg.rollout):
            starts = draw_starts(generator, self.starts[k], per_rank)
            x0, targets = (t.to(self.info.device) for t in self.train_data.batch(starts, k))
            noise = self.noise_states(per_rank * self.cfg.members, k, generator, slice(None))
            total = 0.0
            for _ in range(2):
                begin = time.perf_counter()
                self.loss(x0, targets, noise, self.train_data.times[starts]).backward()
                total += time.perf_counter() - begin
            seconds.append(total / 2)
        self.optimizer.zero_grad(set_to_none=True)
        # the optimizer step, all-reduce and batch copy are in both; the margin covers memory
        # effects of the longer autograd graph that one timing does not show
        ratio = torch.tensor([1.15 * seconds[1] / seconds[0]], dtype=torch.float64)
        all_reduce_mean([ratio], self.info)
        return float(ratio)

    def _mine(self, starts: np.ndarray) -> np.ndarray:
        """This rank's slice of a global batch of starts."""
        per_rank = self.cfg.batch // self.info.world_size
        return starts[self.info.rank * per_rank : (self.info.rank + 1) * per_rank]

    def _prefetch_next(self) -> None:
        """Start reading the batches of the next steps, drawn with a copy of the batch generator.

        The copy leaves the real draws (and the resume file's generator state) untouched; a
        prediction made before a ``--minutes`` run fixes its step count may name another
        rollout and then goes unused.
        """
        ahead = torch.Generator()
        ahead.set_state(self.batches.get_state())
        for step in range(self.step + 1, self.step + 1 + self.prefetch.depth):
            if self.total is not None and step >= self.total:
                break
            rollout = self.rollout_at(step)
            self.prefetch.request(self._mine(draw_starts(ahead, self.starts[rollout], self.cfg.batch)), rollout)

    def close(self) -> None:
        """Stop the background reads."""
        self.prefetch.close()

    def train_step(self, elapsed: float = 0.0) -> tuple[float, float]:
        """One optimizer step; returns the loss and ``elapsed`` averaged over ranks."""
        cfg, info = self.cfg, self.info
        began = time.perf_counter()
        rollout = self.rollout_at(self.step)
        mine = self._mine(draw_starts(self.batches, self.starts[rollout], cfg.batch))
        self._prefetch_next()
        per_rank = cfg.batch // info.world_size
        rows = slice(info.rank * per_rank * cfg.members, (info.rank + 1) * per_rank * cfg.members)
        noise = self.noise_states(cfg.batch * cfg.members, rollout, self.noise, rows)
        x0, targets = (t.to(info.device) for t in self.prefetch.batch(mine, rollout))
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.total, cfg.lr)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(x0, targets, noise, self.train_data.times[mine])
        loss.backward()
        all_reduce_mean([p.grad for p in self.model.parameters() if p.grad is not None], info)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        value = torch.stack([loss.detach().double().cpu(), torch.tensor(elapsed, dtype=torch.float64)])
        all_reduce_mean([value], info)  # one collective: logged loss, and a wall time all ranks agree on
        self.step += 1
        self.train_loss.append(float(value[0]))
        self.step_seconds += time.perf_counter() - began
        return float(value[0]), float(value[1])

    @torch.no_grad()
    def validate(self) -> float:
        """One-step validation loss over fixed samples and fixed noise (rank 0's full set)."""
        self.model.eval()
        generator = make_generator(self.cfg.seed + 2 * _NOISE_SEED_OFFSET)
        values = []
        for i in range(0, self.val_starts.size, 16):
            starts = self.val_starts[i : i + 16]
            x0, targets = (t.to(self.info.device) for t in self.val_data.batch(starts, 1))
            noise = self.noise_states(starts.size * self.cfg.members, 1, generator, slice(None))
            values.append(float(self.loss(x0, targets, noise, self.val_data.times[starts])) * starts.size)
        value = sum(values) / self.val_starts.size
        self.val_loss.append([float(self.step), value])
        return value

    @torch.no_grad()
    def rmse_48h(self) -> dict[str, float] | None:
        """Area-weighted RMSE per channel of 48-hour rollouts from validation starts.

        Stochastic models: one member (a fixed noise seed), i.e. the error of a member, not of
        an ensemble mean. Recorded as ``extra["rmse_48h"]``; the ensemble engine scales initial
        perturbations with it. ``None`` if the validation block is shorter than 2 days.
        """
        starts = self.val_data.starts(8)
        if starts.size == 0:
            return None
        starts = starts[np.linspace(0, starts.size - 1, min(32, starts.size)).astype(int)]
        self.model.eval()
        x0, targets = (t.to(self.info.device) for t in self.val_data.batch(starts, 8))
        generator = make_generator(self.cfg.seed + 3 * _NOISE_SEED_OFFSET)
        x, noise = x0, None
        for k in range(8):
            when = self.val_data.times[starts] + k * SIX_HOURS
            if self.cfg.stochastic:
                noise = self.stepper.next_noise(generator, x.shape[0], noise)
            x = self.stepper(x, noise=noise, time=when)
        mse = losses.mse(x.double(), targets[-1].double(), self.weights.double()).mean(0)
        return {c: float(v) for c, v in zip(self.channels, mse.sqrt().tolist())}

    # ------------------------------------------------------------------ persistence
    def resume_state(self) -> dict[str, Any]:
        return {
            "identity": self.cfg.identity(), "world_size": self.info.world_size, "step": self.step,
            "total": self.total, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "batches": self.batches.get_state(), "noise": self.noise.get_state(),
            "train_loss": torch.tensor(self.train_loss, dtype=torch.float64),
            "val_loss": torch.tensor(self.val_loss, dtype=torch.float64).reshape(-1, 2), "wall": self.wall,
            "step_seconds": self.step_seconds,
        }

    def load_resume(self, state: dict[str, Any]) -> None:
        if state.get("identity") != self.cfg.identity():
            changed = sorted(k for k, v in self.cfg.identity().items() if state.get("identity", {}).get(k) != v)
            raise ConfigError(
                f"{self.cfg.resume_path} was written by a run with other options ({', '.join(changed)}); "
                "repeat them or pass --overwrite to start again"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.batches.set_state(state["batches"])
        self.noise.set_state(state["noise"])
        self.step, self.total, self.wall = int(state["step"]), state["total"], float(state["wall"])
        self.step_seconds = float(state.get("step_seconds", 0.0))
        self.train_loss = state["train_loss"].tolist()
        self.val_loss = state["val_loss"].tolist()

    def save(self, *, final: bool) -> None:
        """Checkpoint + resume file (+ loss curve); only rank 0 writes."""
        if not self.info.main:
            return
        cfg = self.cfg
        every = max(1, len(self.train_loss) // 2000)
        extra = {
            "steps": self.step, "planned_steps": self.total, "rollout": cfg.rollout,
            "rollout_steps": sum(1 for s in range(self.step) if self.rollout_at(s) > 1),
            "batch": cfg.batch, "lr": cfg.lr, "stochastic": cfg.stochastic,
            "loss": _LOSS_NAMES["crps" if cfg.stochastic else cfg.loss] + " in tendency-std units",
            "members": cfg.members if cfg.stochastic else 1, "alpha": cfg.alpha,
            "spectral_weight": cfg.spectral_weight if cfg.stochastic else 0.0,
            "minutes": cfg.minutes, "wall_seconds": round(self.wall, 1),
            "seconds_per_step": round(self.step_seconds / max(1, self.step), 5), "world_size": self.info.world_size,
            "threads": torch.get_num_threads(), "torch": str(torch.__version__), "split": self.split.describe(),
            "data": self.source_name,
            "options": cfg.options(),
            "train_loss": self.train_loss[::every], "train_loss_every": every, "val_loss": self.val_loss,
            "final": final,
        }
        if final:
            rmse = self.rmse_48h()
            if rmse is not None:
                extra["rmse_48h"] = rmse
        save_checkpoint(
            cfg.out, self.model, channels=self.channels, seed=cfg.seed, data_sha256=self.data_sha256,
            extra=extra, forcings=cfg.forcings, **self.stats,
        )
        first = next((s for s in range(self.step) if self.rollout_at(s) > 1), None)
        plot_losses(cfg.curve_path, self.train_loss, self.val_loss, title=cfg.out.name,
                    rollout=(first, cfg.rollout) if first is not None else None)
        if final:
            cfg.resume_path.unlink(missing_ok=True)
        else:
            tmp = cfg.resume_path.with_name(cfg.resume_path.name + ".tmp")
            torch.save(self.resume_state(), tmp)
            tmp.replace(cfg.resume_path)


def plot_losses(
    path: Path, train_loss: list[float], val_loss: list[list[float]], *, title: str,
    rollout: tuple[int, int] | None = None,
) -> None:
    """Training loss (raw and smoothed) and validation loss against the step, as a PNG.

    ``rollout``: ``(first step, steps unrolled)`` of the rollout phase, shaded.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    if train_loss:
        steps = np.arange(1, len(train_loss) + 1)
        ax.plot(steps, train_loss, color="0.8", lw=0.6, label="train (per step)")
        width = max(1, len(train_loss) // 50)
        smooth = np.convolve(train_loss, np.ones(width) / width, mode="valid")
        ax.plot(steps[width - 1 :], smooth, color="C0", label=f"train ({width}-step mean)")
    if val_loss:
        v = np.asarray(val_loss)
        ax.plot(v[:, 0], v[:, 1], "o-", color="C1", label="validation (one step)")
    if rollout is not None:
        ax.axvspan(rollout[0] + 1, max(len(train_loss), rollout[0] + 1), color="C2", alpha=0.12,
                   label=f"{rollout[1]}-step rollout loss")
    if min(train_loss + [v for _, v in val_loss], default=1.0) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def _claim_output(cfg: TrainConfig, info: Distributed) -> bool:
    """Whether to resume; refuses to overwrite a finished checkpoint without --overwrite."""
    if cfg.overwrite:
        if info.main:
            cfg.resume_path.unlink(missing_ok=True)
        return False
    if cfg.resume_path.exists():
        return True
    if cfg.out.exists():
        raise OutputExists(f"{cfg.out} exists; pass --overwrite to train again")
    return False


def train(cfg: TrainConfig, *, source: Any = None, in_memory: bool = False) -> Path:
    """Train and write ``cfg.out`` (and its ``.loss.png``); returns the checkpoint path.

    ``source`` (any :class:`~hens.forecast.protocols.DataSource`) replaces opening
    ``cfg.data``; ``in_memory`` loads the data up front (see :class:`Run`). Raises
    :class:`HensError` subclasses for bad inputs (data, options, existing outputs).
    """
    tune_cpu_allocator()
    info = setup_distributed()
    try:
        return _train(cfg, info, source, in_memory)
    finally:
        teardown(info)


def _train(cfg: TrainConfig, info: Distributed, source: Any, in_memory: bool) -> Path:
    resume = _claim_output(cfg, info)
    run = Run(cfg, info, source, in_memory=in_memory)
    try:
        return _loop(cfg, info, run, resume)
    finally:
        run.close()


def _loop(cfg: TrainConfig, info: Distributed, run: Run, resume: bool) -> Path:
    if resume:
        try:
            state = torch.load(cfg.resume_path, map_location="cpu", weights_only=True)  # generator states must stay on CPU
        except Exception as err:  # noqa: BLE001 - any unreadable resume file: one clear line
            raise HensError(f"cannot read {cfg.resume_path} ({type(err).__name__}); pass --overwrite") from None
        run.load_resume(state)
    progress = _progress(cfg, info)
    start = time.perf_counter() - run.wall
    last_save = run.wall
    recent: list[float] = []  # agreed wall times of the last steps (a --minutes run plans with them)
    rollout_cost: float | None = None
    save_seconds = 0.0  # duration of the last intermediate save (with its validation), agreed
    with progress:
        task = progress.add_task("train", total=run.total)
        while run.total is None or run.step < run.total:
            value, wall = run.train_step(time.perf_counter() - start)
            if run.total is None:
                recent = (recent + [wall])[-_TIMING_WINDOW - 1 :]
                if rollout_cost is None and run.step >= _ROLLOUT_TIMING_STEP:
                    rollout_cost = run.rollout_cost()
                    recent = []  # the timing is not a step
                if rollout_cost is not None and len(recent) > 5:
                    step_seconds = (recent[-1] - recent[0]) / (len(recent) - 1)
                    left = _PLAN_SHARE * cfg.minutes * 60.0 - _FINAL_RESERVE_S - wall
                    left -= left / SAVE_INTERVAL_S * save_seconds  # the saves still to come
                    fraction = cfg.rollout_fraction if cfg.rollout > 1 else 0.0
                    planned = planned_total(run.step, left, step_seconds, rollout_fraction=fraction,
                                            rollout_cost=rollout_cost)
                    if decay_start(planned) <= run.step:  # entering the decay: fix the total
                        run.total = commit_total(run.step)
                        progress.update(task, total=run.total)
            run.wall = time.perf_counter() - start
            progress.update(task, completed=run.step, description=f"train loss {value:.4g}")
            if wall - last_save > SAVE_INTERVAL_S and (run.total is None or run.step < run.total):
                last_save = wall  # ranks agree on ``wall`` (all-reduced), so all of them save
                began = time.perf_counter()
                if info.main:
                    run.validate()
                run.save(final=False)
                took = torch.tensor([time.perf_counter() - began if info.main else 0.0], dtype=torch.float64)
                all_reduce_mean([took], info)
                save_seconds = float(took) * info.world_size  # rank 0's duration on every rank
                recent = []  # the save is not a step: keep it out of the timing
            if cfg.minutes is not None and wall > cfg.minutes * 60.0 - 0.5 * _FINAL_RESERVE_S:
                break  # hard stop, agreed by all ranks: the plan overran the budget (a loaded machine)
    if info.main:
        run.validate()
    run.wall = time.perf_counter() - start
    run.save(final=True)
    return cfg.out


class _Quiet:
    """Stands in for a rich progress bar on other ranks and with --no-progress."""

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


def _progress(cfg: TrainConfig, info: Distributed) -> Any:
    """A rich progress bar on rank 0 (steps, elapsed, remaining), else a silent stand-in."""
    if not (cfg.progress and info.main):
        return _Quiet()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
