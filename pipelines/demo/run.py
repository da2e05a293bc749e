"""``hens demo``: the whole chain on the embedded world, from nothing to a summary table.

Stages (each reused when its product is complete *and was made by the same options*, so a
second run with the same settings only redraws, and one with other settings rebuilds what
they change and everything made from it):

1. the world (``world.zarr`` + ``world.stats.zarr``) and its quick-look plots;
2. in parallel on ``workers`` single-threaded processes: the physics ensemble (the world's own
   solver from bred-vector perturbed analyses, with its stochastic forcing) and ``checkpoints``
   deterministic SFNOs (training seeds ``S C .. S C + C - 1`` for ``training_seed`` S); then
   K = ``stochastic_checkpoints`` stochastic SFNOs (almost-fair CRPS, seeds ``1000 + S K + k``),
   ``stochastic-k`` fine-tuned from ``sfno-k`` (:func:`stochastic_budget`);
3. the bred-vector multi-checkpoint ensemble (C x pairs x 2 members) and the stochastic
   multi-checkpoint ensemble with as many members (K x pairs x 2 x C/K noise seeds), in parallel, each with its
   bred-vector amplitude first tuned by ``hens calibrate`` for spread/skill 1 at days 3-5 on
   initial times of the validation block before the verified ones;
4. ``hens score`` of the three stores against the world, ``hens plot`` of each, figures
   comparing them, ``hens products`` of the bred-vector ensemble, and ``summary.md``
   (:mod:`hens.pipelines.demo.summary`).

Initial times lie in the world's validation block (the last 15 % of the record, never
trained on), ``init_spacing_days`` apart, the last one ``lead_days`` before the end.

Products in ``out``: ``world.zarr``, ``checkpoints/``, ``ensembles/{bred,stochastic,physics}``
(``.yaml`` + ``.zarr``; ``bred.draft.yaml`` and ``stochastic.draft.yaml`` are the YAMLs before
calibration),
``scores/``, ``plots/``, ``products/``, ``logs/``, ``summary.md``.

What made a product is read from the product itself (:mod:`hens.pipelines.demo.reuse`):
a checkpoint's ``extra["options"]`` (its ``hens train`` options and budget), an ensemble
store's ``hens_config`` and ``checkpoints`` (sha256 of each file) attributes, a score
store's ``made_from`` attribute and ``products/made_from.json`` (the ensemble's key), a
calibrated YAML's ``<name>.calibration.json`` (:func:`hens.pipelines.demo.reuse.calibration_key`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hens.forecast.errors import ConfigError, OutputExists
from hens.forecast.types import STEPS_PER_DAY
from hens.pipelines.demo import reuse as demo_reuse
from hens.pipelines.demo.tasks import Task, run_tasks

_SEED = 0
_SPECTRUM_SAMPLES = 120  # saved states averaged for the energy spectrum
_STOCHASTIC_SEED = 1000  # the first stochastic SFNO's training seed at S = 0 (apart from the deterministic ones)
ENSEMBLES = ("bred", "stochastic", "physics")
CALIBRATED = ("bred", "stochastic")  # the ensembles whose bred-vector amplitude hens calibrate tunes


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and budgets of the demo (defaults: about 20 minutes on 2 cores).

    Budgets are wall-clock minutes per training run (``hens train --minutes``); the
    deterministic SFNOs train with ``deterministic_loss`` (``hens train --loss``), on inputs perturbed by
    ``input_noise`` (``hens train --input-noise``, 1000 km fields, or degrees ``l = 1..input_noise_degrees``
    only; 0 by default, docs/models.md "Input noise") and, with ``pushforward`` K > 1, on their own
    0..K-1-step forecasts too (``hens train --pushforward``; their errors kept to degrees
    ``l <= pushforward_degrees`` when given). Each of the
    ``stochastic_checkpoints`` (K) stochastic SFNOs trains ``stochastic_minutes`` from one of the
    first K deterministic checkpoints; ``None`` gives each the minutes the other C - K
    deterministic SFNOs trained (as their checkpoints record them) split K ways
    (:func:`stochastic_budget`), so the stochastic ensemble's training minutes in all, its
    starts' included, are at most those of the bred-vector ensemble's C checkpoints.
    ``training_seed`` S picks another set of training seeds (module docstring), e.g. to check
    that a result holds for more than one draw of the trained models; the world, the initial
    times and the ensembles' perturbation seeds do not change with it. The
    SFNO ensembles' bred-vector amplitudes are calibrated on ``calibration_inits`` initial times of the
    validation block before the verified ones in at most ``calibration_iterations`` runs (``hens calibrate``),
    each with the verified ensemble's own members (``pairs``): on the science run, 2 times of 8
    members tuned an amplitude that gave z500 spread/skill 0.83 and 0.73 at days 3 and 5 on the
    verified block, 4 times of 32 members one that gave 0.97 and 0.83 (docs/calibration.md);
    hence 8 times and a tolerance of ``calibration_tolerance``.
    """

    days: float = 730.0
    grid: str = "32x64"
    checkpoints: int = 4
    deterministic_minutes: float = 2.5
    deterministic_loss: str = "amse"
    input_noise: float = 0.0
    input_noise_degrees: int | None = None
    pushforward: int = 1
    pushforward_degrees: int | None = None
    stochastic_minutes: float | None = None
    stochastic_checkpoints: int = 2
    training_seed: int = 0
    pairs: int = 4
    inits: int = 3
    init_spacing_days: int = 15
    lead_days: int = 10
    workers: int = 2
    calibration_inits: int = 8
    calibration_iterations: int = 5
    calibration_tolerance: float = 0.03

    def __post_init__(self) -> None:
        from hens.forecast.types import check_choice
        from hens.models.training.config import check_input_options
        from hens.models.types import DeterministicLoss

        check_choice("--loss", self.deterministic_loss, DeterministicLoss)
        if not 0.0 <= self.input_noise < float("inf"):
            raise ConfigError(f"--input-noise {self.input_noise} must be >= 0")
        check_input_options(self.input_noise_degrees, self.pushforward, self.pushforward_degrees)
        c, k = self.checkpoints, self.stochastic_checkpoints
        if not 1 <= k < c or c % k:
            raise ConfigError(f"--stochastic-checkpoints {k} must divide the {c} deterministic SFNOs and be fewer "
                              "(each stochastic SFNO starts from a deterministic one and gets the others' minutes)")

    @property
    def members(self) -> int:
        """Members of each ensemble (C x pairs x 2)."""
        return self.checkpoints * self.pairs * 2


