"""``hens campaign``: a hindcast campaign on SLURM (train -> forecast -> score) from one YAML.

Example (``campaign.yaml``; relative paths are relative to its folder)::

    data: world.zarr                 # anything hens.forecast.open_source accepts
    output: campaign                 # folder of checkpoints/, forecasts/, logs/
    seeds: [0, 1, 2, 3]              # one checkpoint per seed (or a count: 4 -> 0..3)
    train: {steps: 20000, stochastic: true, rollout: 4}   # `hens train` options (budget: steps or minutes)
    init_times: ["2000-03-01T00", "2000-03-08T00"]        # one forecast job (array task) each
    lead_hours: 240
    ranks: 4                         # torch.distributed ranks per forecast job
    perturbation: {kind: hemispheric_bred_vector, pairs: 8, cycles: 3, amplitude: 0.35}
    forecast: {seeds: 2, batch_size: 16, seed: 0, threads: 1}   # further keys of the forecast YAML
    score: {thresholds: [0.9, 0.99]}  # `hens score` of every store (truth: data); false: no scoring
    slurm: {partition: gpu, nodes: 1, gpus_per_node: 4, cpus_per_task: 8,
            train_time: "12:00:00", forecast_time: "02:00:00", score_time: "01:00:00"}

:func:`submit_campaign` validates everything first (one :class:`ConfigError` line; the data
must hold every initial time and its breeding window, the truth every valid time), then
writes one forecast YAML per initial time under ``output/forecasts/`` and submits
``slurm/train.sbatch`` as a job array over the seeds, ``slurm/forecast.sbatch`` as a job array
over the initial times (``--dependency=afterok:`` on the training) and ``slurm/score.sbatch``
as a job array over the stores (``afterok`` on the forecasts). All are requeue-safe (training
resumes, forecasts ``--resume``, finished scores are kept), so resubmitting the same campaign
continues it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hens.forecast.errors import ConfigError
from hens.pipelines.config import PHYSICS, PerturbationConfig, _check_keys, _int, _strings, parse_config

#: `hens train` options allowed under ``train:`` and their types (``layers`` is ``--layers``)
TRAIN_OPTIONS: dict[str, tuple[type, ...]] = {
    "steps": (int,), "minutes": (int, float), "stochastic": (bool,), "rollout": (int,), "batch": (int,),
    "lr": (int, float), "members": (int,), "channels": (list, str), "val_days": (int, float),
    "embed_dim": (int,), "layers": (int,), "scale_factor": (int,),
}
#: keys of the forecast YAML allowed under ``forecast:`` (the campaign sets the others)
FORECAST_OPTIONS = ("seeds", "batch_size", "seed", "threads")
#: `hens score` options allowed under ``score:`` (truth: the campaign's data by default)
SCORE_OPTIONS = ("truth", "climatology", "thresholds", "drop_incomplete")
_KEYS = ("data", "output", "seeds", "train", "init_times", "lead_hours", "ranks", "perturbation", "forecast",
         "score", "slurm")


@dataclass(frozen=True)
class SlurmOptions:
    """Resources of the jobs. Forecast jobs: ``ranks`` tasks over ``nodes`` nodes, one rank
    per GPU when ``gpus_per_node`` > 0 (then ranks = nodes x gpus_per_node). Training jobs:
    ``train_ranks`` data-parallel tasks on one node. Times are SLURM time strings; the
    training time defaults to the ``minutes`` budget + 10 min."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    train_ranks: int = 1
    train_time: str | None = None
    forecast_time: str | None = None
    score_time: str | None = None
    sbatch_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("partition", "account", "qos", "train_time", "forecast_time", "score_time"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"slurm {name} must be a string, got {value!r}")
        for name, minimum in (("nodes", 1), ("gpus_per_node", 0), ("cpus_per_task", 1), ("train_ranks", 1)):
            _int(f"slurm {name}", getattr(self, name), minimum=minimum)
        args = [self.sbatch_args] if isinstance(self.sbatch_args, str) else self.sbatch_args
        if not isinstance(args, (list, tuple)) or not all(isinstance(a, str) for a in args):
            raise ConfigError(f"slurm sbatch_args must be a list of sbatch options, got {self.sbatch_args!r}")
        object.__setattr__(self, "sbatch_args", tuple(args))
        if self.gpus_per_node and self.train_ranks > self.gpus_per_node:
            raise ConfigError(f"slurm train_ranks {self.train_ranks} > gpus_per_node {self.gpus_per_node}: "
                              "a training job runs one rank per GPU on one node")

    def common(self) -> list[str]:
        pairs = (("partition", self.partition), ("account", self.account), ("qos", self.qos))
        return [f"--{k}={v}" for k, v in pairs if v] + list(self.sbatch_args)


