"""``hens calibrate``: tune an ensemble's perturbation so that spread/skill is ~1 at days 3-5.

Huge Ensembles Part I set the bred-vector amplitude by hand (0.35 x the 48-h RMSE). Here the
ensemble of a YAML is run in memory with few members (:func:`default_pairs`) from initial
times held out from the checkpoints' training (:mod:`hens.pipelines.calibrate.times`, never
the ensemble's own verification block) for 120 hours, and one number is searched so that the spread-skill
ratio (:func:`hens.scoring.moments.spread_skill_ratio`: sqrt((M+1)/M) spread / ensemble-mean
RMSE, pooled over initial times and the globe) averaged over leads 72, 96 and 120 h and the
channels equals a target:

* ``amplitude`` (``perturbation.amplitude``), the default whenever the YAML perturbs;
* ``noise_scale``, the factor on a stochastic model's noise, the default with
  ``perturbation: {kind: none}`` (:class:`hens.pipelines.forecast.steppers.CheckpointStepper`).

Spread grows roughly in proportion to the amplitude at short leads but not exactly (model
spread from several checkpoints or noise, nonlinear growth), so :func:`search` works on
(log value, log SSR): the first step assumes proportionality, later ones take the secant
of the two closest trials (a bracket once one exists), at most x4 per step. Every trial uses
the same members and seeds, so SSR is a smooth function of the value. Values are rounded to
3 significant digits before a trial: the value written is the value measured.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hens.forecast.errors import ConfigError, OutputExists
from hens.forecast.types import HOURS_PER_STEP, TunedParameter, check_choice
from hens.pipelines.calibrate.times import CalibrationTimes, calibration_times
from hens.pipelines.forecast.config import ForecastConfig, load_config, parse_config

#: leads verified (hours): days 3, 4 and 5
LEADS = (72, 96, 120)
#: channels verified when neither --channels nor the YAML's output_channels say (those present)
DEFAULT_CHANNELS = ("z500", "t2m")
#: the YAML key of each tuned parameter
TUNED_KEYS = {"amplitude": "perturbation.amplitude", "noise_scale": "noise_scale"}
#: members per initial time that :func:`default_pairs` reaches at least
MIN_MEMBERS = 8
_MAX_STEP = math.log(4.0)  # largest change of log(value) per iteration
_BOUND = 100.0  # values are searched within start / 100 .. start x 100


@dataclass(frozen=True)
class Trial:
    """One forecast run of the search: the value tried (dimensionless: a fraction of the
    perturbation scale, or a factor on the noise) and the SSR it gave (mean and per channel)."""

    value: float
    ssr: float
    by_channel: dict[str, float]


@dataclass(frozen=True)
class Calibration:
    """The outcome of :func:`calibrate`: ``value`` of ``parameter`` gave ``ssr`` (target ``target``)."""

    parameter: TunedParameter
    target: float
    tolerance: float
    trials: tuple[Trial, ...]
    converged: bool
    times: CalibrationTimes
    channels: tuple[str, ...]
    members: int
    seconds: float

    @property
    def best(self) -> Trial:
        """The trial closest to the target in log SSR."""
        return min(self.trials, key=lambda t: abs(math.log(t.ssr / self.target)))

    @property
    def name(self) -> str:
        """The tuned key as the YAML spells it."""
        return TUNED_KEYS[self.parameter]

    def shortfall(self) -> str:
        """One line on a search that missed the tolerance: how close it came, and a likely cause."""
        best = self.best
        line = (f"SSR {best.ssr:.3f} at {self.name} {best.value:g} after {len(self.trials)} runs is not within "
                f"{self.tolerance:g} x {self.target:g}; the closest value is written (calibration.converged: false)")
        if self.parameter == "amplitude" and all(t.ssr > self.target for t in self.trials):
            line += ("; the members spread apart without any perturbation (different checkpoints or model "
                     "noise), so no amplitude lowers SSR to the target")
        return line

    def provenance(self) -> dict[str, Any]:
        """The YAML's ``calibration:`` block: what was tuned, on what, and what it gave."""
        from hens import __version__

        best = self.best
        return {
            "tuned": self.name, "value": best.value, "target_ssr": self.target, "tolerance": self.tolerance,
            "ssr": round(best.ssr, 4),
            "ssr_by_channel": {c: round(v, 4) for c, v in best.by_channel.items()}, "converged": self.converged,
            "lead_hours": list(LEADS), "channels": list(self.channels), "members": self.members,
            "init_times": [str(np.datetime_as_string(t, unit="h")) for t in self.times.times],
            "init_times_from": self.times.origin, "iterations": len(self.trials),
            "trials": [[t.value, round(t.ssr, 4)] for t in self.trials], "wall_seconds": round(self.seconds, 1),
            "hens_version": __version__,
        }


def _round(value: float) -> float:
    return float(f"{value:.3g}")


