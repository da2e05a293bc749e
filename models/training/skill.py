"""Quick skill of a checkpoint on held-out dates: RMSE against persistence and climatology.

Used by the training benchmark and the science tests; the full scoring lives in
:mod:`hens.scoring`. All scores are area weighted (quadrature weights of the grid), averaged
as mean squared error over (lat, lon) and start dates before the square root
(WeatherBench2). For ensembles the skill is the RMSE of the ensemble mean and the spread
the root of the mean unbiased ensemble variance; ``spread_skill`` multiplies their ratio by
``sqrt((M + 1) / M)``, which makes 1 the expectation for a perfectly reliable M-member
ensemble (Fortin et al. 2014); ``crps`` is the area-weighted fair CRPS of the ensemble.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from hens.forecast.errors import DataError
from hens.forecast.types import STEP, STEPS_PER_DAY
from hens.models.checkpoint import Checkpoint
from hens.models.sfno.noise import make_generator
from hens.models.training.losses import crps
from hens.scoring.spectra import default_lmax, spectrum_kernel



def climatology_at(climatology: np.ndarray, centres: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Day-of-year climatology at ``times``: linear in day of year between window centres.

    ``climatology`` is ``(centre, channel, lat, lon)``; the year is circular (365.25 days).
    """
    doy = (times.astype("datetime64[D]") - times.astype("datetime64[Y]")).astype(np.float64) + 1.0
    doy += (times - times.astype("datetime64[D]")) / np.timedelta64(1, "D")
    order = np.argsort(centres)
    c = centres[order].astype(np.float64)
    clim = climatology[order]
    ext_c = np.concatenate([[c[-1] - 365.25], c, [c[0] + 365.25]])
    ext = np.concatenate([clim[-1:], clim, clim[:1]])
    hi = np.searchsorted(ext_c, doy, side="right").clip(1, ext_c.size - 1)
    lo = hi - 1
    frac = ((doy - ext_c[lo]) / (ext_c[hi] - ext_c[lo]))[:, None, None, None]
    return (1.0 - frac) * ext[lo] + frac * ext[hi]


@dataclass(frozen=True)
class Skill:
    """Scores per lead (rows, in days) and channel (columns)."""

    lead_days: tuple[float, ...]
    channels: tuple[str, ...]
    model: np.ndarray
    persistence: np.ndarray
    climatology: np.ndarray | None
    spread: np.ndarray | None
    members: int
    starts: int
    crps: np.ndarray | None = None
    member_power: np.ndarray | None = None
    truth_power: np.ndarray | None = None

    def records(self, channels: Sequence[str], *, spectrum_lmax: int | None = None) -> list[dict[str, Any]]:
        """One flat dict per (channel, lead): CRPS, ensemble-mean RMSE, spread/skill and, with
        spectra, :meth:`spectrum_error` up to ``spectrum_lmax`` (rows of a results table)."""
        spectrum = None if self.member_power is None else self.spectrum_error(lmax=spectrum_lmax)
        rows = []
        for c in channels:
            k = self.channels.index(c)
            for i, lead in enumerate(self.lead_days):
                row = {"channel": c, "lead_days": lead, "crps": round(float(self.crps[i, k]), 4),
                       "ens_mean_rmse": round(float(self.model[i, k]), 4),
                       "spread_skill": round(float(self.spread_skill[i, k]), 3), "starts": self.starts}
                if spectrum is not None:
                    row["spectrum_error"] = round(float(spectrum[i, k]), 3)
                rows.append(row)
        return rows

    def spectrum_error(self, lmin: int = 1, lmax: int | None = None) -> np.ndarray:
        """``max_l |member power / truth's - 1|`` over ``l = lmin..lmax`` (default half the
        resolved degrees), ``(lead, channel)``; needs ``evaluate(..., spectra=True)``."""
        if self.member_power is None or self.truth_power is None:
            raise ValueError("no spectra: evaluate with spectra=True")
        top = self.truth_power.shape[-1] // 2 if lmax is None else lmax
        ratio = self.member_power[..., lmin : top + 1] / self.truth_power[..., lmin : top + 1]
        return np.abs(ratio - 1.0).max(-1)

    @property
    def spread_skill(self) -> np.ndarray | None:
        if self.spread is None:
            return None
        return np.sqrt((self.members + 1) / self.members) * self.spread / self.model

    def table(self, channels: Sequence[str] | None = None) -> str:
        """Text table: RMSE of model, persistence, climatology, the ratios, spread/skill."""
        lines = [f"{self.starts} held-out starts, {self.members} member(s); area-weighted RMSE"]
        for c in channels or self.channels:
            k = self.channels.index(c)
            for i, lead in enumerate(self.lead_days):
                row = f"  {c:>5} {lead:4g} d  model {self.model[i, k]:10.4g}  persistence {self.persistence[i, k]:10.4g}"
                row += f" (ratio {self.model[i, k] / self.persistence[i, k]:.3f})"
                if self.climatology is not None:
                    row += f"  climatology {self.climatology[i, k]:10.4g} (ratio {self.model[i, k] / self.climatology[i, k]:.3f})"
                if self.spread is not None:
                    row += f"  spread {self.spread[i, k]:.4g}  spread/skill {self.spread_skill[i, k]:.3f}"
                    row += f"  CRPS {self.crps[i, k]:.4g}"
                lines.append(row)
        return "\n".join(lines)