@dataclass(frozen=True)
class CampaignConfig:
    """A validated campaign; ``forecast_values(t)`` is the forecast YAML of initial time ``t``."""

    data: tuple[str, ...]
    output: str
    seeds: tuple[int, ...]
    train: Mapping[str, Any]
    init_times: tuple[np.datetime64, ...]
    lead_hours: int
    ranks: int = 1
    perturbation: PerturbationConfig | Mapping[str, Any] = field(default_factory=PerturbationConfig)
    forecast: Mapping[str, Any] = field(default_factory=dict)
    score: bool | Mapping[str, Any] = True
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    base_dir: Path = Path(".")

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _strings("data", self.data))
        if not isinstance(self.output, str) or not self.output:
            raise ConfigError(f"output must be a folder, got {self.output!r}")
        if self.output_path.exists() and not self.output_path.is_dir():
            raise ConfigError(f"output {self.output_path} exists and is not a folder")
        seeds = list(range(self.seeds)) if isinstance(self.seeds, int) and not isinstance(self.seeds, bool) and \
            self.seeds > 0 else self.seeds
        if not isinstance(seeds, (list, tuple)) or not seeds:
            raise ConfigError(f"seeds must be a count or a list of seeds, got {self.seeds!r}")
        for s in seeds:
            _int("seeds", s, minimum=0)
        if len(set(seeds)) != len(seeds):
            raise ConfigError("seeds lists a seed twice; each seed gives one checkpoint")
        object.__setattr__(self, "seeds", tuple(seeds))
        _int("ranks", self.ranks, minimum=1)
        self._check_train()
        if not isinstance(self.forecast, Mapping):
            raise ConfigError(f"forecast must be a mapping such as {{batch_size: 16}}, got {self.forecast!r}")
        unknown = sorted(str(k) for k in self.forecast if k not in FORECAST_OPTIONS)
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r} in forecast; allowed: {', '.join(FORECAST_OPTIONS)} "
                              "(the campaign sets the others)")
        self._check_score()
        if isinstance(self.slurm, Mapping):
            _check_keys("slurm", self.slurm, SlurmOptions)
            object.__setattr__(self, "slurm", SlurmOptions(**self.slurm))
        elif not isinstance(self.slurm, SlurmOptions):
            raise ConfigError(f"slurm must be a mapping such as {{partition: gpu}}, got {self.slurm!r}")
        self._check_ranks()
        # the forecast keys through the forecast YAML's own validation (physics: no checkpoints yet)
        values = {"data": list(self.data), "output": "campaign-check.zarr", "init_times": self.init_times,
                  "lead_hours": self.lead_hours, "models": [PHYSICS], "perturbation": self.perturbation,
                  **self.forecast}
        checked = parse_config(values, base_dir=self.base_dir, where="the campaign")
        if checked.seeds > 1 and not self.train.get("stochastic", False):
            raise ConfigError(f"forecast seeds: {checked.seeds} needs stochastic models; add stochastic: true "
                              "to train or use seeds: 1")
        object.__setattr__(self, "init_times", checked.init_times)
        object.__setattr__(self, "perturbation", checked.perturbation)

    def _check_train(self) -> None:
        if not isinstance(self.train, Mapping) or not self.train:
            raise ConfigError("train must be a mapping of `hens train` options with a budget, e.g. {steps: 20000}")
        for key, value in self.train.items():
            if key not in TRAIN_OPTIONS:
                raise ConfigError(f"unknown key {key!r} in train; allowed: {', '.join(TRAIN_OPTIONS)}")
            types = TRAIN_OPTIONS[key]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise ConfigError(f"train {key} must be {' or '.join(t.__name__ for t in types)}, got {value!r}")

    def _check_score(self) -> None:
        if isinstance(self.score, bool):
            return
        if not isinstance(self.score, Mapping):
            raise ConfigError(f"score must be true, false or a mapping of `hens score` options, got {self.score!r}")
        unknown = sorted(str(k) for k in self.score if k not in SCORE_OPTIONS)
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r} in score; allowed: {', '.join(SCORE_OPTIONS)}")
        if "truth" in self.score:
            _strings("score truth", self.score["truth"])
        climatology = self.score.get("climatology")
        if climatology is not None and not (isinstance(climatology, str) and (self.base_dir / climatology).exists()):
            raise ConfigError(f"score climatology {climatology!r} does not exist")
        levels = self.score.get("thresholds", [0.9])
        if not isinstance(levels, list) or not levels or not all(
                isinstance(t, float) and 0.0 < t < 1.0 for t in levels):
            raise ConfigError(f"score thresholds must be a list of quantile levels in (0, 1), got {levels!r}")
        if not isinstance(self.score.get("drop_incomplete", False), bool):
            raise ConfigError("score drop_incomplete must be true or false")

    @property
    def scoring(self) -> bool:
        return self.score is not False

    @property
    def truth(self) -> list[str]:
        """Verifying data of the scores, resolved (default: the campaign's data)."""
        paths = self.score.get("truth", self.data) if isinstance(self.score, Mapping) else self.data
        return [_resolve(self.base_dir, p) for p in ([paths] if isinstance(paths, str) else paths)]

    def score_args(self) -> list[str]:
        """`hens score` options (after ``--forecast``/``--out``, which score.sbatch sets)."""
        args = [a for p in self.truth for a in ("--truth", p)]
        opts = self.score if isinstance(self.score, Mapping) else {}
        if opts.get("climatology"):
            args += ["--climatology", _resolve(self.base_dir, opts["climatology"])]
        if opts.get("thresholds"):
            args += ["--thresholds", ",".join(str(t) for t in opts["thresholds"])]
        return args + (["--drop-incomplete"] if opts.get("drop_incomplete") else [])

    def _check_ranks(self) -> None:
        s = self.slurm
        if self.ranks % s.nodes:
            raise ConfigError(f"ranks {self.ranks} do not divide over slurm nodes {s.nodes}")
        if s.gpus_per_node and self.ranks != s.nodes * s.gpus_per_node:
            raise ConfigError(f"ranks {self.ranks} != nodes {s.nodes} x gpus_per_node {s.gpus_per_node}: "
                              "hens runs one rank per GPU")

    @property
    def output_path(self) -> Path:
        return self.base_dir / self.output

    def checkpoint(self, seed: int) -> Path:
        """Where the training of ``seed`` writes its checkpoint (slurm/train.sbatch's naming)."""
        return (self.output_path / "checkpoints" / f"sfno-seed{seed}.pt").resolve()

    def forecast_values(self, times: tuple[np.datetime64, ...]) -> dict[str, Any]:
        """The forecast YAML of ``times`` (paths absolute; the store beside the YAML)."""
        stamps = [str(np.datetime_as_string(t, unit="h")) for t in times]
        return {
            "data": [_resolve(self.base_dir, p) for p in self.data],
            "output": f"{stamps[0]}.zarr", "init_times": stamps, "lead_hours": self.lead_hours,
            "models": [str(self.checkpoint(s)) for s in self.seeds],
            "perturbation": dataclasses.asdict(self.perturbation),
            **self.forecast,
        }

    def train_args(self) -> list[str]:
        """`hens train` options (after ``--out``/``--seed``, which train.sbatch sets)."""
        args = [a for p in self.data for a in ("--data", _resolve(self.base_dir, p))]
        for key, value in self.train.items():
            flag = "--" + key.replace("_", "-")
            if isinstance(value, bool):
                args += [flag] if value else []
            else:
                args += [flag, ",".join(value) if isinstance(value, list) else str(value)]
        return args


