"""The per-channel scale of initial perturbations: each model's 48-hour RMSE.

Huge Ensembles Part I set bred-vector amplitudes to 0.35 x the model's 48-hour RMSE per
channel. hens checkpoints record that RMSE from their validation period (``extra.rmse_48h``);
NVIDIA's published packages record none, so hens measures it once on the ensemble's own
data: each checkpoint is rolled out 48 hours from :data:`RMSE_INITS` initial times that end
before the ensemble's first initial time (never on the period it forecasts), RMSE weighted by
area against the analyses. The numbers are cached in a JSON file beside the ensemble's output
(or the ``rmse_file`` the YAML names; never inside a package), keyed by the checkpoint's
SHA-256, the data and the initial times, so a rerun or the next initial time of a campaign
reads them back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hens.forecast.durable_store import durable_write
from hens.forecast.errors import ConfigError, DataError
from hens.forecast.protocols import DataSource
from hens.forecast.ranks import agree, share
from hens.forecast.types import STEP

#: initial times the 48-hour RMSE is measured from, one day apart
RMSE_INITS = 4
_STEPS_48H = 8
_CACHE_FORMAT = "hens-rmse-48h"


def measurement_times(source: DataSource, first_init: np.datetime64) -> np.ndarray:
    """The initial times of the measurement: the latest :data:`RMSE_INITS`, one day apart,
    whose 48-hour verification is in ``source`` and not after ``first_init``."""
    times = np.asarray(source.times, dtype="datetime64[ns]")
    available = set(times.astype(np.int64).tolist())
    six = STEP.astype("timedelta64[ns]").astype(np.int64)
    chosen: list[np.datetime64] = []
    for t in times[times <= first_init - np.timedelta64(48, "h")][::-1]:
        if not all(int(t.astype(np.int64)) + k * six in available for k in range(_STEPS_48H + 1)):
            continue
        if not chosen or chosen[-1] - t >= np.timedelta64(24, "h"):
            chosen.append(t)
        if len(chosen) == RMSE_INITS:
            break
    if not chosen:
        raise DataError(
            f"measuring the models' 48-hour RMSE (the perturbation scale) needs 6-hourly analyses over 48 hours "
            f"ending by the first initial time {np.datetime_as_string(first_init, unit='h')}; the data have none "
            f"(add the analyses of the days before it to data:)"
        )
    return np.array(sorted(chosen), dtype="datetime64[ns]")


def measure_rmse(stepper: Any, source: DataSource, init_times: np.ndarray) -> np.ndarray:
    """Area-weighted 48-hour RMSE per channel ``(C,)`` of one engine stepper, float64 (channel units)."""
    channels = list(stepper.channels)
    weights = torch.as_tensor(source.grid.area_weights, dtype=torch.float64)[:, None]
    squared = torch.zeros(len(channels), dtype=torch.float64)
    with torch.no_grad():
        for t0 in init_times:
            x = torch.from_numpy(source(np.array([t0]), channels).values)
            rollout = stepper.start(x, init_time=t0, seeds=[0])
            for _ in range(_STEPS_48H):
                forecast = rollout.step()
            truth = source(np.array([t0 + np.timedelta64(48, "h")]), channels).values
            error = forecast.cpu().double()[0] - torch.from_numpy(truth[0]).double()
            squared += (error.square() * weights).mean(dim=(-2, -1))
    return np.sqrt((squared / len(init_times)).numpy())


def _key(sha256: str, source: DataSource, init_times: np.ndarray) -> str:
    stamps = ",".join(np.datetime_as_string(t, unit="h") for t in init_times)
    return f"{sha256}|{getattr(source, 'name', 'data')}|{stamps}"


def _read_cache(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"perturbation rmse_file {path} is not readable JSON ({err})") from None
    if not isinstance(payload, dict) or payload.get("format") != _CACHE_FORMAT:
        raise ConfigError(f"{path} is not a hens 48-hour RMSE file (format {_CACHE_FORMAT!r})")
    return dict(payload.get("entries", {}))


def measured_scale(
    steppers: Sequence[Any], shas: Sequence[str], source: DataSource, first_init: np.datetime64, cache: Path
) -> tuple[np.ndarray, str]:
    """Mean over checkpoints of their 48-hour RMSE per channel, measured once and cached.

    Runs the measurement on rank 0 only (other ranks wait and receive the numbers), so a
    distributed run measures once and every rank uses the same scale.

    Returns
    -------
    scale
        ``(C,)`` float64, channel units.
    source_text
        How the scale was obtained (goes into the store's provenance).
    """
    times = measurement_times(source, first_init)
    keys = [_key(sha, source, times) for sha in shas]

    def measure() -> dict[str, Any]:
        entries = _read_cache(cache)
        missing = [k for k in keys if k not in entries]
        for stepper, key in zip(steppers, keys, strict=True):
            if key in missing:
                entries[key] = {"channels": list(stepper.channels),
                                "rmse": measure_rmse(stepper, source, times).tolist()}
        if missing:
            text = json.dumps({"format": _CACHE_FORMAT, "entries": entries}, indent=1, sort_keys=True)
            durable_write(cache, text.encode())
        return {k: entries[k] for k in keys}

    entries = share(agree(measure, root_only=True))
    channels = list(steppers[0].channels)
    rows = []
    for key in keys:
        entry = entries[key]
        if list(entry["channels"]) != channels:
            raise ConfigError(f"rmse_file {cache} has other channels for {key.split('|')[0][:12]}")
        rows.append(entry["rmse"])
    stamps = ", ".join(np.datetime_as_string(t, unit="h") for t in times)
    text = (f"48-h RMSE measured by hens on {getattr(source, 'name', 'the data')} from initial times {stamps}, "
            f"mean over checkpoints (cached in {cache})")
    return np.mean(np.asarray(rows, dtype=np.float64), axis=0), text
