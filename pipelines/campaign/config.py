"""The campaign YAML (format: :mod:`hens.pipelines.campaign.submit`) validated into a frozen
:class:`CampaignConfig`: keys and types only, without opening the data.

Its sections are built from the definitions of what they configure: ``train:`` from the
`hens train` command's signature, ``forecast:`` from :class:`~hens.pipelines.forecast.config.ForecastConfig`'s
fields, ``perturbation:`` is :class:`~hens.pipelines.forecast.config.PerturbationConfig`. Besides
validation, the config derives what each step is given: the `hens train` options, the
forecast YAML of each initial time and the `hens score` options (paths absolute).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Union

import numpy as np
from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, create_model, model_validator

from hens.forecast.sources.remote import is_url
from hens.pipelines.forecast.config import Checkpoints, ForecastConfig, PerturbationConfig
from hens.pipelines.schema import (Count, Data, Flag, Hours, InitTimes, Located, PathName, Paths,
                                   Schema, Seed, Size, Text, expect, invalid, listed, read_yaml,
                                   validate, yaml_dir)

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


def _yaml_type(types: tuple[type, ...]) -> Any:
    """The strict pydantic type of a `hens train` option's YAML types (lists of strings)."""
    return Union[tuple(list[str] if t is list else t for t in types)]  # members known at run time: no `|`


#: the campaign's ``train:``: `hens train`'s options, each optional (the given ones are passed on)
TrainOptions = create_model(
    "TrainOptions", __base__=Schema,
    **{key: (Annotated[_yaml_type(types), expect(" or ".join(t.__name__ for t in types))], None)
       for key, types in TRAIN_OPTIONS.items()},
)
#: the campaign's ``forecast:``: those keys of the forecast YAML, as :class:`ForecastConfig` defines them
ForecastOptions = create_model(
    "ForecastOptions", __base__=Schema,
    **{key: (field.rebuild_annotation(), field.default) for key, field in ForecastConfig.model_fields.items()
       if key in FORECAST_OPTIONS},
)


def _existing(path: str, info: ValidationInfo) -> str:
    if not (yaml_dir(info) / path).exists():
        raise invalid(f"{path!r} does not exist (looked for {yaml_dir(info) / path})")
    return path


def _folder(path: str, info: ValidationInfo) -> str:
    if (yaml_dir(info) / path).exists() and not (yaml_dir(info) / path).is_dir():
        raise invalid(f"{yaml_dir(info) / path} exists and is not a folder")
    return path


def _seed_range(value: Any) -> Any:
    """A count n of seeds: 0..n-1."""
    return tuple(range(value)) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else value


def _distinct_seeds(seeds: tuple[int, ...]) -> tuple[int, ...]:
    if len(set(seeds)) != len(seeds):
        raise invalid("lists a seed twice; each seed gives one checkpoint")
    return seeds


def _score(value: Any) -> Any:
    """``true``: default options, ``false``: no scoring (None)."""
    if not isinstance(value, (bool, Mapping)):
        raise invalid(f"must be true, false or a mapping of `hens score` options, got {value!r}")
    return None if value is False else {} if value is True else value


#: seeds of the trained checkpoints: a count n (0..n-1) or a list
Seeds = Annotated[listed(Seed, "a count or a list of seeds"), BeforeValidator(_seed_range),
                  AfterValidator(_distinct_seeds)]
#: climate quantile levels of `hens score`'s exceedance events
Thresholds = listed(Annotated[float, Field(gt=0, lt=1)], "a list of quantile levels in (0, 1)")
SbatchArgs = listed(str, "a list of sbatch options", alone=True, min_length=0)


class ScoreOptions(Schema):
    """`hens score` options of every store (truth: the campaign's data by default)."""

    truth: Paths | None = None
    climatology: Annotated[PathName, AfterValidator(_existing)] | None = None
    thresholds: Thresholds | None = None
    drop_incomplete: Flag = False


class SlurmOptions(Schema):
    """Resources of the jobs. Forecast jobs: ``ranks`` tasks over ``nodes`` nodes, one rank
    per GPU when ``gpus_per_node`` > 0 (then ranks = nodes x gpus_per_node). Training jobs:
    ``train_ranks`` data-parallel tasks on one node. Times are SLURM time strings; the
    training time defaults to the ``minutes`` budget + 10 min."""

    partition: Text | None = None
    account: Text | None = None
    qos: Text | None = None
    nodes: Count = 1
    gpus_per_node: Size = 0
    cpus_per_task: Count = 1
    train_ranks: Count = 1
    train_time: Text | None = None
    forecast_time: Text | None = None
    score_time: Text | None = None
    sbatch_args: SbatchArgs = ()

    @model_validator(mode="after")
    def _check(self) -> SlurmOptions:
        if self.gpus_per_node and self.train_ranks > self.gpus_per_node:
            raise invalid(f"{self.train_ranks} > gpus_per_node {self.gpus_per_node}: a training job runs one rank "
                          "per GPU on one node", at="train_ranks")
        return self

    def common(self) -> list[str]:
        """The sbatch options of every job: partition, account, qos and ``sbatch_args``."""
        pairs = (("partition", self.partition), ("account", self.account), ("qos", self.qos))
        return [f"--{k}={v}" for k, v in pairs if v] + list(self.sbatch_args)