def next_value(trials: Sequence[Trial], target: float) -> float:
    """The value to try next, from the trials so far (module docstring), rounded."""
    u = np.log([t.value for t in trials])
    g = np.log([t.ssr / target for t in trials])
    below, above = np.flatnonzero(g < 0), np.flatnonzero(g > 0)
    k = np.argsort(np.abs(g))  # trials closest to the target first
    if below.size and above.size:  # bracketed: interpolate between the closest trial on each side
        i, j = below[np.argmax(g[below])], above[np.argmin(g[above])]
        guess = u[i] - g[i] * (u[j] - u[i]) / (g[j] - g[i])
    else:
        slope = 1.0  # SSR in proportion to the value, until two trials say otherwise
        if len(trials) > 1 and u[k[0]] != u[k[1]]:
            slope = float(np.clip((g[k[0]] - g[k[1]]) / (u[k[0]] - u[k[1]]), 0.2, 5.0))
        guess = u[k[0]] - g[k[0]] / slope
    step = float(np.clip(guess - u[k[0]], -_MAX_STEP, _MAX_STEP))  # from the closest trial
    return _round(float(np.exp(u[k[0]] + step)))


def search(
    evaluate: Callable[[float], tuple[float, dict[str, float]]],
    start: float,
    *,
    target: float,
    tolerance: float,
    max_iterations: int,
    on_trial: Callable[[int, Trial], None] | None = None,
) -> tuple[tuple[Trial, ...], bool]:
    """Search ``value`` with ``evaluate(value)[0]`` (an SSR) within ``tolerance`` x ``target``.

    Returns the trials in order and whether the last one is within tolerance. Stops early when
    the next value was tried already (a bound of start / 100 .. start x 100, or a flat SSR).
    """
    lo, hi = start / _BOUND, start * _BOUND
    trials: list[Trial] = []
    value = _round(start)
    for k in range(max_iterations):
        ssr, by_channel = evaluate(value)
        trials.append(Trial(value, ssr, by_channel))
        if on_trial is not None:
            on_trial(k + 1, trials[-1])
        if abs(ssr / target - 1.0) <= tolerance:
            return tuple(trials), True
        value = _round(min(max(next_value(trials, target), lo), hi))
        if any(value == t.value for t in trials):
            break
    return tuple(trials), False


def default_pairs(checkpoints: int, seeds: int) -> int:
    """The fewest +/- pairs that give at least :data:`MIN_MEMBERS` members per initial time."""
    return max(1, math.ceil(MIN_MEMBERS / (2 * checkpoints * seeds)))


def default_parameter(cfg: ForecastConfig) -> TunedParameter:
    """``amplitude`` when the YAML perturbs the initial states, else ``noise_scale``."""
    return "noise_scale" if cfg.perturbation.kind == "none" else "amplitude"


def choose_channels(cfg: ForecastConfig, model_channels: Sequence[str], channels: Sequence[str] | None) -> tuple[str, ...]:
    """``channels``, else the YAML's ``output_channels``, else :data:`DEFAULT_CHANNELS` present, else all."""
    wanted = channels or cfg.output_channels or [c for c in DEFAULT_CHANNELS if c in model_channels]
    missing = [c for c in wanted if c not in model_channels]
    if missing:
        raise ConfigError(f"channel {missing[0]!r} is not a channel of the models ({', '.join(model_channels)})")
    return tuple(wanted) or tuple(model_channels)


