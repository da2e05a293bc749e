"""The ensemble run configuration: YAML, validated into frozen dataclasses before any work.

Example (``ens.yaml``; relative paths are relative to the YAML file's folder)::

    data: world.zarr              # anything hens.forecast.open_source accepts (path, list, glob)
    output: ens.zarr
    init_times: ["2001-03-01T00", "2001-03-08T00"]
    lead_hours: 240
    models: [ck0.pt, ck1.pt, ck2.pt, ck3.pt]   # or [physics] for the world's own solver
    perturbation: {kind: hemispheric_bred_vector, pairs: 8, cycles: 3, amplitude: 0.35}
    seeds: 2                      # noise seeds per (model, perturbation) of stochastic models
    batch_size: 16
    seed: 0                       # base seed of every random stream
    threads: 1                    # intra-op threads per rank (bit-identity needs the same count)
    precision: float32            # optional: bfloat16 / float16 autocast of the network (docs/gpu.md)
    output_channels: [z500, t2m]  # optional: channels the store keeps (default all)
    region: {lat: [20, 75], lon: [345, 45]}   # optional: a box the store keeps (default the globe)
    output_every_hours: 24        # optional: hours between stored leads (default 6)

Every mistake (bad YAML, unknown key, wrong type or value, missing file) raises one
:class:`~hens.forecast.errors.ConfigError` line naming the key and the fix.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hens.forecast.errors import ConfigError
from hens.forecast.sources.remote import is_url
from hens.forecast.types import PERTURBATION_KINDS, PerturbationKind, check_choice
from hens.models.types import Precision

PHYSICS = "physics"
_SIX_HOURS = np.timedelta64(6, "h")


def _int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
        maximum is not None and value > maximum
    ):
        bound = f" and <= {maximum}" if maximum is not None else ""
        raise ConfigError(f"{name} must be an integer >= {minimum}{bound}, got {value!r}")
    return value


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _strings(name: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items or not all(isinstance(v, str) and v for v in items):
        raise ConfigError(f"{name} must be a path or a non-empty list of paths, got {value!r}")
    return tuple(items)


def _time(value: Any) -> np.datetime64:
    if isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    try:
        t = np.datetime64(str(value), "ns")
    except ValueError:
        raise ConfigError(f"init_times: cannot read {value!r}; write e.g. \"2001-03-01T00\"") from None
    if (t - t.astype("datetime64[D]")) % _SIX_HOURS:
        raise ConfigError(f"init_times: {value!r} is not at 00, 06, 12 or 18 UTC")
    return t


def _check_keys(where: str, values: Mapping[str, Any], cls: type) -> None:
    known = [f.name for f in dataclasses.fields(cls) if f.init and f.name != "base_dir"]
    unknown = sorted(str(k) for k in values if k not in known)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {where}; allowed: {', '.join(known)}")


@dataclass(frozen=True)
class PerturbationConfig:
    """Initial-condition perturbation: ``kind``, ``pairs`` Q (+/- pairs per checkpoint),
    breeding ``cycles`` N, ``amplitude`` (fraction of the per-channel scale, see
    :func:`hens.pipelines.components.load_models`), the seed fields' correlation
    ``length_km`` and ``rmse_file``, where the 48-hour RMSE that hens measures for models
    that record none is cached (default: beside the output, :mod:`hens.pipelines.perturbation_scale`)."""

    kind: PerturbationKind = "hemispheric_bred_vector"
    pairs: int = 1
    cycles: int = 3
    amplitude: float = 0.35
    length_km: float = 500.0
    rmse_file: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in PERTURBATION_KINDS:
            raise ConfigError(f"perturbation kind {self.kind!r} is not one of {', '.join(PERTURBATION_KINDS)}")
        _int("perturbation pairs", self.pairs, minimum=1)
        _int("perturbation cycles", self.cycles, minimum=1)
        object.__setattr__(self, "amplitude", _positive("perturbation amplitude", self.amplitude))
        object.__setattr__(self, "length_km", _positive("perturbation length_km", self.length_km))
        if self.rmse_file is not None and (not isinstance(self.rmse_file, str) or not self.rmse_file):
            raise ConfigError(f"perturbation rmse_file must be a path, got {self.rmse_file!r}")

    @property
    def bred(self) -> bool:
        return self.kind in ("bred_vector", "hemispheric_bred_vector")


@dataclass(frozen=True)
class ForecastConfig:
    """A validated ensemble run; paths as written in the YAML, resolved against ``base_dir``."""

    data: tuple[str, ...]
    output: str
    init_times: tuple[np.datetime64, ...]
    lead_hours: int
    models: tuple[str, ...]
    perturbation: PerturbationConfig = field(default_factory=PerturbationConfig)
    seeds: int = 1
    batch_size: int = 16
    seed: int = 0
    threads: int = 1
    output_channels: tuple[str, ...] | None = None
    region: Mapping[str, Any] | None = None
    output_every_hours: int = 6
    precision: Precision = "float32"
    base_dir: Path = Path(".")

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _strings("data", self.data))
        object.__setattr__(self, "models", _strings("models", self.models))
        if not isinstance(self.output, str) or not self.output:
            raise ConfigError(f"output must be a path, got {self.output!r}")
        if not isinstance(self.init_times, (list, tuple)) or not self.init_times:
            raise ConfigError(f"init_times must be a non-empty list of times, got {self.init_times!r}")
        times = sorted(_time(t) for t in self.init_times)
        if len(set(times)) != len(times):
            raise ConfigError("init_times lists a time twice")
        object.__setattr__(self, "init_times", tuple(times))
        if _int("lead_hours", self.lead_hours, minimum=6) % 6:
            raise ConfigError(f"lead_hours must be a multiple of 6, got {self.lead_hours}")
        for name, minimum in (("seeds", 1), ("batch_size", 1), ("threads", 1)):
            _int(name, getattr(self, name), minimum=minimum)
        _int("seed", self.seed, minimum=0, maximum=2**63 - 1)
        if self.output_channels is not None:
            names = self.output_channels
            if not isinstance(names, (list, tuple)) or not names or not all(isinstance(c, str) for c in names):
                raise ConfigError(f"output_channels must be a non-empty list of channel names, got {names!r}")
            object.__setattr__(self, "output_channels", tuple(names))
        if self.region is not None and not isinstance(self.region, Mapping):
            raise ConfigError(f"region must be {{lat: [south, north], lon: [west, east]}}, got {self.region!r}")
        every = _int("output_every_hours", self.output_every_hours, minimum=6)
        if every % 6 or every > self.lead_hours:
            raise ConfigError(f"output_every_hours must be a multiple of 6 up to lead_hours, got {every}")
        if isinstance(self.perturbation, Mapping):
            _check_keys("perturbation", self.perturbation, PerturbationConfig)
            object.__setattr__(self, "perturbation", PerturbationConfig(**self.perturbation))
        elif not isinstance(self.perturbation, PerturbationConfig):
            raise ConfigError(f"perturbation must be a mapping such as {{kind: gaussian, pairs: 4}}, "
                              f"got {self.perturbation!r}")
        check_choice("precision", self.precision, Precision)
        if self.precision != "float32" and self.models == (PHYSICS,):
            raise ConfigError("precision applies to checkpoints; models: [physics] runs in float64, drop precision")
        self._check_paths()

    def _check_paths(self) -> None:
        for pattern in self.data:
            if is_url(pattern):
                continue  # gs://, s3://, memory://, ...: open_source checks them on opening
            path = self.base_dir / pattern
            if not path.exists() and not glob.glob(str(path)):
                raise ConfigError(f"data {pattern!r} does not exist (looked for {path})")
        if PHYSICS in self.models and self.models != (PHYSICS,):
            raise ConfigError("models: [physics] runs the world's solver alone; do not mix it with checkpoints")
        if len(set(self.models)) != len(self.models):
            raise ConfigError("models lists a checkpoint twice; independent checkpoints make the ensemble")
        for path in self.model_paths:
            if not path.exists():  # a file, or a published package's directory
                raise ConfigError(f"checkpoint {path} does not exist")
        if not self.output_path.parent.is_dir():
            raise ConfigError(f"the folder of output {self.output_path} does not exist")
        if any(self.output_path.resolve() == (self.base_dir / p).resolve() for p in (*self.data, *self.models)):
            raise ConfigError(f"output {self.output} is also an input; write the ensemble elsewhere")

    @property
    def physics(self) -> bool:
        """Whether the members run the world's solver instead of checkpoints."""
        return self.models == (PHYSICS,)

    @property
    def data_paths(self) -> str | list[str]:
        """The data argument of :func:`hens.forecast.open_source`, resolved."""
        paths = [p if is_url(p) else str(self.base_dir / p) for p in self.data]
        return paths[0] if len(paths) == 1 else paths

    @property
    def model_paths(self) -> tuple[Path, ...]:
        return () if self.physics else tuple(self.base_dir / p for p in self.models)

    @property
    def output_path(self) -> Path:
        return self.base_dir / self.output

    @property
    def rmse_cache_path(self) -> Path:
        """Where measured 48-hour RMSEs are cached: ``perturbation.rmse_file`` or ``<output stem>.rmse_48h.json``."""
        if self.perturbation.rmse_file is not None:
            return self.base_dir / self.perturbation.rmse_file
        return self.output_path.with_name(f"{self.output_path.stem}.rmse_48h.json")

    @property
    def lead_steps(self) -> tuple[int, ...]:
        """Lead hours the models step through: 0, 6, ..., ``lead_hours``."""
        return tuple(range(0, self.lead_hours + 1, 6))

    @property
    def stored_leads(self) -> tuple[int, ...]:
        """Lead hours the store keeps: 0, ``output_every_hours``, ... up to ``lead_hours``."""
        return tuple(range(0, self.lead_hours + 1, self.output_every_hours))

    def to_dict(self) -> dict[str, Any]:
        """Plain values as written (paths relative to the YAML): the store's ``hens_config``."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "base_dir"}
        out["perturbation"] = dataclasses.asdict(self.perturbation)
        out["data"], out["models"] = list(self.data), list(self.models)
        out["init_times"] = [np.datetime_as_string(t, unit="h") for t in self.init_times]
        if self.precision == "float32":  # the default is not recorded: stores written before still resume
            del out["precision"]
        if self.output_channels is not None:
            out["output_channels"] = list(self.output_channels)
        if self.region is not None:
            out["region"] = {str(k): list(v) if isinstance(v, (list, tuple)) else v for k, v in self.region.items()}
        return out


def parse_config(values: Any, *, base_dir: Path = Path("."), where: str = "the config") -> ForecastConfig:
    """Validate a mapping (e.g. parsed YAML) into a :class:`ForecastConfig`."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys such as data:, output:, models:")
    _check_keys(where, values, ForecastConfig)
    missing = [f.name for f in dataclasses.fields(ForecastConfig)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in values]
    if missing:
        raise ConfigError(f"{where} lacks the key {missing[0]!r}")
    return ForecastConfig(**values, base_dir=base_dir)


def load_config(path: str | Path) -> ForecastConfig:
    """Read and validate a YAML run configuration (``yaml.safe_load``)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"bad YAML in {path}{where}: {problem}") from None
    return parse_config(values, base_dir=path.resolve().parent, where=path.name)
