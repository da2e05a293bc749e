"""The campaign YAML (format: :mod:`hens.pipelines.campaign`) validated into a frozen
:class:`CampaignConfig`: keys and types only, without opening the data.

Besides validation, the config derives what each step is given: the `hens train` options,
the forecast YAML of each initial time and the `hens score` options (paths absolute).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hens.forecast.errors import ConfigError
from hens.forecast.sources.remote import is_url
from hens.pipelines.config import PHYSICS, PerturbationConfig, _check_keys, _int, _strings, parse_config

#: `hens train` options that the campaign sets itself (data, output, seed) or that a batch job has no use for
_TRAIN_SET_BY_CAMPAIGN = ("data", "out", "seed", "overwrite", "progress")


def _train_options() -> dict[str, tuple[type, ...]]:
    """`hens train`'s options and their YAML types, read from the command's own signature.

    A key is the flag without dashes (``--val-days`` -> ``val_days``). YAML writes a float
    as an int at times; a comma-separated option may be a list; a period may be a year
    (an int: unquoted ``1979:2015`` is a base-60 int in YAML, which the period check names).
    """
    import typing

    from hens.pipelines import cli  # typer only: the command imports its workflow lazily

    options: dict[str, tuple[type, ...]] = {}
    for name, hint in typing.get_type_hints(cli.train, include_extras=True).items():
        if name in _TRAIN_SET_BY_CAMPAIGN or name == "return":
            continue
        base, info = typing.get_args(hint)[:2]
        flag = info.param_decls[0] if info.param_decls else info.default  # Annotated: decls come first
        types = tuple(t for t in (typing.get_args(base) or (base,)) if t is not type(None))
        if float in types:
            types = (int, *types)
        if str in types and "comma-separated" in (info.help or "").lower():
            types = (*types, list)
        if flag.endswith("-period"):
            types = (*types, int)
        options[flag.removeprefix("--").replace("-", "_")] = types
    return options


#: `hens train` options allowed under ``train:`` and their types (``layers`` is ``--layers``)
TRAIN_OPTIONS: dict[str, tuple[type, ...]] = _train_options()
#: keys of the forecast YAML allowed under ``forecast:`` (the campaign sets the others; no
#: ``region``: a campaign scores every store, and scoring needs global fields)
FORECAST_OPTIONS = ("seeds", "batch_size", "seed", "threads", "output_channels", "output_every_hours",
                    "precision")
#: `hens score` options allowed under ``score:`` (truth: the campaign's data by default)
SCORE_OPTIONS = ("truth", "climatology", "thresholds", "drop_incomplete")
_KEYS = ("data", "output", "seeds", "train", "models", "init_times", "lead_hours", "ranks", "perturbation",
         "forecast", "score", "slurm")


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
    """A validated campaign; ``forecast_values(t)`` is the forecast YAML of initial time ``t``.

    The checkpoints are either trained by the campaign (``seeds`` and ``train``) or given
    (``models``: hens checkpoints or published SFNO packages, docs/packages.md); then no
    training job runs.
    """

    data: tuple[str, ...]
    output: str
    init_times: tuple[np.datetime64, ...]
    lead_hours: int
    seeds: tuple[int, ...] = ()
    train: Mapping[str, Any] = field(default_factory=dict)
    models: tuple[str, ...] = ()
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
        if self.models:
            self._check_models()
        else:
            self._check_seeds()
        _int("ranks", self.ranks, minimum=1)
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
        if checked.seeds > 1 and self.trains and not self.train.get("stochastic", False):
            raise ConfigError(f"forecast seeds: {checked.seeds} needs stochastic models; add stochastic: true "
                              "to train or use seeds: 1")
        object.__setattr__(self, "init_times", checked.init_times)
        object.__setattr__(self, "perturbation", checked.perturbation)

    def _check_models(self) -> None:
        if self.seeds or self.train:
            raise ConfigError("models: runs the given checkpoints; a campaign trains (seeds:, train:) or takes "
                              "models:, not both")
        object.__setattr__(self, "models", _strings("models", self.models))
        for path in self.models:
            if not (self.base_dir / path).exists():
                raise ConfigError(f"model {path} does not exist (looked for {self.base_dir / path})")

    def _check_seeds(self) -> None:
        if self.seeds == () or self.train == {}:
            raise ConfigError("a campaign needs seeds: and train: (it trains its checkpoints) or models: "
                              "(checkpoints or published packages to run)")
        seeds = list(range(self.seeds)) if isinstance(self.seeds, int) and not isinstance(self.seeds, bool) and \
            self.seeds > 0 else self.seeds
        if not isinstance(seeds, (list, tuple)) or not seeds:
            raise ConfigError(f"seeds must be a count or a list of seeds, got {self.seeds!r}")
        for s in seeds:
            _int("seeds", s, minimum=0)
        if len(set(seeds)) != len(seeds):
            raise ConfigError("seeds lists a seed twice; each seed gives one checkpoint")
        object.__setattr__(self, "seeds", tuple(seeds))
        self._check_train()

    @property
    def trains(self) -> bool:
        """Whether the campaign trains its checkpoints (else it runs ``models``)."""
        return not self.models

    def model_paths(self) -> list[str]:
        """The forecasts' checkpoints, absolute: the trained ones, or ``models``."""
        if self.trains:
            return [str(self.checkpoint(s)) for s in self.seeds]
        return [resolve_path(self.base_dir, p) for p in self.models]

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
        return [resolve_path(self.base_dir, p) for p in ([paths] if isinstance(paths, str) else paths)]

    def score_args(self) -> list[str]:
        """`hens score` options (after ``--forecast``/``--out``, which score.sbatch sets)."""
        args = [a for p in self.truth for a in ("--truth", p)]
        opts = self.score if isinstance(self.score, Mapping) else {}
        if opts.get("climatology"):
            args += ["--climatology", resolve_path(self.base_dir, opts["climatology"])]
        if opts.get("thresholds"):
            args += [a for t in opts["thresholds"] for a in ("--threshold", str(t))]
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
            "data": [resolve_path(self.base_dir, p) for p in self.data],
            "output": f"{stamps[0]}.zarr", "init_times": stamps, "lead_hours": self.lead_hours,
            "models": self.model_paths(),
            "perturbation": dataclasses.asdict(self.perturbation),
            **self.forecast,
        }

    def train_args(self) -> list[str]:
        """`hens train` options (after ``--out``/``--seed``, which train.sbatch sets)."""
        args = [a for p in self.data for a in ("--data", resolve_path(self.base_dir, p))]
        for key, value in self.train.items():
            flag = "--" + key.replace("_", "-")
            if isinstance(value, bool):
                args += [flag] if value else []
            else:
                args += [flag, ",".join(value) if isinstance(value, list) else str(value)]
        return args


def resolve_path(base: Path, path: str) -> str:
    """``path`` relative to ``base``, absolute (globs kept as written); URLs as they are."""
    if is_url(path):
        return path
    return str(base / path) if any(c in path for c in "*?[") else str((base / path).resolve())


def load_campaign(path: str | Path) -> CampaignConfig:
    """Read and validate a campaign YAML: keys and types only.

    Parameters
    ----------
    path
        The campaign YAML; relative paths in it are relative to its folder.

    Returns
    -------
    CampaignConfig
        The validated campaign; :func:`hens.pipelines.campaign_check.check_campaign` checks it
        against the data.

    Raises
    ------
    ConfigError
        One line naming the key and the fix.
    """
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
    missing = [k for k in ("data", "output", "init_times", "lead_hours") if k not in values]
    if missing:
        raise ConfigError(f"{path.name} lacks the key {missing[0]!r}")
    return CampaignConfig(**values, base_dir=path.resolve().parent)