def _resolve(base: Path, path: str) -> str:
    """``path`` relative to ``base``, absolute (globs kept as written)."""
    return str(base / path) if any(c in path for c in "*?[") else str((base / path).resolve())


def load_campaign(path: str | Path) -> CampaignConfig:
    """Read and validate a campaign YAML (keys and types only; see :func:`check_campaign`)."""
    import yaml

    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read campaign {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"bad YAML in {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(values, Mapping):
        raise ConfigError(f"{path.name} must be a mapping of keys such as data:, seeds:, init_times:")
    unknown = sorted(str(k) for k in values if k not in _KEYS)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {path.name}; allowed: {', '.join(_KEYS)}")
    missing = [k for k in ("data", "output", "seeds", "train", "init_times", "lead_hours") if k not in values]
    if missing:
        raise ConfigError(f"{path.name} lacks the key {missing[0]!r}")
    return CampaignConfig(**values, base_dir=path.resolve().parent)


def check_campaign(cfg: CampaignConfig) -> None:
    """Check the campaign against its data and `hens train`'s own rules (imports torch)."""
    from hens.forecast.perturb.bred import breeding_times
    from hens.forecast.sources import open_source
    from hens.models.train import TrainConfig
    from hens.models.training_data import split_times

    values = cfg.forecast_values(cfg.init_times)
    source = open_source(values["data"] if len(values["data"]) > 1 else values["data"][0])
    opts = {("num_layers" if k == "layers" else k): v for k, v in cfg.train.items()}
    if isinstance(opts.get("channels"), str):
        opts["channels"] = [c.strip() for c in opts["channels"].split(",") if c.strip()]
    if "channels" in opts:
        missing = [c for c in opts["channels"] if c not in source.channels]
        if missing:
            raise ConfigError(f"train channels {', '.join(missing)} are not in the data "
                              f"(it has {', '.join(source.channels)})")
        opts["channels"] = tuple(opts["channels"])
    try:
        for seed in cfg.seeds:
            TrainConfig(data=cfg.data, out=cfg.checkpoint(seed), seed=seed, **opts)
    except ConfigError as err:
        raise ConfigError(f"train: {err}") from None
    split_times(source.times, val_days=cfg.train.get("val_days"))
    cycles = cfg.perturbation.cycles if cfg.perturbation.bred else 0
    t0 = cfg.init_times[0]
    window = breeding_times(t0, cycles) - t0  # the analyses a run starts from and breeds over
    _check_times(cfg, source, [int(h) for h in window // np.timedelta64(1, "h")], "analysis")
    if cfg.scoring:
        truth = cfg.truth
        _check_times(cfg, open_source(truth if len(truth) > 1 else truth[0]), range(0, cfg.lead_hours + 1, 6),
                     "truth (score)")


def _check_times(cfg: CampaignConfig, source: Any, hours: Any, what: str) -> None:
    """Every init time + ``hours`` must be a time of ``source``."""
    have = set(np.asarray(source.times, dtype="datetime64[ns]").tolist())
    for t in cfg.init_times:
        for h in hours:
            v = (t + np.timedelta64(h, "h")).astype("datetime64[ns]")
            if v.tolist() not in have:
                raise ConfigError(f"init time {np.datetime_as_string(t, unit='h')} needs the {what} at "
                                  f"{np.datetime_as_string(v, unit='h')}, which {source.name} lacks")


@dataclass(frozen=True)
class Submission:
    """What :func:`submit_campaign` submitted: ``jobs`` (step -> job id) and the sbatch command lines."""

    jobs: dict[str, str]
    commands: dict[str, list[str]]
    configs: tuple[Path, ...]
    stores: tuple[Path, ...]


def default_scripts() -> Path:
    """The repository's ``slurm/`` folder (hens installed from a checkout)."""
    return Path(__file__).resolve().parents[1] / "slurm"


def submit_campaign(cfg: CampaignConfig, *, scripts: Path | None = None, dry_run: bool = False) -> Submission:
    """Validate, write the forecast configs, submit train -> forecast (``afterok``).

    With ``dry_run`` nothing is submitted; the job ids are placeholders.
    """
    scripts = Path(scripts) if scripts is not None else default_scripts()
    for name in ("train.sbatch", "forecast.sbatch", "score.sbatch"):
        if not (scripts / name).is_file():
            raise ConfigError(f"no {name} in {scripts}; pass --scripts with the slurm/ folder of a hens checkout")
    if not dry_run and shutil.which("sbatch") is None:
        raise ConfigError("sbatch not found: run on a SLURM login node (or start slurm/cluster.sh)")
    check_campaign(cfg)
    out = cfg.output_path.resolve()
    for sub in ("checkpoints", "forecasts", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    configs, stores = _write_forecasts(cfg, out / "forecasts")
    (out / "forecasts.txt").write_text("".join(f"{p}\n" for p in configs))
    (out / "stores.txt").write_text("".join(f"{p}\n" for p in stores))
    s, name = cfg.slurm, out.name
    train_time = s.train_time or (f"{math.ceil(cfg.train['minutes']) + 10}" if "minutes" in cfg.train else None)
    train_res = [f"--ntasks={s.train_ranks}", f"--cpus-per-task={s.cpus_per_task}"]
    if s.gpus_per_node:
        train_res += ["--nodes=1", f"--ntasks-per-node={s.train_ranks}", f"--gpus-per-node={s.train_ranks}"]
    fc_res = [f"--ntasks={cfg.ranks}", f"--nodes={s.nodes}", f"--cpus-per-task={s.cpus_per_task}"]
    if s.nodes > 1 or s.gpus_per_node:
        fc_res.append(f"--ntasks-per-node={cfg.ranks // s.nodes}")
    if s.gpus_per_node:
        fc_res.append(f"--gpus-per-node={s.gpus_per_node}")
    steps = {
        "train": ([f"--job-name={name}-train", "--array=" + ",".join(map(str, cfg.seeds)),
                   f"--output={out}/logs/train-%A_%a.out", *train_res, *_time(train_time)],
                  [str(scripts / "train.sbatch"), str(out / "checkpoints"), *cfg.train_args()]),
        "forecast": ([f"--job-name={name}-forecast", f"--array=0-{len(configs) - 1}",
                      f"--output={out}/logs/forecast-%A_%a.out", *fc_res, *_time(s.forecast_time)],
                     [str(scripts / "forecast.sbatch"), str(out / "forecasts.txt")]),
    }
    if cfg.scoring:
        steps["score"] = ([f"--job-name={name}-score", f"--array=0-{len(stores) - 1}",
                           f"--output={out}/logs/score-%A_%a.out", f"--cpus-per-task={s.cpus_per_task}",
                           *_time(s.score_time)],
                          [str(scripts / "score.sbatch"), str(out / "stores.txt"), *cfg.score_args()])
    jobs: dict[str, str] = {}
    commands: dict[str, list[str]] = {}
    for step, (options, script) in steps.items():
        # each step after the one before it (an array job id: after all of its tasks)
        after = [f"--dependency=afterok:{list(jobs.values())[-1]}", "--kill-on-invalid-dep=yes"] if jobs else []
        cmd = ["sbatch", "--parsable", f"--chdir={out}", *s.common(), *options, *after, *script]
        commands[step] = cmd
        jobs[step] = f"<{step}>" if dry_run else _sbatch(cmd, step, submitted=list(jobs.values()))
    if not dry_run:
        (out / "campaign.json").write_text(json.dumps({"jobs": jobs, "commands": commands}, indent=1))
    return Submission(jobs, commands, tuple(configs), tuple(stores))


def _time(value: str | None) -> list[str]:
    return [f"--time={value}"] if value else []


def _write_forecasts(cfg: CampaignConfig, folder: Path) -> tuple[list[Path], list[Path]]:
    import yaml

    configs, stores = [], []
    for t in cfg.init_times:
        values = cfg.forecast_values((t,))
        path = folder / f"{values['init_times'][0]}.yaml"
        path.write_text(yaml.safe_dump(values, sort_keys=False))
        configs.append(path)
        stores.append(folder / values["output"])
    return configs, stores


def _sbatch(cmd: list[str], step: str, *, submitted: list[str]) -> str:
    """Submit; on refusal cancel the jobs already submitted and raise one line."""
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        if submitted:
            subprocess.run(["scancel", *submitted], capture_output=True)
        reason = (res.stderr.strip().splitlines() or ["no message"])[-1]
        raise ConfigError(f"sbatch refused the {step} job ({reason})"
                          + (f"; cancelled job(s) {', '.join(submitted)}" if submitted else ""))
    return res.stdout.strip().split(";")[0]


__all__ = ["CampaignConfig", "SlurmOptions", "Submission", "check_campaign", "load_campaign", "submit_campaign"]