class CampaignConfig(Located):
    """A validated campaign; ``forecast_values(t)`` is the forecast YAML of initial time ``t``.

    The checkpoints are either trained by the campaign (``seeds`` and ``train``) or given
    (``models``: hens checkpoints or published SFNO packages, docs/packages.md); then no
    training job runs.
    """

    data: Data
    output: Annotated[PathName, AfterValidator(_folder)]
    seeds: Seeds = ()
    train: TrainOptions | None = None
    models: Checkpoints = ()
    init_times: InitTimes
    lead_hours: Hours
    ranks: Count = 1
    perturbation: PerturbationConfig = PerturbationConfig()
    forecast: ForecastOptions = ForecastOptions()
    score: Annotated[ScoreOptions | None, BeforeValidator(_score)] = ScoreOptions()
    slurm: SlurmOptions = SlurmOptions()

    @model_validator(mode="after")
    def _check(self) -> CampaignConfig:
        if self.models and (self.seeds or self.train is not None):
            raise invalid("runs the given checkpoints; a campaign trains (seeds:, train:) or takes models:, not both",
                          at="models")
        if not self.models and not (self.seeds and self.train_options):
            raise invalid("a campaign needs seeds: and train: (it trains its checkpoints) or models: "
                          "(checkpoints or published packages to run)")
        if self.forecast.seeds > 1 and self.trains and not self.train_options.get("stochastic", False):
            raise invalid(f"{self.forecast.seeds} needs stochastic models; add stochastic: true to train or use "
                          "seeds: 1", at="forecast.seeds")
        if self.forecast.output_every_hours > self.lead_hours:
            raise invalid(f"must be a multiple of 6 up to lead_hours, got {self.forecast.output_every_hours}",
                          at="forecast.output_every_hours")
        s = self.slurm
        if self.ranks % s.nodes:
            raise invalid(f"{self.ranks} do not divide over slurm nodes {s.nodes}", at="ranks")
        if s.gpus_per_node and self.ranks != s.nodes * s.gpus_per_node:
            raise invalid(f"{self.ranks} != nodes {s.nodes} x gpus_per_node {s.gpus_per_node}: hens runs one "
                          "rank per GPU", at="ranks")
        return self

    @property
    def trains(self) -> bool:
        """Whether the campaign trains its checkpoints (else it runs ``models``)."""
        return not self.models

    @property
    def train_options(self) -> dict[str, Any]:
        """The `hens train` options given under ``train:`` (keys of :data:`TRAIN_OPTIONS`)."""
        return {} if self.train is None else self.train.model_dump(exclude_unset=True)

    def model_paths(self) -> list[str]:
        """The forecasts' checkpoints, absolute: the trained ones, or ``models``."""
        if self.trains:
            return [str(self.checkpoint(s)) for s in self.seeds]
        return [resolve_path(self.base_dir, p) for p in self.models]

    @property
    def scoring(self) -> bool:
        """Whether every store is scored (``score:`` is not false)."""
        return self.score is not None

    @property
    def truth(self) -> list[str]:
        """Verifying data of the scores, resolved (default: the campaign's data)."""
        paths = self.score.truth if self.score is not None and self.score.truth else self.data
        return [resolve_path(self.base_dir, p) for p in paths]

    def score_args(self) -> list[str]:
        """`hens score` options (after ``--forecast``/``--out``, which score.sbatch sets)."""
        args = [a for p in self.truth for a in ("--truth", p)]
        opts = self.score or ScoreOptions()
        if opts.climatology:
            args += ["--climatology", resolve_path(self.base_dir, opts.climatology)]
        if opts.thresholds:
            args += [a for t in opts.thresholds for a in ("--threshold", str(t))]
        return args + (["--drop-incomplete"] if opts.drop_incomplete else [])

    @property
    def output_path(self) -> Path:
        """The campaign's folder, resolved."""
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
            "perturbation": self.perturbation.model_dump(mode="json"),
            **self.forecast.model_dump(mode="json", exclude_unset=True),
        }

    def train_args(self) -> list[str]:
        """`hens train` options (after ``--out``/``--seed``, which train.sbatch sets)."""
        args = [a for p in self.data for a in ("--data", resolve_path(self.base_dir, p))]
        for key, value in self.train_options.items():
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
        The validated campaign; :func:`hens.pipelines.campaign.check.check_campaign` checks it
        against the data.

    Raises
    ------
    ConfigError
        One line ``<dotted.path>: <message>``.
    """
    path = Path(path)
    return validate(CampaignConfig, read_yaml(path, "campaign"), where=path.name, base=path.resolve().parent)
