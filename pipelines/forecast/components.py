"""Build the engine's components from a validated config: models, perturbation, store spec.

Every check that can fail on user input runs here, before the store is touched: checkpoints
readable and agreeing on grid and channels, the data on their grid with their channels, the
seeds usable by the models, every analysis the run reads present and free of NaN.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import torch

from hens import __version__
from hens.forecast.engine import EnsemblePlan
from hens.forecast.errors import CheckpointError, ConfigError, DataError
from hens.forecast.members import MemberLayout
from hens.forecast.output import select_output
from hens.forecast.perturb import BredVector, GaussianPerturbation, NoPerturbation, breeding_times
from hens.forecast.protocols import DataSource, Perturbation, Stepper
from hens.forecast.zarr_sink import StoreSpec, lead_chunk_for
from hens.pipelines.forecast.config import ForecastConfig

#: a 6-hour tendency std grows like a random walk to ~sqrt(8) of it in 48 hours (8 steps)
SQRT_STEPS_48H = math.sqrt(8.0)
RMSE_KEY = "rmse_48h"  # checkpoint extra: {channel: 48-h RMSE} from a validation period


@dataclass(frozen=True)
class Models:
    """The steppers of a run, their provenance and the per-channel perturbation scale."""

    steppers: tuple[Stepper, ...]
    records: tuple[dict[str, str], ...]  # name, sha256, kind per checkpoint
    stochastic: bool
    scale: np.ndarray  # (C,) physical units
    scale_source: str


def _checkpoints(cfg: ForecastConfig, source: DataSource, device: torch.device) -> Models:
    """Checkpoint steppers from the headers; the weights load when a batch needs them.

    Every checkpoint is loaded once here, so that one that is truncated, unsafe or does not
    fit its config stops the run before the store is touched, then dropped again: a rank
    loads the ones its batches need when they need them
    (:class:`~hens.pipelines.forecast.steppers.ResidentModels`).
    """
    from hens.models.checkpoint import read_header
    from hens.models.compatibility import check_compatible, check_ensemble
    from hens.pipelines.forecast.steppers import CheckpointStepper, ResidentModels

    headers = [read_header(p) for p in cfg.model_paths]
    check_ensemble(headers)
    for header in headers:
        check_compatible(header, source)
    kinds = {h.kind for h in headers}
    if len(kinds) > 1:
        raise CheckpointError(f"the checkpoints mix model kinds ({', '.join(sorted(kinds))}); "
                              "members of one ensemble must come from the same recipe")
    channels = headers[0].channels
    resident = ResidentModels(device)
    steppers = tuple(CheckpointStepper(h, precision=cfg.precision, models=resident, noise_scale=cfg.noise_scale)
                     for h in headers)
    for h in headers:
        resident.get(h.path)
    shas = [resident.sha256[h.path] for h in headers]
    if any(h.tendency_std is None for h in headers):  # published packages: measure the RMSE once
        from hens.pipelines.forecast.perturbation_scale import measured_scale

        scale, scale_source = measured_scale(steppers, shas, source, cfg.init_times[0], cfg.rmse_cache_path)
    elif all(isinstance(h.extra.get(RMSE_KEY), dict) for h in headers):
        try:
            scale = np.mean([[float(h.extra[RMSE_KEY][c]) for c in channels] for h in headers], axis=0)
        except KeyError as err:
            raise CheckpointError(f"a checkpoint's {RMSE_KEY} lacks channel {err}") from None
        scale_source = f"48-h RMSE recorded in the checkpoints (extra.{RMSE_KEY}), mean over checkpoints"
    else:
        scale = np.mean([h.tendency_std.numpy() for h in headers], axis=0) * SQRT_STEPS_48H
        scale_source = (f"6-hour tendency std of the training data (checkpoint normalisation) x sqrt(8), "
                        f"mean over checkpoints (no checkpoint records extra.{RMSE_KEY})")
    records = tuple({"name": h.path.name, "sha256": sha, "kind": h.kind} for h, sha in zip(headers, shas))
    resident.release()  # a rank loads the checkpoints its batches need, when they need them
    return Models(steppers, records, headers[0].stochastic, scale, scale_source)


def _physics(cfg: ForecastConfig, source: DataSource) -> Models:
    import zarr

    from hens.forecast.stats import open_world_stats
    from hens.models.checkpoint import description_sha256
    from hens.pipelines.forecast.steppers import PhysicsStepper, world_config_from_attrs

    path = cfg.data_paths
    if not isinstance(path, str):
        raise ConfigError("models: [physics] needs data: to be the one world store it continues")
    try:
        attrs = dict(zarr.open_group(path, mode="r").attrs)
    except Exception:  # netCDF files, other stores: not a world
        attrs = {}
    stepper = PhysicsStepper(world_config_from_attrs(attrs, where=path))
    source.check_grid(stepper.grid)
    stats = open_world_stats(path)
    scale = stats["tendency_std"].sel(channel=list(stepper.channels)).values * SQRT_STEPS_48H
    settings = {k: v for k, v in attrs.items() if k.startswith(("world_", "grid"))}
    record = {"name": "physics", "sha256": description_sha256(settings), "kind": "shallow_water"}
    source_text = "6-hour tendency std of the world statistics store x sqrt(8)"
    return Models((stepper,), (record,), True, np.asarray(scale, dtype=np.float64), source_text)


def load_models(cfg: ForecastConfig, source: DataSource, device: torch.device) -> Models:
    """Load and cross-check the checkpoints (or the world's solver) of ``cfg``."""
    models = _physics(cfg, source) if cfg.physics else _checkpoints(cfg, source, device)
    if cfg.seeds > 1 and not models.stochastic:
        raise ConfigError(f"seeds: {cfg.seeds} needs stochastic models; deterministic checkpoints would "
                          "repeat members (use seeds: 1)")
    if cfg.noise_scale != 1.0 and (cfg.physics or not models.stochastic):
        raise ConfigError(f"noise_scale: {cfg.noise_scale} scales the noise of stochastic checkpoints; "
                          "these models have none (drop noise_scale)")
    if cfg.perturbation.kind == "none" and not models.stochastic:
        raise ConfigError("perturbation kind none with deterministic checkpoints makes identical members")
    if not np.isfinite(models.scale).all() or (models.scale <= 0).any():
        raise ConfigError(f"perturbation scale must be finite and > 0 per channel, got {models.scale.tolist()}")
    return models


def build_perturbation(cfg: ForecastConfig, source: DataSource, models: Models) -> Perturbation:
    """The perturbation of ``cfg``: physical amplitudes ``perturbation.amplitude x scale`` per channel
    (the YAML's amplitude is a fraction of each channel's scale)."""
    from hens.models.sfno.noise import SphericalNoise

    p = cfg.perturbation
    if p.kind == "none":
        return NoPerturbation()
    first = models.steppers[0]
    noise = SphericalNoise(first.grid, [p.length_km] * len(first.channels))
    physical_amplitude = torch.as_tensor(p.amplitude * models.scale, dtype=torch.float64)
    if p.kind == "gaussian":
        return GaussianPerturbation(noise, physical_amplitude, base_seed=cfg.seed)
    return BredVector(source, noise, physical_amplitude, cycles=p.cycles, base_seed=cfg.seed,
                      centred=p.kind == "hemispheric_bred_vector")


def build_plan(cfg: ForecastConfig, device: torch.device) -> tuple[EnsemblePlan, StoreSpec]:
    """The engine plan and store spec of ``cfg`` (loads models; reads no analysis yet)."""
    from hens.forecast.sources import open_source
    from hens.forecast.sources.recent import RecentReads

    source = RecentReads(open_source(cfg.data_paths))  # every batch re-reads its analyses
    models = load_models(cfg, source, device)
    layout = MemberLayout(checkpoints=len(models.steppers), pairs=cfg.perturbation.pairs, seeds=cfg.seeds)
    grid = models.steppers[0].grid
    output = select_output(models.steppers[0].channels, grid, channels=cfg.output_channels, region=cfg.region,
                           every_hours=cfg.output_every_hours)
    plan = EnsemblePlan(
        source=source, steppers=models.steppers, perturbation=build_perturbation(cfg, source, models),
        layout=layout, init_times=cfg.init_times, lead_hours=cfg.lead_steps, batch_size=cfg.batch_size,
        base_seed=cfg.seed, output=output,
    )
    channels = plan.channels
    amplitudes = {c: float(cfg.perturbation.amplitude * s) for c, s in zip(channels, models.scale, strict=True)}
    attrs = {
        "title": "hens ensemble forecast",
        "hens_config": cfg.to_dict(),
        "hens_version": __version__,
        "checkpoints": list(models.records),
        "source": json.dumps(list(cfg.data)),
        "perturbation": cfg.perturbation.kind,
        "perturbation_amplitudes": amplitudes if cfg.perturbation.kind != "none" else {},
        "perturbation_scale_source": models.scale_source,
        "batch_partition": [[b.start, b.stop] for b in plan.partition],
        "member_formula": "member = ((c * Q + q) * 2 + sgn) * S + s; sign = 1 - 2 sgn (hens.forecast.members)",
        "seeding": "stream seed = sha256('base_seed|init_time|stream|keys') (hens.forecast.members.stream_seed)",
        "base_seed": cfg.seed,
    }
    region = None if cfg.region is None else (output.lat_index, output.lon_index)
    spec = StoreSpec(channels=output.channels, init_times=cfg.init_times, lead_hours=cfg.stored_leads, grid=grid,
                     layout=layout, batch_size=cfg.batch_size, attrs=attrs, region=region,
                     lead_chunk=lead_chunk_for(min(cfg.batch_size, layout.size), output.shape,
                                               len(cfg.stored_leads), len(output.channels)))
    return plan, spec


def check_analyses(plan: EnsemblePlan, cycles: int) -> None:
    """Read every analysis the run starts from (and breeds over): raises for missing times or NaN."""
    breeds = isinstance(plan.perturbation, BredVector)
    for t0 in plan.init_times:
        times = breeding_times(t0, cycles) if breeds else np.array([t0])
        try:
            plan.source(times, plan.channels)
        except DataError as err:
            needs = (f"analyses {_hour(times[0])} .. {_hour(t0)} ({cycles} breeding cycles)" if breeds
                     else "its analysis")
            raise DataError(f"init time {_hour(t0)} needs {needs}: {err}") from None


def _hour(t: np.datetime64) -> str:
    return str(np.datetime_as_string(np.datetime64(t, "h")))
