"""The band of a pushed-forward input that is the model's own (``hens train --pushforward-degrees``).

``--pushforward K`` trains some steps from the model's own forecasts instead of analyses
(:meth:`hens.models.training.run.Run.pushed_at`). Learning to take back all of a forecast's
error also teaches the model to damp the small scales, whose errors it cannot place (measured
in docs/models.md, "Pushforward"); :func:`keep_degrees` keeps the error at the planetary
scales, where the drift is, and gives the rest of the input from the analysis.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from hens.forecast.grids import Grid


@lru_cache(maxsize=8)
def _transforms(grid: Grid, lmax: int, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Forward and inverse real SHT of ``grid`` truncated at ``lmax`` (float32), built once per key."""
    from torch_harmonics import InverseRealSHT, RealSHT

    kwargs = {"lmax": lmax, "mmax": lmax, "grid": grid.sht_grid, "norm": "ortho"}
    return (RealSHT(grid.nlat, grid.nlon, **kwargs).to(device),
            InverseRealSHT(grid.nlat, grid.nlon, **kwargs).to(device))


def keep_degrees(x: torch.Tensor, grid: Grid, degrees: int) -> torch.Tensor:
    """``x`` (..., lat, lon) on ``grid`` with only its total wavenumbers ``l = 0..degrees`` (float32)."""
    forward, inverse = _transforms(grid, degrees + 1, x.device)
    with torch.autocast(device_type=x.device.type, enabled=False):
        return inverse(forward(x.float()))


def pushed_input(forecast: torch.Tensor, truth: torch.Tensor, grid: Grid, degrees: int | None) -> torch.Tensor:
    """The input of a pushed-forward step: the model's ``forecast``, or with ``degrees`` N the
    analysis ``truth`` plus the forecast's error at ``l <= N`` (both physical units, same shape)."""
    if degrees is None:
        return forecast
    return truth + keep_degrees(forecast - truth, grid, degrees).to(truth.dtype)
