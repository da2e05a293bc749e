"""The forecast runs of ``hens calibrate``: a small ensemble in memory and its spread/skill.

The members are those the engine computes for a store (:func:`hens.forecast.engine.member_leads`,
same seeds, batches and perturbation), but only the verified leads and channels are kept, in
memory, and scored at once with :func:`hens.scoring.moments.spread_skill_ratio`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr

from hens.forecast.engine import EnsemblePlan, member_leads
from hens.forecast.members import MemberLayout
from hens.forecast.protocols import DataSource
from hens.pipelines.forecast.components import Models, build_perturbation
from hens.pipelines.forecast.config import ForecastConfig
from hens.scoring.moments import spread_skill_ratio


def calibration_plan(
    cfg: ForecastConfig, source: DataSource, models: Models, *, noise_scale: float | None = None
) -> EnsemblePlan:
    """The members of ``cfg`` run by ``models`` (loaded once for every trial).

    Parameters
    ----------
    cfg
        A trial's config: its initial times, lead, pairs and perturbation amplitude.
    source
        The analyses.
    models
        Steppers and perturbation scale of the ensemble being calibrated.
    noise_scale
        Factor on the stochastic models' noise instead of theirs (checkpoints only).
    """
    steppers = models.steppers
    if noise_scale is not None:
        steppers = tuple(s.with_noise_scale(noise_scale) for s in steppers)  # type: ignore[attr-defined]
    return EnsemblePlan(
        source=source, steppers=steppers, perturbation=build_perturbation(cfg, source, models),
        layout=MemberLayout(checkpoints=len(steppers), pairs=cfg.perturbation.pairs, seeds=cfg.seeds),
        init_times=cfg.init_times, lead_hours=cfg.lead_steps, batch_size=cfg.batch_size, base_seed=cfg.seed,
    )


def spread_skill(plan: EnsemblePlan, channels: Sequence[str], leads: Sequence[int]) -> tuple[float, dict[str, float]]:
    """Spread-skill ratio of the members of ``plan`` at ``leads`` (hours) on ``channels``.

    Per lead and channel, pooled over the initial times and the globe (area weights), then
    averaged over the leads; the first value is the mean over channels. Dimensionless.
    Holds ``inits x members x leads x channels`` fields in memory (float32).
    """
    grid = plan.steppers[0].grid
    index = [plan.channels.index(c) for c in channels]
    keep = {plan.lead_hours.index(h): k for k, h in enumerate(leads)}
    shape = (len(plan.init_times), plan.layout.size, len(leads), len(channels), *grid.shape)
    forecast = np.empty(shape, dtype=np.float32)
    with torch.inference_mode():
        for i in range(len(plan.init_times)):
            for batch in plan.partition:
                for step, x in enumerate(member_leads(plan, i, range(batch.start, batch.stop))):
                    if step in keep:
                        forecast[i, batch, keep[step]] = x[:, index].cpu().numpy()
    hours = np.array(leads, dtype="timedelta64[h]")
    truth = np.stack([plan.source(np.datetime64(t0, "ns") + hours, list(channels)).values for t0 in plan.init_times])
    coords = {"lead_time": list(leads), "channel": list(channels), "lat": grid.lat, "lon": grid.lon}
    dims = ("init_time", "lead_time", "channel", "lat", "lon")
    ssr = spread_skill_ratio(
        xr.DataArray(forecast, dims=(dims[0], "member", *dims[1:]), coords=coords),
        xr.DataArray(truth, dims=dims, coords=coords), "member",
        weights=xr.DataArray(grid.area_weights, dims="lat", coords={"lat": grid.lat}),
        dim=["init_time", "lat", "lon"],
    ).mean("lead_time")
    by_channel = {c: float(ssr.sel(channel=c)) for c in channels}
    return float(np.mean(list(by_channel.values()))), by_channel
