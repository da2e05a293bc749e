"""``hens calibrate``'s command line (registered by :mod:`hens.pipelines.cli`; kept apart to
keep that module short). Imports only typer until it runs, as every hens command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def calibrate(
    config: Annotated[Path, typer.Argument(help="Ensemble YAML to tune (read, never changed).")],
    target_ssr: Annotated[float, typer.Option("--target-ssr", help="Spread-skill ratio wanted at days 3-5 (1: calibrated).")] = 1.0,
    out: Annotated[Path | None, typer.Option("--out", help="Write the tuned YAML to this file instead of stdout.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
    tune: Annotated[str | None, typer.Option("--tune", help="amplitude (perturbation.amplitude; the default when the YAML perturbs) or noise_scale (a stochastic model's noise; the default with perturbation kind none).")] = None,
    init_times: Annotated[str | None, typer.Option("--init-times", help="Comma-separated initial times to tune on, e.g. 2000-03-01T00,2000-04-01T00 (default: --inits times chosen from --period).")] = None,
    period: Annotated[str | None, typer.Option("--period", help="FIRST:LAST to choose initial times from (default: the checkpoints' validation period, else their training period, else the data); never the ensemble's own verification block.")] = None,
    inits: Annotated[int, typer.Option("--inits", help="Initial times chosen from the period (00 UTC, spread evenly).", min=1)] = 4,
    pairs: Annotated[int | None, typer.Option("--pairs", help="+/- pairs of the calibration runs (default: the fewest giving >= 8 members per init).", min=1)] = None,
    channels: Annotated[str | None, typer.Option("--channels", help="Comma-separated channels verified (default: the YAML's output_channels, else z500,t2m where present, else all).")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Stop when |SSR / target - 1| is at most this.")] = 0.05,
    max_iterations: Annotated[int, typer.Option("--max-iterations", help="Forecast runs at most.", min=1)] = 6,
    device: Annotated[str, typer.Option("--device", help="Torch device of the runs: cpu, cuda.")] = "cpu",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Print each iteration (value, SSR) on stderr.")] = True,
) -> None:
    """Tune the bred-vector amplitude (or a stochastic model's noise_scale) for spread/skill ~1.

    Runs the ensemble with few members for 120 h from initial times the checkpoints were not
    trained on (their validation period, else their training period, else the data),
    searches the value whose spread-skill ratio (mean over leads 72, 96, 120 h and the
    channels) is --target-ssr, and prints the YAML with that value and a calibration: block
    (target, SSR reached, initial times, iterations). Initial times whose breeding or
    verification meets the ensemble's own (init_times to init_times + lead_hours) are refused.

    Example: hens calibrate ens.yaml --target-ssr 1.0 --out ens.calibrated.yaml
    """
    from rich.console import Console

    from hens.pipelines.calibrate.tune import calibrate as run_calibration
    from hens.pipelines.calibrate.tune import calibrated_yaml, check_output, write_calibrated

    if out is not None:  # before minutes of forecasts
        check_output(out, force=force)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    names = [c.strip() for c in channels.split(",") if c.strip()] if channels else None
    times = [t.strip() for t in init_times.split(",") if t.strip()] if init_times else None
    result = run_calibration(
        config, target=target_ssr, parameter=tune, init_times=times, period=period, inits=inits, pairs=pairs,  # type: ignore[arg-type]
        channels=names, tolerance=tolerance, max_iterations=max_iterations, device=device,
        report=(lambda line: console.print(f"calibrate: {line}")) if progress else None,
    )
    if not result.converged:
        typer.echo(f"hens: warning: {result.shortfall()}", err=True)
    text = calibrated_yaml(config, result)
    if out is None:
        typer.echo(text, nl=False)
    else:
        typer.echo(f"wrote {write_calibrated(text, out, force=force)}", err=True)
