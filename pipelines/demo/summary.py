"""``summary.md`` of the demo: scores at days 1/3/5/10, costs, and the science checks.

Everything comes from the products on disk (scores stores, the ensemble stores' run
attributes, the checkpoints' training records), so the summary of a reused run is the same.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hens.forecast.types import STEP, STEPS_PER_DAY
from hens.scoring.plots.scores import open_scores

DAYS = (1, 3, 5, 10)
_METRICS = {"crps": "CRPS", "rmse": "ensemble-mean RMSE", "spread_skill_ratio": "spread-skill ratio"}
SPECTRUM_TOLERANCE = 0.2  # member power within 20 % of the truth's (the Scoring issue's check)
REFERENCE_WINDOW_DAYS = 7
RESAMPLES = 2000  # draws of the initial times behind the spectral check's "resampled" column


def _at_day(ds: xr.Dataset, variable: str, channel: str, day: float) -> str:
    """The score at lead ``day`` as a table cell ("-" beyond the forecast)."""
    lead = np.timedelta64(int(day * 24), "h")
    if lead not in ds["lead_time"].values:
        return "-"
    return _fmt(float(ds[variable].sel(channel=channel, lead_time=lead)))


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.0f}"


def _run_record(store: Path) -> dict[str, Any]:
    import zarr

    group = zarr.open_group(store, mode="r")
    attrs = dict(group.attrs)
    inits, members, leads = group["completed"].shape + (group["lead_time"].shape[0],)
    member_steps = inits * members * (leads - 1)
    wall, ranks = float(attrs.get("wall_seconds", np.nan)), int(attrs.get("world_size", 1))
    return {"members": members, "inits": inits, "member_steps": member_steps, "wall": wall, "ranks": ranks,
            "cost": wall * ranks / member_steps, "models": attrs.get("checkpoints", [])}


def _training_minutes(folder: Path, records: str | list[Any]) -> float:
    """Sum of the training wall times of the checkpoints (in ``folder``) an ensemble used,
    each with that of the checkpoint it was started from (``hens train --init-from``)."""
    if isinstance(records, str):  # the store keeps it as JSON text
        records = json.loads(records)
    paths = [folder / str(r.get("name", "")) for r in records if isinstance(r, dict)]
    return sum(_wall_seconds(p) for p in paths if p.is_file()) / 60.0


def _wall_seconds(path: Path) -> float:
    """Training wall time (s) of the checkpoint at ``path`` and of the one it started from, when
    that file (as recorded, or by name beside it) is still the one it started from (sha256)."""
    from hens.models.checkpoint import file_sha256, load_checkpoint

    extra = load_checkpoint(path).extra
    seconds = float(extra.get("wall_seconds", 0.0))
    start, sha = extra.get("init_from"), (extra.get("options") or {}).get("init_from_sha256")
    if start:
        candidate = next((c for c in (Path(start), path.parent / Path(start).name) if c.is_file()), None)
        if candidate is not None and file_sha256(candidate) == sha:
            seconds += _wall_seconds(candidate)
    return seconds


def reference_spectrum(world: Path, valid_times: np.ndarray, *, window_days: int = REFERENCE_WINDOW_DAYS) -> xr.DataArray:
    """The truth's power spectrum ``(channel, wavenumber)`` around ``valid_times``.

    Mean over every 6-hourly truth time within ``window_days`` of a valid time: the same
    season, but far less sampling noise than the few verifying fields alone (a handful of
    fields puts 30-50 % noise on E_l at low l, more than the 20 % being checked).
    """
    import hens.scoring as hs
    from hens.forecast.channels import WORLD_CHANNELS
    from hens.forecast.sources import open_source

    source = open_source(world)  # reads the window's times only, not the whole record
    offsets = np.arange(-STEPS_PER_DAY * window_days, STEPS_PER_DAY * window_days + 1) * STEP
    times = np.unique((np.asarray(valid_times, "datetime64[ns]")[:, None] + offsets).ravel())
    times = times[np.isin(times, source.times)]
    return hs.power_spectrum(source(times, WORLD_CHANNELS)).mean("time")


def science_checks(ds: xr.Dataset, reference: xr.DataArray, *, truncation: int) -> dict[str, Any]:
    """The Scoring issue's checks on one scores store, per channel.

    ``crps_below_mae`` / ``crps_below_persistence``: CRPS below the ensemble-mean MAE / the
    persistence MAE at every lead from 1 to 10 days; ``members_spectrum``: largest
    ``|members / reference - 1|`` at the longest lead over wavenumbers 1..truncation/2
    (``reference``: :func:`reference_spectrum`); ``mean_spectrum``: mean ensemble-mean ratio
    over the upper half of that band, l = truncation/4+1..truncation/2 (below 1: smoother).
    """
    leads = ds["lead_time"].values / np.timedelta64(1, "D")
    window = (leads >= 1) & (leads <= 10)
    wavenumbers = slice(1, truncation // 2 + 1)
    checks: dict[str, Any] = {}
    for ch in map(str, ds["channel"].values):
        s = ds.sel(channel=ch)
        crps, mae, pers = (s[v].values[window] for v in ("crps", "mae", "persistence_mae"))
        last = s.isel(lead_time=-1, wavenumber=wavenumbers)
        truth = reference.sel(channel=ch).isel(wavenumber=wavenumbers).values
        checks[ch] = {
            "crps_below_mae": bool((crps < mae).all()), "worst_crps_over_mae": float((crps / mae).max()),
            "crps_below_persistence": bool((crps < pers).all()),
            "worst_crps_over_persistence": float((crps / pers).max()),
            "members_spectrum": float(np.abs(last["spectrum_members"].values / truth - 1).max()),
            "mean_spectrum": float((last["spectrum_ensemble_mean"].values / truth)[truncation // 4:].mean()),
        }
    return checks


def resampled_spectrum_errors(store: Path, world: Path, channels: list[str], *, band: slice,
                              draws: int = RESAMPLES, lead: np.timedelta64 | None = None) -> dict[str, xr.DataArray]:
    """Per channel, the worst ``|members / truth - 1|`` over the wavenumbers ``band`` at ``lead``
    (default the last) of an ensemble ``store`` for ``draws`` resamples of its initial times
    (:func:`hens.scoring.resampled_spectrum_error`; each time's truth: :func:`reference_spectrum`
    around its valid time)."""
    import hens.scoring as hs
    from hens.forecast.store_reader import open_store

    ds = open_store(store)
    ds = ds.isel(lead_time=-1) if lead is None else ds.sel(lead_time=lead)
    inits = ds["init_time"].values
    reference = xr.concat([reference_spectrum(world, [t]) for t in inits + ds["lead_time"].values], "init_time")
    reference = reference.isel(wavenumber=band).assign_coords(init_time=inits)
    return {ch: hs.resampled_spectrum_error(
                hs.power_spectrum(ds[ch]).mean("member").isel(wavenumber=band).drop_vars("lead_time", errors="ignore"),
                reference.sel(channel=ch, drop=True), draws=draws)
            for ch in channels}


def spectrum_resampling(store: Path, world: Path, channels: list[str], *, truncation: int,
                        draws: int = RESAMPLES) -> dict[str, float]:
    """Fraction of ``draws`` resamples of the initial times of an ensemble ``store`` in which a
    channel's ``members_spectrum`` check (:func:`science_checks`) exceeds
    :data:`SPECTRUM_TOLERANCE` at the last lead: near 0 or 1, the sample of initial times
    resolves the check; in between, another sample could turn it (docs/models.md, "How much of
    the spectral and CRPS checks is the sample of initial times")."""
    worst = resampled_spectrum_errors(store, world, channels, band=slice(1, truncation // 2 + 1), draws=draws)
    return {ch: float((w > SPECTRUM_TOLERANCE).mean()) for ch, w in worst.items()}


def valid_times(store: Path) -> np.ndarray:
    """Valid times of the longest lead of an ensemble store, one per initial time."""
    ds = xr.open_zarr(store, consolidated=True)
    return ds["init_time"].values + ds["lead_time"].values[-1]


def world_truncation(world: Path) -> int | None:
    """The spectral truncation of a hens world (``world_lmax``), None for other data."""
    value = xr.open_zarr(world, consolidated=True).attrs.get("world_lmax")
    return None if value is None else int(value)


def _table(scores: Mapping[str, xr.Dataset], variable: str) -> list[str]:
    lines = ["| ensemble | channel | " + " | ".join(f"day {d}" for d in DAYS) + " |",
             "|---|---|" + "---:|" * len(DAYS)]
    for name, ds in scores.items():
        for ch in map(str, ds["channel"].values):
            cells = [_at_day(ds, variable, ch, d) for d in DAYS]
            lines.append(f"| {name} | {ch} | " + " | ".join(cells) + " |")
    return lines


def _calibration_lines(out: Path, stores: Mapping[str, Path]) -> list[str]:
    """A table of what ``hens calibrate`` tuned, from the ensemble stores' ``hens_config``."""
    import zarr

    rows = []
    for name in stores:
        config = zarr.open_group(out / "ensembles" / f"{name}.zarr", mode="r").attrs.get("hens_config", {})
        c = (json.loads(config) if isinstance(config, str) else config).get("calibration")
        if isinstance(c, dict):
            rows.append(f"| {name} | {c.get('tuned')} = {c.get('value')} | {c.get('ssr')} ({c.get('target_ssr')}) | "
                        f"{', '.join(map(str, c.get('init_times', [])))} ({c.get('init_times_from', '-')}) | "
                        f"{c.get('iterations')} | {c.get('wall_seconds', '-')} |")
    if not rows:
        return []
    return ["", "## Calibration (hens calibrate)", "",
            "Spread-skill ratio at leads 72, 96, 120 h (mean over them and over the channels "
            "verified) on initial times held out from the checkpoints' training when their validation "
            "period leaves room, never the verified ones.", "",
            "| ensemble | tuned | SSR (target) | initial times | runs | wall (s) |", "|---|---|---:|---|---:|---:|",
            *rows]


def write_summary(out: Path, stores: Mapping[str, Path], *, settings: Mapping[str, Any],
                  timings: Mapping[str, float]) -> Path:
    """Write ``out/summary.md`` from the scores ``stores`` ``{ensemble name: path}``.

    ``settings`` (the demo's) and ``timings`` (wall seconds of each stage, from the run
    that did its work) are recorded as given; costs come from the ensemble stores under ``out/ensembles``.
    """
    scores = {name: open_scores(path) for name, path in stores.items()}
    lines = [f"# hens demo summary ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)", "",
             "Scores pooled over the initial times and the globe (area-weighted), against the world.",
             "Units: z500 m2 s-2, u500/v500 m s-1, t2m K. Figures: `plots/comparison_*.png`, per ensemble "
             "`plots/<ensemble>/`.", ""]
    for variable, title in _METRICS.items():
        lines += [f"## {title}", "", *_table(scores, variable), ""]
    lines += ["## Cost", "",
              "| ensemble | members | initial times | member-steps (6 h) | wall (s) | ranks | "
              "s per member-step | training (min) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in stores:
        r = _run_record(out / "ensembles" / f"{name}.zarr")
        lines.append(f"| {name} | {r['members']} | {r['inits']} | {r['member_steps']} | {r['wall']:.1f} | "
                     f"{r['ranks']} | {r['cost']:.4f} | {_training_minutes(out / 'checkpoints', r['models']):.1f} |")
    lines += _calibration_lines(out, stores)
    world = out / "world.zarr"
    # not a world: the grid's own truncation
    truncation = world_truncation(world) or next(iter(scores.values())).sizes["wavenumber"]
    lines += ["", "## Checks (Scoring issue)", "",
              "CRPS below the ensemble-mean MAE and below persistence at every lead 1-10 days; member "
              f"spectra at the last lead within {SPECTRUM_TOLERANCE:.0%} of the truth's at wavenumbers "
              f"1..{truncation // 2} (half the world's truncation T{truncation}) while the ensemble mean's "
              f"fall below. The truth's spectrum: mean over the 6-hourly truth within {REFERENCE_WINDOW_DAYS} "
              "days of the valid times.", "",
              "| ensemble | channel | CRPS < mean MAE (worst ratio) | CRPS < persistence (worst ratio) | "
              f"max abs(members/truth - 1) | resamples above {SPECTRUM_TOLERANCE:.0%} | mean/truth, upper half |",
              "|---|---|---|---|---:|---:|---:|"]
    for name, ds in scores.items():
        store = out / "ensembles" / f"{name}.zarr"
        reference = reference_spectrum(world, valid_times(store))
        checks = science_checks(ds, reference, truncation=truncation)
        resampled = spectrum_resampling(store, world, list(checks), truncation=truncation)
        for ch, c in checks.items():
            spectrum_ok = "ok" if c["members_spectrum"] <= SPECTRUM_TOLERANCE else "OUT"
            lines.append(
                f"| {name} | {ch} | {'yes' if c['crps_below_mae'] else 'NO'} ({c['worst_crps_over_mae']:.3f}) | "
                f"{'yes' if c['crps_below_persistence'] else 'NO'} ({c['worst_crps_over_persistence']:.3f}) | "
                f"{c['members_spectrum']:.3f} {spectrum_ok} | {resampled[ch]:.2f} | {c['mean_spectrum']:.3f} |")
    lines += ["", f"Resamples above {SPECTRUM_TOLERANCE:.0%}: the fraction of {RESAMPLES} draws of the initial "
              "times (with replacement) in which the members' spectrum check fails; near 0 or 1 the sample "
              "of initial times resolves it, in between another sample could turn it."]
    lines += ["", "Notes: the physics ensemble starts from the exact truth plus perturbations (a perfect "
              "model with no analysis error), so its spread exceeds its error at short leads by "
              "construction; the SFNO ensembles' error includes model error. Training minutes are the "
              "checkpoints' recorded wall time (the jobs shared the machine two at a time)."]
    lines += ["", "## Wall time of the stages", "", "| stage | wall (s) |", "|---|---:|",
              *(f"| {k} | {v:.0f} |" for k, v in timings.items()), "",
              "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()), ""]
    path = out / "summary.md"
    path.write_text("\n".join(lines))
    return path
