"""The state of one training run on one rank (:class:`Run`): data, model, optimizer, random
generators, losses; one optimizer step, validation, the 48-hour RMSE, resume files and
checkpoints. The loop around it is :mod:`hens.models.training.loop`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from hens.forecast.errors import ConfigError
from hens.forecast.types import STEP
from hens.models.checkpoint import description_sha256, save_checkpoint
from hens.models.runtime import Distributed, all_reduce_mean
from hens.models.sfno.network import SFNO
from hens.models.sfno.noise import SphericalNoise, default_lmax, make_generator
from hens.models.sfno.stochastic import StochasticSFNO, StochasticSFNOConfig
from hens.models.stepper import ModelStep
from hens.models.training import losses
from hens.models.training.batches import Block, MemoryBlock, Prefetcher, TimeBlock
from hens.models.training.config import TrainConfig, model_config
from hens.models.training.data import draw_starts, split_times, streaming_stats
from hens.models.training.progress import plot_losses
from hens.models.training.pushforward import pushed_input
from hens.models.training.schedule import lr_at
from hens.models.training.warm_start import load_initial_weights

_VAL_SAMPLES = 64
#: a run's random streams are generators seeded ``seed + k * SEED_STRIDE``, one ``k`` per use,
#: so that the batch draws (``k = 0``) and each noise stream are independent. The values are
#: historical: changing one changes every model trained since, so they stay.
SEED_STRIDE = 7919
NOISE_STREAM, VALIDATION_STREAM, SKILL_STREAM, TIMING_STREAM, INPUT_NOISE_STREAM = 1, 2, 3, 5, 6
_LOSS_NAMES = {"mse": "area-weighted MSE", "amse": "adjusted spectral MSE (AMSE)", "crps": "almost-fair CRPS"}


def stream_generator(seed: int, stream: int) -> torch.Generator:
    """The generator of a run's random ``stream`` (``NOISE_STREAM``, ...) for its ``seed``."""
    return make_generator(seed + stream * SEED_STRIDE)


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
        self._check_band("--pushforward-degrees", cfg.pushforward_degrees)  # before any read
        self.input_fields = self._input_fields() if cfg.input_noise else None
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
        self.starts = {k: self.train_data.starts(k) for k in {cfg.rollout, *range(1, cfg.pushforward + 1)}}
        val_starts = self.val_data.starts(1)
        if any(s.size == 0 for s in self.starts.values()) or val_starts.size == 0:
            raise ConfigError(
                f"too few consecutive 6-hourly states for --rollout {cfg.rollout} or --pushforward {cfg.pushforward} "
                "in the training or validation block"
            )
        self.val_starts = val_starts[np.linspace(0, val_starts.size - 1, min(_VAL_SAMPLES, val_starts.size)).astype(int)]
        torch.manual_seed(cfg.seed)
        base = model_config(cfg, len(self.channels), self.grid.spec)
        self.model = (StochasticSFNO(StochasticSFNOConfig(base, injection=cfg.injection,
                                                          noise_decorrelation_hours=cfg.noise_decorrelation_hours))
                      if cfg.stochastic else SFNO(base))
        if cfg.init_from is not None:
            load_initial_weights(self.model, cfg.init_from, data_sha256=self.data_sha256, forcings=cfg.forcings)
        self.model.to(info.device)
        self.stepper = ModelStep(self.model, self.stats["mean"], self.stats["std"], self.stats["tendency_std"],
                               cfg.forcings, lat=self.grid.lat)
        self.stepper.to(info.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.0)
        self.weights = losses.area_weights(self.grid, device=info.device)
        self.batches = make_generator(cfg.seed)
        self.noise = stream_generator(cfg.seed, NOISE_STREAM)
        self.input_noise = stream_generator(cfg.seed, INPUT_NOISE_STREAM)
        self.step = 0
        self.total: int | None = cfg.steps
        self.train_loss: list[float] = []
        self.val_loss: list[list[float]] = []
        self.wall = 0.0
        self.step_seconds = 0.0  # time inside train_step: excludes loading, saves, validation

    def _check_band(self, option: str, degrees: int | None) -> None:
        """A degrees option must name degrees below the band limit of the data grid."""
        band = default_lmax(self.grid)
        if degrees is not None and degrees >= band:
            raise ConfigError(f"{option} {degrees} must be below {band}, the band limit of grid {self.grid.spec}")

    def _input_fields(self) -> SphericalNoise:
        """The ``--input-noise`` fields: every degree of the SFNO's band, or ``l = 1..--input-noise-degrees``."""
        cfg = self.cfg
        self._check_band("--input-noise-degrees", cfg.input_noise_degrees)
        lmax = None if cfg.input_noise_degrees is None else cfg.input_noise_degrees + 1
        return SphericalNoise(self.grid, [cfg.input_noise_km] * len(self.channels), lmax=lmax)

    # ------------------------------------------------------------------ one step
    def rollout_at(self, step: int) -> int:
        if self.total is None:  # a --minutes run before its decay: one-step training
            return 1
        tail = int(round(self.cfg.rollout_fraction * self.total)) if self.cfg.rollout > 1 else 0
        return self.cfg.rollout if step >= self.total - tail else 1

    def pushed_at(self, step: int) -> int:
        """Steps of the model's own forecast that the input of one-step ``step`` is (``--pushforward``).

        One-step steps cycle through 0..K-1: a step's input is then the model's forecast from
        the analysis that many steps earlier, run without gradients, and its target the true
        state one step later, so the model learns to take back the errors of its own rollouts
        without gradients through them (the "pushforward" of docs/models.md, "Training"). A
        pure function of the step: resumed runs and any rank count cycle alike.
        """
        return step % self.cfg.pushforward if self.rollout_at(step) == 1 else 0

    def window_at(self, step: int) -> int:
        """States after the start that ``step`` reads: its unrolled and pushed-forward steps."""
        return self.rollout_at(step) + self.pushed_at(step)

    def _scaled(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.stepper.mean) / self.stepper.tendency_std

    def loss(
        self, x0: torch.Tensor, targets: torch.Tensor, noise: list[torch.Tensor] | None, times: np.ndarray,
        pushed: int = 0,
    ) -> torch.Tensor:
        """Mean loss over the local samples (valid at ``times``) and the unrolled steps after the
        first ``pushed`` of ``len(targets)``, which run without gradients and are not scored."""
        cfg, total = self.cfg, 0.0
        x = x0.repeat_interleave(cfg.members, 0) if noise is not None else x0
        times = np.repeat(times, cfg.members) if noise is not None else times
        for k in range(targets.shape[0]):
            when = times + k * STEP
            with torch.set_grad_enabled(torch.is_grad_enabled() and k >= pushed):
                x = self.stepper(x, noise=noise[k] if noise is not None else None, time=when)
            if k < pushed:
                if k == pushed - 1:
                    truth = targets[k].repeat_interleave(cfg.members, 0) if noise is not None else targets[k]
                    x = pushed_input(x, truth, self.grid, cfg.pushforward_degrees)
                continue
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
        return total / (targets.shape[0] - pushed)

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

    def perturb_inputs(self, x0: torch.Tensor, local: slice) -> torch.Tensor:
        """``x0`` plus ``--input-noise`` x each channel's 6-hour tendency std x unit Gaussian random fields.

        States off the data's attractor (a forecast's errors, an ensemble's perturbations)
        then appear in training with the true next state as target, so the model learns to
        take them back instead of carrying them along (docs/models.md, "Input noise"). Every
        rank draws the global batch and keeps its slice: the same bits on any rank count.
        """
        if self.input_fields is None:
            return x0
        fields = self.input_fields(self.input_noise, self.cfg.batch)[local].to(x0.device)
        return x0 + self.cfg.input_noise * self.stepper.tendency_std * fields

    def rollout_cost(self) -> float:
        """Measured time of a ``rollout``-step forward + backward over that of a one-step one.

        Uses a throw-away generator and leaves weights, optimizer and generators untouched, so
        timing a ``--minutes`` run does not change its trajectory. Averaged over ranks.
        """
        if self.cfg.rollout == 1:
            return 1.0
        generator = stream_generator(self.cfg.seed, TIMING_STREAM)
        per_rank = self.cfg.batch // self.info.world_size
        self.model.train()
        cases = []
        for k in (1, self.cfg.rollout):
            starts = draw_starts(generator, self.starts[k], per_rank)
            x0, targets = (t.to(self.info.device) for t in self.train_data.batch(starts, k))
            noise = self.noise_states(per_rank * self.cfg.members, k, generator, slice(None))
            cases.append((x0, targets, noise, self.train_data.times[starts]))
        seconds: list[list[float]] = [[], []]
        # one untimed call each (first-touch memory of a new graph size), then interleaved
        # repeats, so that a change of the machine's load meets both; medians
        for repeat in range(4):
            for i, case in enumerate(cases):
                begin = time.perf_counter()
                self.loss(*case).backward()
                if repeat:
                    seconds[i].append(time.perf_counter() - begin)
        self.optimizer.zero_grad(set_to_none=True)
        # the optimizer step, all-reduce and batch copy are in both steps, not in these timings
        ratio = torch.tensor([float(np.median(seconds[1]) / np.median(seconds[0]))], dtype=torch.float64)
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
            window = self.window_at(step)
            self.prefetch.request(self._mine(draw_starts(ahead, self.starts[window], self.cfg.batch)), window)

    def close(self) -> None:
        """Stop the background reads."""
        self.prefetch.close()

    def train_step(self, elapsed: float = 0.0) -> tuple[float, float]:
        """One optimizer step; returns the loss and ``elapsed`` averaged over ranks."""
        cfg, info = self.cfg, self.info
        began = time.perf_counter()
        window = self.window_at(self.step)
        mine = self._mine(draw_starts(self.batches, self.starts[window], cfg.batch))
        self._prefetch_next()
        per_rank = cfg.batch // info.world_size
        rows = slice(info.rank * per_rank * cfg.members, (info.rank + 1) * per_rank * cfg.members)
        noise = self.noise_states(cfg.batch * cfg.members, window, self.noise, rows)
        x0, targets = (t.to(info.device) for t in self.prefetch.batch(mine, window))
        x0 = self.perturb_inputs(x0, slice(info.rank * per_rank, (info.rank + 1) * per_rank))
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.total, cfg.lr)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(x0, targets, noise, self.train_data.times[mine], self.pushed_at(self.step))
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
        generator = stream_generator(self.cfg.seed, VALIDATION_STREAM)
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
        generator = stream_generator(self.cfg.seed, SKILL_STREAM)
        x, noise = x0, None
        for k in range(8):
            when = self.val_data.times[starts] + k * STEP
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
            "input_noise": self.input_noise.get_state(),
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
        if "input_noise" in state:  # resume files of runs before --input-noise: no draws made
            self.input_noise.set_state(state["input_noise"])
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
            "pushforward": cfg.pushforward, "pushforward_degrees": cfg.pushforward_degrees,
            "batch": cfg.batch, "lr": cfg.lr, "stochastic": cfg.stochastic,
            "loss": _LOSS_NAMES["crps" if cfg.stochastic else cfg.loss] + " in tendency-std units",
            "members": cfg.members if cfg.stochastic else 1, "alpha": cfg.alpha,
            "spectral_weight": cfg.spectral_weight if cfg.stochastic else 0.0,
            "input_noise": cfg.input_noise, "input_noise_km": cfg.input_noise_km if cfg.input_noise else None,
            "input_noise_degrees": cfg.input_noise_degrees if cfg.input_noise else None,
            "minutes": cfg.minutes, "wall_seconds": round(self.wall, 1),
            "seconds_per_step": round(self.step_seconds / max(1, self.step), 5), "world_size": self.info.world_size,
            "threads": torch.get_num_threads(), "torch": str(torch.__version__), "split": self.split.describe(),
            "data": self.source_name,
            "options": cfg.options(),
            "init_from": str(cfg.init_from) if cfg.init_from is not None else None,
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