def calibrate(
    config: str | Path,
    *,
    target: float = 1.0,
    parameter: TunedParameter | None = None,
    init_times: Sequence[str] | None = None,
    period: str | None = None,
    inits: int = 4,
    pairs: int | None = None,
    channels: Sequence[str] | None = None,
    tolerance: float = 0.05,
    max_iterations: int = 6,
    device: str = "cpu",
    report: Callable[[str], None] | None = None,
) -> Calibration:
    """Tune ``parameter`` of the ensemble YAML ``config`` for SSR = ``target`` at days 3-5.

    Parameters
    ----------
    config
        The ensemble YAML (read, never written).
    target
        Spread-skill ratio wanted (1: calibrated).
    parameter
        ``"amplitude"`` or ``"noise_scale"``; default :func:`default_parameter`.
    init_times, period, inits
        Initial times given, the period to choose ``inits`` of them from (default the
        checkpoints' validation period): :func:`hens.pipelines.calibrate.times.calibration_times`.
    pairs
        +/- pairs per checkpoint (and noise seed) of the calibration runs; default :func:`default_pairs`.
    channels
        Channels verified; default :func:`choose_channels`.
    tolerance
        Stop when |SSR / target - 1| <= tolerance.
    max_iterations
        Forecast runs at most.
    device
        Torch device of the runs.
    report
        Called with one line of progress per step (the CLI prints it on stderr).

    Returns
    -------
    Calibration
        Its :attr:`Calibration.best` trial holds the value to use.
    """
    import torch

    from hens.forecast.sources import open_source
    from hens.models.checkpoint import read_header
    from hens.pipelines.calibrate.runs import calibration_plan, spread_skill
    from hens.pipelines.forecast.components import check_analyses, load_models
    from hens.pipelines.forecast.run import process_settings

    began = time.perf_counter()
    say = report or (lambda _line: None)
    cfg = load_config(config)
    _check_options(target, tolerance, max_iterations, inits, pairs)
    parameter = parameter or default_parameter(cfg)
    check_choice("--tune", parameter, TunedParameter)
    if parameter == "amplitude" and cfg.perturbation.kind == "none":
        raise ConfigError("perturbation kind none has no amplitude to tune; use --tune noise_scale")
    with process_settings(cfg.threads):
        source = open_source(cfg.data_paths)
        splits = [read_header(p).extra.get("split") for p in cfg.model_paths]
        times = calibration_times(cfg, source.times, last_lead=LEADS[-1], splits=splits, init_times=init_times,
                                  period=period, count=inits)
        models = load_models(cfg, source, torch.device(device))  # the scale the ensemble itself uses
        if parameter == "noise_scale" and (cfg.physics or not models.stochastic):
            raise ConfigError("these models have no noise to scale (deterministic checkpoints or physics); "
                              "tune the amplitude")
        verified = choose_channels(cfg, models.steppers[0].channels, channels)
        q = pairs or default_pairs(len(models.steppers), cfg.seeds)

        def trial_config(amplitude: float) -> ForecastConfig:
            values = cfg.to_dict()
            values.update(init_times=[str(t) for t in times.times], lead_hours=LEADS[-1], output_every_hours=HOURS_PER_STEP)
            values["perturbation"].update(amplitude=amplitude, pairs=q)
            return parse_config(values, base_dir=cfg.base_dir)

        members = len(models.steppers) * q * 2 * cfg.seeds
        tuned = TUNED_KEYS[parameter]
        other = (f"; noise_scale stays {cfg.noise_scale:g} (--tune noise_scale tunes it instead)"
                 if parameter == "amplitude" and models.stochastic and not cfg.physics else "")
        say(f"tuning {tuned}{other} for spread/skill {target:g} at leads {', '.join(map(str, LEADS))} h "
            f"on {', '.join(verified)}")
        say(f"{len(times.times)} init time(s) from {times.origin}: "
            f"{', '.join(np.datetime_as_string(t, unit='h') for t in times.times)}; {members} members each")
        check_analyses(calibration_plan(trial_config(cfg.perturbation.amplitude), source, models),
                       cfg.perturbation.cycles)

        def evaluate(value: float) -> tuple[float, dict[str, float]]:
            amplitude = value if parameter == "amplitude" else cfg.perturbation.amplitude
            scale = value if parameter == "noise_scale" else None
            return spread_skill(calibration_plan(trial_config(amplitude), source, models, noise_scale=scale),
                                verified, LEADS)

        def on_trial(k: int, trial: Trial) -> None:
            detail = ", ".join(f"{c} {v:.3f}" for c, v in trial.by_channel.items())
            say(f"iteration {k}: {tuned} {trial.value:g} -> SSR {trial.ssr:.3f} ({detail})")

        start = cfg.perturbation.amplitude if parameter == "amplitude" else cfg.noise_scale
        trials, converged = search(evaluate, start, target=target, tolerance=tolerance,
                                   max_iterations=max_iterations, on_trial=on_trial)
    return Calibration(parameter, target, tolerance, trials, converged, times, verified, members,
                       time.perf_counter() - began)


def _check_options(target: float, tolerance: float, max_iterations: int, inits: int, pairs: int | None) -> None:
    for name, value in (("--target-ssr", target), ("--tolerance", tolerance)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a positive number, got {value}")
    for name, value in (("--max-iterations", max_iterations), ("--inits", inits), ("--pairs", 1 if pairs is None else pairs)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")


def calibrated_yaml(config: str | Path, calibration: Calibration) -> str:
    """The text of ``config`` with the tuned value written in and a ``calibration:`` block.

    Key order is kept; comments of the original are not (``yaml.safe_load``).
    """
    import yaml

    values = yaml.safe_load(Path(config).read_text())
    best = calibration.best
    if calibration.parameter == "amplitude":
        values["perturbation"] = dict(values.get("perturbation") or {}, amplitude=best.value)
    else:
        values["noise_scale"] = best.value
    values["calibration"] = calibration.provenance()
    return yaml.safe_dump(values, sort_keys=False, default_flow_style=None, width=100)


def check_output(out: Path, *, force: bool) -> None:
    """Raise unless ``out`` can be written: its folder exists, and it does not or ``force``."""
    if out.exists() and not force:
        raise OutputExists(f"{out} exists; pass --force to replace it")
    if not out.parent.is_dir():
        raise ConfigError(f"the folder of --out {out} does not exist")


def write_calibrated(text: str, out: Path, *, force: bool) -> Path:
    """Write ``text`` to ``out`` (:func:`check_output` first)."""
    check_output(out, force=force)
    out.write_text(text)
    return out
