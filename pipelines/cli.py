"""The ``hens`` command line.

Each command only parses its options and calls a workflow function; heavy modules (torch,
xarray) are imported inside the commands so that ``hens --help`` starts fast. User mistakes
(:class:`~hens.forecast.errors.HensError`) print one line on stderr and exit with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from hens.forecast.errors import HensError
from hens.pipelines.calibrate.command import calibrate

app = typer.Typer(
    name="hens",
    help="Huge ensembles of spherical neural weather models: world, train, forecast, score.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_STATE = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    _STATE["debug"] = debug


@app.command()
def world(
    out: Annotated[Path, typer.Option("--out", help="Output Zarr store (WeatherBench2 ERA5 layout).")],
    grid: Annotated[str, typer.Option("--grid", help="NLATxNLON[:KIND]; Legendre-Gauss by default.")] = "32x64",
    days: Annotated[float, typer.Option("--days", help="Simulated days to save after spin-up.", min=0.25)] = 730.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stochastic forcing.")] = 0,
    spinup_days: Annotated[float, typer.Option("--spinup-days", help="Days run before saving.", min=0)] = 60.0,
    start: Annotated[str, typer.Option("--start", help="Valid time of the first saved state.")] = "2000-01-01T00",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing store.")] = False,
) -> None:
    """Generate the shallow-water world: a 6-hourly "reanalysis" plus its statistics.

    Example: hens world --out world.zarr --grid 32x64 --days 730 --seed 0
    """
    from hens.pipelines.world import generate_world

    generate_world(out, grid=grid, days=days, seed=seed, spinup_days=spinup_days, start=start,
                   overwrite=overwrite)


@app.command()
def inspect(
    path: Annotated[list[str], typer.Argument(help="Zarr store (path or URL such as gs://...), netCDF file(s) or a glob.")],
    time: Annotated[
        list[str] | None,
        typer.Option("--time", help="Load and summarise this valid time (repeatable)."),
    ] = None,
    channels: Annotated[
        str | None,
        typer.Option("--channels", help="Comma-separated channels to load, e.g. z500,t2m "
                     "(default: all; loads the first time unless --time is given)."),
    ] = None,
    grid: Annotated[
        str | None, typer.Option("--grid", help="Fail unless the data is on this grid, e.g. 32x64.")
    ] = None,
) -> None:
    """Detect the layout of a data source and list its grid, channels and times.

    With --time or --channels, also load that block, check it for NaN/Inf, print its range.

    Example: hens inspect world.zarr --time 2000-01-02T06 --channels z500,t2m --grid 32x64
    """
    from hens.forecast.sources import open_source, summarize

    source = open_source(path if len(path) > 1 else path[0], grid=grid)
    typer.echo(source.describe())
    if time or channels:
        names = [c.strip() for c in channels.split(",")] if channels else source.channels
        typer.echo(summarize(source(time or source.times[:1], names)))


@app.command()
def train(
    data: Annotated[list[str], typer.Option("--data", help="Training data: Zarr store (path or URL such as gs://...), netCDF file(s) or a glob (repeatable).")],
    out: Annotated[Path, typer.Option("--out", help="Checkpoint to write (a .loss.png and, while running, a .resume beside it).")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of initial weights, batches and noise.", min=0)] = 0,
    stochastic: Annotated[bool, typer.Option("--stochastic", help="Stochastic SFNO trained with almost-fair CRPS.")] = False,
    loss: Annotated[str, typer.Option("--loss", help="Deterministic loss: mse, or amse (adjusted spectral MSE: no reward for blurring).")] = "mse",
    minutes: Annotated[float | None, typer.Option("--minutes", help="Wall-clock budget; fixes the step count after timing the first steps.")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Number of optimizer steps (reproducible).")] = None,
    rollout: Annotated[int, typer.Option("--rollout", help="Steps unrolled in the fine-tuning phase (1: none).", min=1)] = 1,
    pushforward: Annotated[int, typer.Option("--pushforward", help="One-step steps cycle through inputs that are the model's own 0..K-1-step forecasts (run without gradients; the target stays the true next state). 1: analyses only.", min=1)] = 1,
    pushforward_degrees: Annotated[int | None, typer.Option("--pushforward-degrees", help="Keep the model's own part of a pushed-forward input to total wavenumbers l <= N: the analysis plus the forecast's error at those degrees (default: the whole forecast).", min=0)] = None,
    batch: Annotated[int, typer.Option("--batch", help="Global batch (samples per step, over all ranks).", min=1)] = 8,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW, cosine schedule).")] = 2e-3,
    members: Annotated[int, typer.Option("--members", help="Noise draws per sample for the CRPS (stochastic).")] = 4,
    spectral_weight: Annotated[float | None, typer.Option("--spectral-weight", help="Weight of the spectral CRPS term next to the almost-fair CRPS (stochastic; FourCastNet 3's loss; default 1.0, chosen in docs/models.md).", min=0)] = None,
    injection: Annotated[str, typer.Option("--injection", help="Where the noise enters a stochastic SFNO: input (extra input channels), norm (every block's conditional layer norm) or both.")] = "input",
    noise_decorrelation_hours: Annotated[float | None, typer.Option("--noise-decorrelation-hours", help="Decorrelation time of the stochastic SFNO's AR(1) noise in hours (default FourCastNet 3's, one model step; 0: white noise, a fresh draw every step).", min=0)] = None,
    input_noise: Annotated[float, typer.Option("--input-noise", help="Std of Gaussian random fields added to each training input, in units of each channel's 6-hour tendency std (0: none); the target stays the true next state.", min=0)] = 0.0,
    input_noise_km: Annotated[float, typer.Option("--input-noise-km", help="Correlation length of the --input-noise fields (km).", min=0)] = 1000.0,
    input_noise_degrees: Annotated[int | None, typer.Option("--input-noise-degrees", help="Keep the --input-noise fields to total wavenumbers l = 1..N (planetary scales; default: every degree of the SFNO's band).")] = None,
    channels: Annotated[str | None, typer.Option("--channels", help="Comma-separated channels (default: all of the data).")] = None,
    forcings: Annotated[str | None, typer.Option("--forcings", help="Time inputs of the model: year_progress (default), day_progress (data with a diurnal cycle, e.g. ERA5), both comma-separated, or none.")] = None,
    val_days: Annotated[float | None, typer.Option("--val-days", help="Days held out at the end (default 15 %, <= 365).")] = None,
    train_period: Annotated[str | None, typer.Option("--train-period", help="Training times, FIRST:LAST inclusive: years (1979:2015) or dates (2000-01-01:2000-03-31); with --valid-period.")] = None,
    valid_period: Annotated[str | None, typer.Option("--valid-period", help="Validation times, as --train-period (e.g. 2016:2017); must not overlap it.")] = None,
    cache_mb: Annotated[float, typer.Option("--cache-mb", help="Memory for training states once read (MiB, least recently used out; 0: read every batch). The results do not depend on it.", min=0)] = 1024.0,
    embed_dim: Annotated[int, typer.Option("--embed-dim", help="SFNO width.")] = 64,
    layers: Annotated[int, typer.Option("--layers", help="SFNO blocks.")] = 4,
    scale_factor: Annotated[int, typer.Option("--scale-factor", help="Internal grid = data grid / this.")] = 1,
    init_from: Annotated[Path | None, typer.Option("--init-from", help="Start from this checkpoint's weights (same data and network; a deterministic SFNO for a stochastic one, whose noise weights start at zero).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing checkpoint and its resume file.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on rank 0.")] = True,
) -> None:
    """Train an SFNO on 6-hour steps of a data source; rerun the same command to resume.

    Several independent checkpoints come from several seeds, one job each. Data parallel
    with torchrun (torchrun --nproc_per_node=2 -m hens.pipelines.cli train ...) or srun.

    Example: hens train --data world.zarr --out sfno.pt --seed 0 --minutes 12 --loss amse --scale-factor 2

    Example: hens train --data era5.zarr --out sfno.pt --steps 20000 --train-period 1979:2015 --valid-period 2016:2017
    """
    from hens.models.forcings import parse_forcings
    from hens.models.training.config import TrainConfig
    from hens.models.training.loop import train as run_training

    names = tuple(c.strip() for c in channels.split(",") if c.strip()) if channels else None
    options = {} if forcings is None else {"forcings": parse_forcings(forcings)}
    if noise_decorrelation_hours is not None:
        options["noise_decorrelation_hours"] = noise_decorrelation_hours
    if spectral_weight is not None:
        options["spectral_weight"] = spectral_weight
    cfg = TrainConfig(
        data=tuple(data), out=out, seed=seed, stochastic=stochastic, loss=loss, minutes=minutes, steps=steps,
        rollout=rollout, pushforward=pushforward, pushforward_degrees=pushforward_degrees, batch=batch, lr=lr,
        members=members, injection=injection, input_noise=input_noise, input_noise_km=input_noise_km,
        input_noise_degrees=input_noise_degrees, channels=names, val_days=val_days,
        train_period=train_period, valid_period=valid_period, cache_mb=cache_mb,
        embed_dim=embed_dim, num_layers=layers, scale_factor=scale_factor, init_from=init_from, overwrite=overwrite,
        progress=progress, **options,
    )
    path = run_training(cfg)
    if os.environ.get("RANK", "0") == "0":
        typer.echo(f"wrote {path}")


@app.command()
def checkpoint(
    paths: Annotated[list[Path], typer.Argument(help="Checkpoint file(s) or makani packages (folder or .tar); several are checked as one ensemble.")],
    data: Annotated[list[str] | None, typer.Option("--data", help="Also check against this data source (repeatable).")] = None,
) -> None:
    """Describe checkpoints; check them against each other and, with --data, a data source.

    A makani model package (NGC sfno_73ch_small, the Huge Ensembles SFNOs) is read in full
    without running code from its pickle. Fails with one line for a truncated file, a file
    that needs arbitrary unpickling, or other channels or grid than the data or the others.

    Example: hens checkpoint sfno-0.pt sfno-1.pt --data world.zarr
    """
    from hens.models.checkpoint import describe, load_checkpoint
    from hens.models.compatibility import check_compatible, check_ensemble
    from hens.models.makani.archive import is_package
    from hens.models.makani.files import describe_package, read_package

    ckpts = []
    for p in paths:
        if is_package(p):
            ckpts.append(read_package(p))
            typer.echo(describe_package(ckpts[-1]))
        else:
            ckpts.append(load_checkpoint(p))
            typer.echo(describe(ckpts[-1]))
    check_ensemble(ckpts)
    if data:
        from hens.forecast.sources import open_source

        source = open_source(data if len(data) > 1 else data[0])
        for ckpt in ckpts:
            check_compatible(ckpt, source)
        typer.echo(f"ok: {len(ckpts)} checkpoint(s) fit {source.name}")


@app.command()
def forecast(
    config: Annotated[Path, typer.Argument(help="YAML run configuration (see hens.pipelines.forecast.config).")],
    resume: Annotated[bool, typer.Option("--resume", help="Continue an existing store; skip completed batches.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing store.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on rank 0.")] = True,
    plan: Annotated[bool, typer.Option("--plan", help="Print what the run would write and hold; run nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --plan: one JSON object.")] = False,
    ranks: Annotated[int, typer.Option("--ranks", help="With --plan: ranks of the run.", min=1)] = 1,
    device: Annotated[str, typer.Option("--device", help="With --plan: cpu or cuda ranks.")] = "cpu",
    timed: Annotated[bool, typer.Option("--time", help="With --plan: time a batch step of the first checkpoint on --device and estimate the wall time.")] = False,
) -> None:
    """Run an ensemble (checkpoints x bred-vector pairs x noise seeds) into one Zarr store.

    One process, or one rank per GPU/CPU slot with
    torchrun --nproc_per_node 2 $(which hens) forecast ens.yaml, or srun hens forecast ens.yaml.
    A store resumed with --resume, or written by any number of ranks, is bit-identical.
    --plan reads only the YAML, checkpoint headers and data coordinates (--time also loads the
    first checkpoint and times a batch step: seconds_estimate, an estimate).

    Example: hens forecast ens.yaml --plan --ranks 64 --device cuda
    """
    if plan:
        from hens.pipelines.forecast.plan import plan_run, print_plan

        typer.echo(print_plan(plan_run(config, ranks=ranks, device=device, time=timed), as_json=as_json))
        return
    from hens.pipelines.forecast.run import run_forecast

    path = run_forecast(config, resume=resume, overwrite=overwrite, progress=progress)
    if progress and os.environ.get("RANK", "0") == "0":  # torchrun/SLURM: rank 0 speaks
        typer.echo(f"wrote {path}", err=True)


app.command()(calibrate)  # its options and body: hens.pipelines.calibrate.command


@app.command()
def score(
    forecast: Annotated[Path, typer.Option("--forecast", help="Ensemble store written by `hens forecast`.")],
    truth: Annotated[list[str], typer.Option("--truth", help="Verifying data: Zarr store (path or URL such as gs://...), netCDF file(s) or a glob (repeatable).")],
    out: Annotated[Path, typer.Option("--out", help="Zarr store of scores to write.")],
    climatology: Annotated[Path | None, typer.Option("--climatology", help="Statistics store for thresholds and EFI/SOT (default: the one beside the truth).")] = None,
    threshold: Annotated[list[float] | None, typer.Option("--threshold", help="Climate quantile level of an exceedance event (repeatable; default 0.9, 0.99).")] = None,
    drop_incomplete: Annotated[bool, typer.Option("--drop-incomplete", help="Score only members completed at every init instead of refusing the store.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing scores store.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")] = True,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Address of a running dask.distributed scheduler (tcp://HOST:8786) to compute on; see docs/slurm.md.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Start a local dask cluster of N worker processes (default: dask threads in this process).")] = None,
) -> None:
    """Score an ensemble against the truth at init + lead into a Zarr store of scores.

    By channel and lead time: ensemble-mean RMSE/MAE, CRPS (standard and fair), spread,
    spread-skill ratio, persistence RMSE/MAE, rank histogram, outlier fraction, Brier score,
    reliability and ROC area of climate-quantile exceedances, EFI/SOT, spectra, best-member
    skill of balanced sub-ensembles (random draws), k-sigma exceedances of the truth, max-sigma.
    Members not completed make it refuse the store unless --drop-incomplete. The same scores,
    bit for bit, on dask threads, --workers N or --scheduler ADDRESS.

    Example: hens score --forecast ens.zarr --truth world.zarr --out ens.scores.zarr --threshold 0.9 --threshold 0.99
    """
    from hens.scoring.evaluate.score import DEFAULT_THRESHOLDS, score_ensemble

    path = score_ensemble(
        forecast, truth if len(truth) > 1 else truth[0], out=out, climatology=climatology,
        thresholds=tuple(threshold or DEFAULT_THRESHOLDS), incomplete="drop" if drop_incomplete else "raise", overwrite=overwrite,
        progress=progress, scheduler=scheduler, workers=workers,
    )
    typer.echo(f"wrote {path}", err=True)


@app.command()
def products(
    ens: Annotated[Path, typer.Argument(help="Ensemble store written by `hens forecast`.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the netCDF files, one per initial time.")],
    quantile: Annotated[list[float] | None, typer.Option("--quantile", help="Ensemble quantile level (repeatable; default 0.1, 0.5, 0.9).")] = None,
    threshold: Annotated[list[float] | None, typer.Option("--threshold", help="Climate quantile level of an exceedance threshold (repeatable; default 0.9, 0.99).")] = None,
    climatology: Annotated[Path | None, typer.Option("--climatology", help="Statistics store for thresholds and EFI/SOT (default: the one beside the ensemble's data).")] = None,
    institution: Annotated[str, typer.Option("--institution", help="CF `institution` attribute of the files.")] = "unknown",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing files.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")] = True,
) -> None:
    """Write CF netCDF forecast products, OUT/<ENS stem>_<YYYYMMDDTHH>.nc per initial time.

    Per channel, from the members completed at that initial time: ensemble mean and spread,
    quantiles, probabilities of exceeding climatological quantiles, EFI and SOT.

    Example: hens products ens.zarr --out products --quantile 0.1 --quantile 0.9 --threshold 0.99
    """
    from hens.pipelines.products.write import DEFAULT_QUANTILES, DEFAULT_THRESHOLDS, write_products

    paths = write_products(
        ens, out, climatology=climatology, quantiles=tuple(quantile or DEFAULT_QUANTILES),
        thresholds=tuple(threshold or DEFAULT_THRESHOLDS), institution=institution,
        overwrite=overwrite, progress=progress,
    )
    typer.echo(f"wrote {len(paths)} files to {out}", err=True)


@app.command()
def plot(
    scores: Annotated[Path, typer.Argument(help="Scores store written by `hens score`.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNGs (same-named files are replaced).")],
) -> None:
    """Draw the figures of a scores store as PNGs.

    Errors and spread-skill vs lead, rank histograms, spectra, EFI maps, reliability
    diagrams, outliers vs lead and ensemble size.

    Example: hens plot ens.scores.zarr --out plots
    """
    from hens.scoring.plots.scores import plot_scores

    paths = plot_scores(scores, out)
    typer.echo(f"wrote {len(paths)} figures to {out}", err=True)


@app.command()
def campaign(
    config: Annotated[Path, typer.Argument(help="Campaign YAML (see hens.pipelines.campaign.submit).")],
    scripts: Annotated[Path | None, typer.Option("--scripts", help="Folder of train.sbatch, forecast.sbatch and score.sbatch (default: the checkout's slurm/).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate, write the forecast configs, print the sbatch commands; submit nothing.")] = False,
) -> None:
    """Submit a hindcast campaign (train -> forecast -> score) to SLURM from one YAML.

    A training job array over seeds, then (afterok) a forecast job array over initial times,
    N ranks each, then a scoring job array. Prints one line per job array: step, job id,
    what it makes. Resubmitting continues a campaign.

    Example: hens campaign campaign.yaml
    """
    import shlex

    from hens.pipelines.campaign.submit import load_campaign, submit_campaign

    cfg = load_campaign(config)
    sub = submit_campaign(cfg, scripts=scripts, dry_run=dry_run)
    out = cfg.output_path.resolve()
    what = {"train": f"{len(cfg.seeds)} seed(s) -> {out / 'checkpoints'}",
            "forecast": f"{len(cfg.init_times)} init time(s) x {cfg.ranks} rank(s) -> {out / 'forecasts'}",
            "score": f"{len(sub.stores)} store(s) -> {out / 'forecasts'}/*.scores.zarr"}
    for step, job in sub.jobs.items():
        typer.echo(f"{step:<9} {job:<8} {what[step]}")
        if dry_run:
            typer.echo("    " + shlex.join(sub.commands[step]))


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's products.")] = Path("demo-out"),
    days: Annotated[float, typer.Option("--days", help="Simulated days of the demo world.", min=1)] = 730.0,
    minutes: Annotated[float, typer.Option(
        "--minutes", help="Training budget of each deterministic SFNO.", min=0.05,
    )] = 2.5,
    stochastic_minutes: Annotated[float | None, typer.Option(
        "--stochastic-minutes", help="Budget of each stochastic SFNO's CRPS training from a deterministic one (default: the minutes the other deterministic ones trained, split among them: the same minutes in all as the 4 deterministic ones).", min=0.05,
    )] = None,
    stochastic_checkpoints: Annotated[int, typer.Option(
        "--stochastic-checkpoints", help="Stochastic SFNOs, each fine-tuned from one of the 4 deterministic ones: 1 or 2 (a divisor of 4, smaller).", min=1,
    )] = 2,
    loss: Annotated[str, typer.Option("--loss", help="Loss of the deterministic SFNOs: amse or mse (hens train --loss).")] = "amse",
    input_noise: Annotated[float, typer.Option("--input-noise", help="Noise on the deterministic SFNOs' training inputs, in tendency stds (hens train --input-noise; 0: none, the measured default).", min=0)] = 0.0,
    input_noise_degrees: Annotated[int | None, typer.Option("--input-noise-degrees", help="Keep that noise to degrees l = 1..N (hens train --input-noise-degrees; default: all).")] = None,
    pushforward: Annotated[int, typer.Option("--pushforward", help="The deterministic SFNOs also learn from their own 0..K-1-step forecasts (hens train --pushforward; 1: none, the measured default).", min=1)] = 1,
    pushforward_degrees: Annotated[int | None, typer.Option("--pushforward-degrees", help="Keep their own forecasts' errors to degrees l <= N in those inputs (hens train --pushforward-degrees; default: all).", min=0)] = None,
    inits: Annotated[int, typer.Option("--inits", help="Initial times of each ensemble.", min=1)] = 3,
    lead_days: Annotated[int, typer.Option("--lead-days", help="Forecast length (days).", min=1)] = 10,
    workers: Annotated[int, typer.Option("--workers", help="Jobs run side by side (one core each).", min=1)] = 2,
    training_seed: Annotated[int, typer.Option(
        "--training-seed", help="Another draw of the trained SFNOs (their seeds; world and ensembles unchanged).", min=0,
    )] = 0,
) -> None:
    """Run the whole chain on the world: train 4+2 SFNOs, three ensembles, scores, summary.md.

    Finished steps (world, checkpoints, ensemble stores, scores) are reused on a second run
    when the options that made them match; other options rebuild them and what follows.

    Example: hens demo --out demo-out
    """
    from hens.pipelines.demo.run import DemoSettings, run_demo

    run_demo(out, settings=DemoSettings(days=days, deterministic_minutes=minutes, stochastic_minutes=stochastic_minutes,
                                        stochastic_checkpoints=stochastic_checkpoints, deterministic_loss=loss,
                                        input_noise=input_noise, input_noise_degrees=input_noise_degrees,
                                        pushforward=pushforward, pushforward_degrees=pushforward_degrees,
                                        inits=inits, lead_days=lead_days, workers=workers, training_seed=training_seed))


def main() -> None:
    """Console entry point: a :class:`HensError` or a usage error (unknown option, value that
    is not a number) is one stderr line and exit status 2."""
    try:
        # not standalone: typer would print usage errors as a multi-line panel
        code = app(standalone_mode=False)
    except typer.TyperException as err:  # typer's usage errors (its own click's exceptions)
        # `hens` alone raises this after printing the help; typer tells it by name, too
        if type(err).__name__ != "NoArgsIsHelpError":
            ctx = getattr(err, "ctx", None)
            where = f"{ctx.command_path}: " if ctx is not None else ""
            message = err.format_message() if hasattr(err, "format_message") else str(err)
            typer.echo(f"hens: error: {where}{message}", err=True)
        sys.exit(2)
    except typer.Abort:  # Ctrl-C at a prompt
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    except HensError as err:
        if _STATE["debug"]:
            raise
        typer.echo(f"hens: error: {err}", err=True)
        sys.exit(2)
    # --help and typer.Exit return their exit code instead of raising SystemExit
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
