"""The initial times ``hens calibrate`` tunes on: held out from training, never the ensemble's own.

A calibration forecast from ``t`` reads the analyses of its breeding cycles, ``t - N x 6 h``
to ``t``, and is verified up to ``last_lead`` hours, so it uses the window
``[t - N x 6 h, t + last_lead]``. The ensemble's verification block is
``[first init - N x 6 h, last init + lead_hours]``: a time whose window meets it would fit the
perturbation to the very cases the ensemble is scored on, so such a time is refused.

Default times: ``count`` times at 00 UTC, spread evenly (first and last included) over the
eligible times of a period, eligible meaning that the whole window lies in the period and in
the data, clear of the verification block. The period is the first of these with an eligible
time:

1. the checkpoints' validation period (``hens train`` writes ``extra.split.val``; the
   intersection of theirs): forecasts there are out of sample, as the verified ones are. On
   the training period itself the models' errors are smaller than on unseen weather, so an
   amplitude tuned there is too small: measured on the world (docs/calibration.md), an
   amplitude tuned to SSR 1.00 on two training-period times gave 0.68-0.82 at days 3-5 on the
   held-out block;
2. the checkpoints' training period (``extra.split.train``), when the validation period has
   no eligible time (e.g. the verification block covers it);
3. the data's whole record (published packages and ``models: [physics]`` record neither).

``period`` replaces the choice of period, ``init_times`` the choice of times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hens.forecast.errors import ConfigError, DataError
from hens.forecast.types import HOURS_PER_STEP, STEP
from hens.models.training.periods import parse_period
from hens.pipelines.forecast.config import ForecastConfig



@dataclass(frozen=True)
class CalibrationTimes:
    """Initial times to tune on (``datetime64[ns]``, ascending) and where they come from."""

    times: tuple[np.datetime64, ...]
    origin: str


def _hour(t: np.datetime64) -> str:
    return str(np.datetime_as_string(np.datetime64(t, "h")))


def breeding_hours(cfg: ForecastConfig) -> np.timedelta64:
    """How far before an initial time the perturbation reads analyses (bred vectors only)."""
    return cfg.perturbation.cycles * STEP if cfg.perturbation.bred else np.timedelta64(0, "h")


def verification_block(cfg: ForecastConfig) -> tuple[np.datetime64, np.datetime64]:
    """First and last valid time the ensemble of ``cfg`` reads or is scored at (inclusive)."""
    return (np.datetime64(cfg.init_times[0] - breeding_hours(cfg), "ns"),
            np.datetime64(cfg.init_times[-1] + np.timedelta64(cfg.lead_hours, "h"), "ns"))


def recorded_period(splits: Sequence[object], part: str) -> tuple[np.datetime64, np.datetime64] | None:
    """The period (inclusive) common to checkpoints' ``extra["split"][part]`` records
    (``part``: ``"train"`` or ``"val"``).

    ``None`` when a checkpoint records none (a published package) or they do not overlap.
    """
    firsts, lasts = [], []
    for split in splits:
        span = split.get(part) if isinstance(split, dict) else None
        if not isinstance(span, list) or len(span) < 2:
            return None
        firsts.append(np.datetime64(str(span[0]), "ns"))
        lasts.append(np.datetime64(str(span[1]), "ns"))
    if not firsts or max(firsts) > min(lasts):
        return None
    return max(firsts), min(lasts)


def _windows(starts: np.ndarray, before: np.timedelta64, last_lead: int) -> np.ndarray:
    """``(T, K)`` 6-hourly valid times each initial time's window needs."""
    steps = np.arange(-(before // STEP), last_lead // HOURS_PER_STEP + 1) * STEP
    return starts[:, None] + steps.astype("timedelta64[ns]")[None, :]


def calibration_times(
    cfg: ForecastConfig,
    data_times: np.ndarray,
    *,
    last_lead: int,
    splits: Sequence[object] = (),
    init_times: Sequence[str] | None = None,
    period: str | None = None,
    count: int = 4,
) -> CalibrationTimes:
    """Choose (or check) the initial times of a calibration of ``cfg`` (module docstring).

    Parameters
    ----------
    cfg
        The ensemble; its verification block is never used.
    data_times
        Valid times of its data (``datetime64``).
    last_lead
        Last lead verified (hours).
    splits
        The checkpoints' ``extra["split"]`` records (empty for ``models: [physics]``).
    init_times
        Times to use instead of a choice (``--init-times``); each is checked.
    period
        ``FIRST:LAST`` to choose from instead of the checkpoints' periods (``--period``).
    count
        Times to choose.

    Raises
    ------
    ConfigError
        A given time whose window meets the verification block, or no eligible time.
    DataError
        A given time whose window is not in the data.
    """
    times = np.unique(np.asarray(data_times, dtype="datetime64[ns]"))
    v0, v1 = verification_block(cfg)
    before = breeding_hours(cfg)
    block = f"{_hour(v0)} .. {_hour(v1)} (its init_times, breeding analyses and {cfg.lead_hours} h of leads)"
    if init_times is not None:
        chosen = []
        for text in init_times:
            try:
                t = np.datetime64(str(text).strip(), "ns")
            except ValueError:
                raise ConfigError(f"--init-times: cannot read {text!r}; write e.g. 2000-03-01T00") from None
            if t - before <= v1 and v0 <= t + np.timedelta64(last_lead, "h"):
                raise ConfigError(f"calibration init time {_hour(t)} uses {_hour(t - before)} .. "
                                  f"{_hour(t + np.timedelta64(last_lead, 'h'))}, which meets the ensemble's "
                                  f"verification block {block}; choose times outside it")
            missing = np.setdiff1d(_windows(np.array([t]), before, last_lead)[0], times)
            if missing.size:
                raise DataError(f"calibration init time {_hour(t)} needs the analysis of {_hour(missing[0])}, "
                                "which the data lack")
            chosen.append(t)
        return CalibrationTimes(tuple(sorted(set(chosen))), "given by --init-times")
    if period is not None:
        p = parse_period(period, option="--period")
        candidates = [(p.start, p.stop - np.timedelta64(1, "ns"), f"--period {p.text}")]
    else:
        candidates = [(*span, f"the checkpoints' {name} period {_hour(span[0])} .. {_hour(span[1])}")
                      for part, name in (("val", "validation"), ("train", "training"))
                      if (span := recorded_period(splits, part)) is not None]
        if not candidates:
            candidates = [(times[0], times[-1], "the data (the checkpoints record no training or validation period)")]
    starts = times[(times - times.astype("datetime64[D]")) == np.timedelta64(0, "ns")]  # 00 UTC
    ends = starts + np.timedelta64(last_lead, "h")
    clear = ~((starts - before <= v1) & (v0 <= ends)) & np.isin(_windows(starts, before, last_lead), times).all(axis=1)
    for first, last, origin in candidates:
        eligible = starts[clear & (starts - before >= first) & (ends <= last)]
        if eligible.size:
            picks = np.unique(np.linspace(0, eligible.size - 1, min(count, eligible.size)).round().astype(int))
            return CalibrationTimes(tuple(eligible[picks]), origin)
    raise ConfigError(f"no 00 UTC initial time in {' or '.join(c[2] for c in candidates)} has its analyses from "
                      f"{int(before // STEP)} breeding cycles to {last_lead} h in the data, clear of the ensemble's "
                      f"verification block {block}; pass --period or --init-times")