def evaluate(
    ckpt: Checkpoint,
    source,
    starts: np.ndarray,
    *,
    lead_days: Sequence[float] = (1.0, 3.0, 5.0),
    members: int = 1,
    climatology: tuple[np.ndarray, np.ndarray] | None = None,
    batch: int = 32,
    seed: int = 0,
    spectra: bool = False,
) -> Skill:
    """Roll ``ckpt`` out from ``starts`` and score it at ``lead_days`` against ``source``.

    ``members`` > 1 needs a stochastic checkpoint: member ``j`` of every start uses noise
    seed ``seed + j`` (the same seeds at every start). ``climatology`` is
    ``(centres_dayofyear, values (centre, channel, lat, lon))`` in the checkpoint's channels.
    ``spectra``: also the angular power spectra (:mod:`hens.scoring.spectra`, [unit]^2 sr) of
    the members and of the truth, averaged over members and starts, ``(lead, channel, l)``.
    """
    if members > 1 and not ckpt.stochastic:
        raise DataError("an ensemble needs a stochastic checkpoint")
    steps = [int(round(d * STEPS_PER_DAY)) for d in lead_days]
    starts = np.asarray(starts, dtype="datetime64[ns]")
    channels = list(ckpt.channels)
    weights = source.grid.area_weights[:, None] / source.grid.area_weights.sum() / source.grid.nlon
    stepper = ckpt.stepper().eval()
    n_lead, n_chan = len(steps), len(channels)
    sums = {k: np.zeros((n_lead, n_chan)) for k in ("model", "persistence", "climatology", "var", "crps")}
    grid = source.grid
    lmax = default_lmax(grid)
    power = partial(spectrum_kernel, nlat=grid.nlat, nlon=grid.nlon, lmax=lmax, mmax=lmax, grid=grid.sht_grid,
                    kind="total")
    powers = {k: np.zeros((n_lead, n_chan, lmax)) for k in ("member", "truth")}
    for i in range(0, starts.size, batch):
        when = starts[i : i + batch]
        x0 = torch.from_numpy(source(when, channels).values)
        truth = {s: source(when + s * STEP, channels).values.astype(np.float64) for s in steps}
        x, noise = x0.repeat_interleave(members, 0), None
        gens = [make_generator(seed + j) for _ in range(when.size) for j in range(members)]
        with torch.no_grad():
            for s in range(1, max(steps) + 1):
                valid = np.repeat(when + (s - 1) * STEP, members)  # valid time of the input state
                if ckpt.stochastic:  # each member's noise state advances once per step
                    noise = stepper.next_noise(gens, x.shape[0], noise)
                x = stepper(x, noise=noise, time=valid)
                if s not in steps:
                    continue
                k = steps.index(s)
                ens = x.double().numpy().reshape(when.size, members, n_chan, *x.shape[-2:])
                mean = ens.mean(1)
                sums["model"][k] += ((mean - truth[s]) ** 2 * weights).sum((-2, -1)).sum(0)
                sums["persistence"][k] += ((x0.double().numpy() - truth[s]) ** 2 * weights).sum((-2, -1)).sum(0)
                if members > 1:
                    sums["var"][k] += (ens.var(1, ddof=1) * weights).sum((-2, -1)).sum(0)
                    fair = crps(torch.from_numpy(ens), torch.from_numpy(truth[s]), 1, torch.from_numpy(weights),
                                kind="fair")
                    sums["crps"][k] += fair.sum(0).numpy()
                if spectra:
                    powers["member"][k] += power(ens).mean(1).sum(0)
                    powers["truth"][k] += power(truth[s]).sum(0)
                if climatology is not None:
                    clim = climatology_at(climatology[1], climatology[0], when + s * STEP)
                    sums["climatology"][k] += ((clim - truth[s]) ** 2 * weights).sum((-2, -1)).sum(0)
    n = starts.size
    return Skill(
        tuple(float(d) for d in lead_days), tuple(channels), np.sqrt(sums["model"] / n),
        np.sqrt(sums["persistence"] / n), np.sqrt(sums["climatology"] / n) if climatology is not None else None,
        np.sqrt(sums["var"] / n) if members > 1 else None, members, n,
        sums["crps"] / n if members > 1 else None,
        powers["member"] / n if spectra else None, powers["truth"] / n if spectra else None,
    )


def held_out_starts(ckpt: Checkpoint, source, *, max_lead_days: float, every_hours: int = 12) -> np.ndarray:
    """Start times in the checkpoint's validation block with ``max_lead_days`` of truth after them."""
    first, last, _ = ckpt.extra["split"]["val"]
    first, last = np.datetime64(first, "ns"), np.datetime64(last, "ns")
    times = source.times[(source.times >= first) & (source.times <= last - np.timedelta64(int(max_lead_days * 24), "h"))]
    times = times[((times - times[0]) / np.timedelta64(1, "h")).astype(int) % every_hours == 0] if times.size else times
    if times.size == 0:
        raise DataError(f"no start in the held-out block {first}..{last} leaves {max_lead_days} days of truth")
    return times


def world_climatology(stats, channels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(centres, values)`` from a statistics store (:mod:`hens.forecast.stats`)."""
    clim = stats["climatology_mean"].sel(channel=list(channels)).transpose("dayofyear", "channel", "lat", "lon")
    return stats["dayofyear"].values, clim.values.astype(np.float64)