def stochastic_budget(folder: Path, settings: DemoSettings) -> float:
    """Each stochastic SFNO's budget (min): ``settings.stochastic_minutes``, or else the training
    minutes recorded by the deterministic checkpoints in ``folder`` that start no stochastic
    one, split among the stochastic ones.

    Measured rather than ``(C - K) / K x deterministic_minutes``: a ``--minutes`` run ends when
    its planned steps are done, a little before its budget, and the stochastic ensemble's
    minutes in all (its starts' included) must not exceed the bred-vector ensemble's.
    """
    from hens.models.checkpoint import load_checkpoint

    if settings.stochastic_minutes is not None:
        return settings.stochastic_minutes
    k = settings.stochastic_checkpoints
    seconds = sum(float(load_checkpoint(folder / f"sfno-{i}.pt").extra["wall_seconds"])
                  for i in range(k, settings.checkpoints))
    return math.floor(seconds / 60.0 / k * 100.0) / 100.0  # rounded down: never more minutes


def _world(out: Path, settings: DemoSettings) -> Path:
    import xarray as xr

    from hens.forecast.stats import stats_path
    from hens.pipelines.world import generate_world

    path = out / "world.zarr"
    if not path.exists():
        return generate_world(path, grid=settings.grid, days=settings.days, seed=_SEED)
    # generate_world renames the trajectory last, so an existing one is complete
    have = xr.open_zarr(path, consolidated=True).attrs.get("days")
    if have != round(settings.days * STEPS_PER_DAY) / STEPS_PER_DAY or not stats_path(path).exists():
        raise OutputExists(f"{path} holds another world ({have} days); use --days {have} or another --out")
    return path


def _world_plots(world: Path, figures: Path, grid_spec: str) -> None:
    from hens.forecast.grids import parse_grid
    from hens.pipelines.world import load_world
    from hens.scoring.plots import world as plots
    from hens.scoring.spectra import kinetic_energy_spectrum

    data = load_world(world)
    grid = parse_grid(grid_spec)
    last = data.isel(time=-1)
    for name in data["channel"].values:
        plots.plot_map(last.sel(channel=name), figures / f"map_{name}.png",
                       title=f"{name} at {str(last['time'].values)[:16]}")
    plots.plot_global_means(data, grid, figures / "global_means.png")
    sample = data.isel(time=slice(None, None, max(1, data.sizes["time"] // _SPECTRUM_SAMPLES)))
    spectrum = kinetic_energy_spectrum(sample.sel(channel="u500").values, sample.sel(channel="v500").values, grid,
                                       lmax=grid.lmax)  # the world is truncated there
    plots.plot_energy_spectra({"world, time mean": spectrum.mean(axis=0)}, figures / "ke_spectrum.png")


def init_times(world: Path, settings: DemoSettings) -> list[str]:
    """Initial times (00 UTC) in the validation block: the last one ``lead_days`` before the end."""
    import xarray as xr

    end = xr.open_zarr(world, consolidated=True)["time"].values[-1]
    last = (end - np.timedelta64(settings.lead_days, "D")).astype("datetime64[D]")
    step = np.timedelta64(settings.init_spacing_days, "D")
    return [str(last - k * step) + "T00" for k in reversed(range(settings.inits))]


# ---------------------------------------------------------------------------------- jobs
def _train(values: dict[str, Any]) -> str:
    from hens.models.training.config import TrainConfig
    from hens.models.training.loop import train

    return str(train(TrainConfig(**values)))


def _forecast(config: str) -> str:
    from hens.pipelines.forecast.run import run_forecast

    path = Path(config)
    values = _yaml(path)
    store = path.parent / values["output"]
    return str(run_forecast(path, resume=store.exists(), progress=False))


def _calibrated_forecast(draft: str, config: str, options: dict[str, Any], key: str) -> str:
    """Calibrate the amplitude of ``draft`` into ``config``, then run its ensemble (a worker job)."""
    from hens.pipelines.calibrate.tune import calibrate, calibrated_yaml

    path = Path(config)
    result = calibrate(draft, report=print, **options)
    path.write_text(calibrated_yaml(draft, result))
    demo_reuse.record_calibration(path, key)
    store = path.with_suffix(".zarr")
    if demo_reuse.stale_store(store, path):  # another amplitude than the store's
        demo_reuse.remove(store)
    return _forecast(config)


def _calibration_options(settings: DemoSettings) -> dict[str, Any]:
    """Options of :func:`hens.pipelines.calibrate.tune.calibrate`: few times and runs, all the members."""
    return {"target": 1.0, "inits": settings.calibration_inits, "max_iterations": settings.calibration_iterations,
            "tolerance": settings.calibration_tolerance,
            "pairs": settings.pairs}


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())


def _train_configs(out: Path, world: Path, settings: DemoSettings,
                   stochastic_minutes: float | None = None) -> dict[str, dict[str, Any]]:
    """``hens train`` options of each SFNO by name; the stochastic ones only with their budget."""
    folder = out / "checkpoints"
    common = {"data": (str(world),), "progress": False}
    configs = {
        # one-step training at half resolution inside the network: measured to keep the members'
        # spectra at day 10 (rollout fine-tuning and the full internal grid lose or gain energy)
        f"sfno-{i}": dict(common, out=folder / f"sfno-{i}.pt", seed=settings.training_seed * settings.checkpoints + i,
                          minutes=settings.deterministic_minutes, loss=settings.deterministic_loss, scale_factor=2,
                          input_noise=settings.input_noise, input_noise_degrees=settings.input_noise_degrees,
                          pushforward=settings.pushforward, pushforward_degrees=settings.pushforward_degrees)
        for i in range(settings.checkpoints)
    }
    if stochastic_minutes is None:
        return configs
    # fine-tuned from deterministic SFNOs: they learn the dynamics from one-member AMSE steps,
    # 4-6x cheaper per sample than CRPS steps (docs/models.md, "The stochastic recipe"); several
    # of them so that the ensemble mean averages model errors as the bred-vector one does
    k = settings.stochastic_checkpoints
    for i in range(k):
        configs[f"stochastic-{i}"] = dict(common, out=folder / f"stochastic-{i}.pt",
                                          seed=_STOCHASTIC_SEED + settings.training_seed * k + i, stochastic=True,
                                          init_from=folder / f"sfno-{i}.pt", minutes=stochastic_minutes,
                                          rollout=6, scale_factor=2)
    return configs


def _training_tasks(names: list[str], configs: dict[str, dict[str, Any]], console: Any) -> list[Task]:
    """The jobs that (re)train ``names``, longest first; a finished checkpoint made by the same options is kept."""
    jobs = []
    for name in names:
        values = configs[name]
        state = demo_reuse.checkpoint_state(values)
        if state == "reuse":
            continue
        if state == "stale":  # made with other options: train again from scratch
            console.print(f"demo: {values['out'].name} was trained with other options; retraining it")
            values = dict(values, overwrite=True)
        jobs.append(Task(name, _train, (values,), values["out"].with_suffix(".log"), _budget_progress(values["minutes"])))
    return sorted(jobs, key=lambda t: -t.args[0]["minutes"])


def _ensemble_yaml(out: Path, name: str, world: Path, inits: list[str], settings: DemoSettings) -> Path:
    import yaml

    bred = {"kind": "hemispheric_bred_vector", "cycles": 3, "amplitude": 0.35}
    c, q = settings.checkpoints, settings.pairs
    values: dict[str, Any] = {
        "data": str(Path("..") / world.name), "output": f"{name}.zarr", "init_times": inits,
        "lead_hours": 24 * settings.lead_days, "batch_size": 16, "seed": _SEED, "threads": 1,
    }
    if name == "bred":
        values.update(models=[f"../checkpoints/sfno-{i}.pt" for i in range(c)], perturbation=dict(bred, pairs=q))
    elif name == "stochastic":
        k = settings.stochastic_checkpoints
        values.update(models=[f"../checkpoints/stochastic-{i}.pt" for i in range(k)], perturbation=dict(bred, pairs=q),
                      seeds=c // k)
    else:
        values.update(models=["physics"], perturbation=dict(bred, pairs=c * q))
    path = out / "ensembles" / (f"{name}.draft.yaml" if name in CALIBRATED else f"{name}.yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(values, sort_keys=False)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)  # a store made from the old text is rebuilt (demo_reuse.stale_store)
    return path


def _reuse_store(out: Path, config: Path, console: Any) -> bool:
    """Whether the ensemble store of ``config`` is finished and made by it and today's checkpoints.

    A store made by another YAML or other checkpoint files is removed (its forecast then
    runs from scratch; its scores and products follow through their ``made_from`` keys).
    """
    store = config.with_suffix(".zarr")
    if demo_reuse.stale_store(store, config):
        console.print(f"demo: {store.name} was made by other settings or checkpoints; running it again")
        demo_reuse.remove(store)
        return False
    return demo_reuse.finished(store)


def _store_progress(store: Path) -> float:
    import zarr

    try:
        done = np.asarray(zarr.open_group(store, mode="r")["completed"][...])
    except Exception:  # not declared yet (still breeding), or being replaced
        return 0.0
    return float(done.mean())


def _budget_progress(minutes: float) -> Any:
    return lambda elapsed: elapsed / (60.0 * minutes)


def _calibrated_task(out: Path, name: str, draft: Path, config: Path, options: dict[str, Any],
                     console: Any) -> Task | None:
    """The job that calibrates ``draft`` into ``config`` and runs it, or only runs it, or none
    (calibration and store both made from today's draft, checkpoints and options)."""
    key = demo_reuse.calibration_key(draft, options)
    if not demo_reuse.calibrated(config, key):  # new checkpoints or settings: tune again
        store = config.with_suffix(".zarr")
        return Task(f"{name} calibration + ensemble", _calibrated_forecast, (str(draft), str(config), options, key),
                    out / "logs" / f"{name}.log", lambda _elapsed: _store_progress(store))
    if not _reuse_store(out, config, console):
        return _forecast_task(out, name, config)
    return None


def _forecast_task(out: Path, name: str, config: Path) -> Task:
    store = config.parent / f"{name}.zarr"
    return Task(f"{name} ensemble", _forecast, (str(config),), out / "logs" / f"{name}.log",
                lambda _elapsed: _store_progress(store))


# ---------------------------------------------------------------------------------- the chain
def run_demo(out: str | Path, *, settings: DemoSettings | None = None) -> Path:
    """Run (or continue) the demo chain in ``out``; returns the path of ``summary.md``.

    Parameters
    ----------
    out
        Folder for every product (module docstring).
    settings
        Sizes and budgets; the defaults take about 20 minutes on 2 cores.
    """
    from rich.console import Console

    from hens.pipelines.demo.summary import write_summary

    settings = settings or DemoSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    # wall time of each stage from the run that did its work (a reused stage keeps it)
    record = out / "logs" / "stages.json"
    timings: dict[str, float] = json.loads(record.read_text()) if record.exists() else {}

    def done(stage: str, began: float, worked: bool) -> None:
        if worked or stage not in timings:
            timings[stage] = round(time.perf_counter() - began, 1)
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(timings))

    began = time.perf_counter()
    console.rule("1/4 world")
    fresh = not (out / "world.zarr").exists()
    world = _world(out, settings)
    _world_plots(world, out / "plots" / "world", settings.grid)
    done("world", began, fresh)

    began = time.perf_counter()
    console.rule(f"2/4 training ({settings.checkpoints} + {settings.stochastic_checkpoints} SFNOs) "
                 "and the physics ensemble")
    inits = init_times(world, settings)
    drafts = {name: _ensemble_yaml(out, name, world, inits, settings) for name in ENSEMBLES}
    configs = dict(drafts, **{name: out / "ensembles" / f"{name}.yaml" for name in CALIBRATED})
    # the physics ensemble (the longest job) and the deterministic SFNOs first, then the
    # stochastic ones: they start from deterministic ones and get the minutes of the others
    deterministic = _train_configs(out, world, settings)
    jobs = [] if _reuse_store(out, configs["physics"], console) else [_forecast_task(out, "physics", configs["physics"])]
    jobs += _training_tasks(list(deterministic), deterministic, console)
    run_tasks(jobs, workers=settings.workers)
    train = _train_configs(out, world, settings, stochastic_budget(out / "checkpoints", settings))
    rest = _training_tasks([n for n in train if n not in deterministic], train, console)
    run_tasks(rest, workers=settings.workers)
    jobs += rest
    done("training and physics ensemble", began, bool(jobs))

    began = time.perf_counter()
    console.rule("3/4 calibration and SFNO ensembles")
    options = _calibration_options(settings)
    jobs = [job for name in CALIBRATED if (job := _calibrated_task(out, name, drafts[name], configs[name], options,
                                                                    console)) is not None]
    run_tasks(jobs, workers=settings.workers)
    done("calibration and SFNO ensembles", began, bool(jobs))

    began = time.perf_counter()
    console.rule("4/4 scores, plots, products and the summary")
    fresh = demo_reuse.made_from(out / "products") != demo_reuse.store_key(configs["bred"].with_suffix(".zarr"))
    scores = _score_all(out, world, configs)
    _products(out, configs)
    done("scores, plots and products", began, fresh)
    summary = write_summary(out, scores, settings=dataclasses.asdict(settings), timings=timings)
    console.print(f"demo: summary in {summary}, plots in {out / 'plots'}")
    return summary


def _score_all(out: Path, world: Path, configs: dict[str, Path]) -> dict[str, Path]:
    from hens.pipelines.demo.summary import reference_spectrum, valid_times, world_truncation
    from hens.scoring.evaluate.score import score_ensemble
    from hens.scoring.plots.comparison import plot_comparison
    from hens.scoring.plots.scores import plot_scores

    scores: dict[str, Path] = {}
    for name, config in configs.items():
        path = out / "scores" / f"{name}.zarr"
        path.parent.mkdir(parents=True, exist_ok=True)
        key = demo_reuse.store_key(config.with_suffix(".zarr"))
        if demo_reuse.made_from(path) != key:
            demo_reuse.remove(path)
            score_ensemble(config.with_suffix(".zarr"), world, out=path)
            demo_reuse.record_made_from(path, key)
        plot_scores(path, out / "plots" / name)
        scores[name] = path
    # the truth's spectrum around the valid times: a few verifying fields alone are too noisy
    references = {name: reference_spectrum(world, valid_times(config.with_suffix(".zarr")))
                  for name, config in configs.items()}
    plot_comparison(scores, out / "plots", references=references, truncation=world_truncation(world))
    return scores


def _products(out: Path, configs: dict[str, Path]) -> None:
    """Forecast products of the bred-vector ensemble (CF netCDF per initial time), once."""
    from hens.pipelines.products.write import write_products

    folder = out / "products"
    key = demo_reuse.store_key(configs["bred"].with_suffix(".zarr"))
    if demo_reuse.made_from(folder) != key:
        demo_reuse.remove(folder)
        tmp = out / ".products.partial"
        write_products(configs["bred"].with_suffix(".zarr"), tmp, overwrite=True)
        demo_reuse.record_made_from(tmp, key)
        tmp.rename(folder)
