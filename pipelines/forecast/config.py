"""The ensemble run configuration: YAML, validated into frozen models before any work.

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
    noise_scale: 1.0              # optional: factor on a stochastic model's noise at inference
    calibration: {...}            # optional: what `hens calibrate` tuned (provenance, not read)

Every mistake (bad YAML, unknown key, wrong type or value, missing file) raises one
:class:`~hens.forecast.errors.ConfigError` line ``<dotted.path>: <message>`` naming the key
and the fix (:mod:`hens.pipelines.schema`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo, model_validator

from hens.forecast.sources.remote import is_url
from hens.forecast.types import HOURS_PER_STEP, PerturbationKind
from hens.models.types import Precision
from hens.pipelines.schema import (Count, Data, Hours, InitTimes, Located, PathName, Paths, Positive,
                                   Schema, Seed, expect, invalid, listed, one_of, read_yaml, validate,
                                   yaml_dir)

#: ``models: [physics]``: the members run the world's own solver (no checkpoints)
PHYSICS = "physics"
#: the perturbation kinds, the channels a store keeps, the network's precision, a box
Kind = one_of(PerturbationKind)
Channels = listed(str, "a non-empty list of channel names")
PrecisionOption = one_of(Precision)
Region = Annotated[dict[str, Any], expect("{lat: [south, north], lon: [west, east]}")]
#: the provenance block ``hens calibrate`` writes (recorded in ``hens_config``, never read)
CalibrationRecord = Annotated[dict[str, Any], expect("the mapping hens calibrate writes")]
#: keys left out of ``hens_config`` at their default: stores written before they existed still resume
_UNRECORDED_DEFAULTS = {"precision": "float32", "noise_scale": 1.0, "calibration": None}


def _checkpoints(models: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
    if PHYSICS in models and models != (PHYSICS,):
        raise invalid("[physics] runs the world's solver alone; do not mix it with checkpoints")
    if len(set(models)) != len(models):
        raise invalid("lists a checkpoint twice; independent checkpoints make the ensemble")
    for name in models if models != (PHYSICS,) else ():
        if not (yaml_dir(info) / name).exists():  # a file, or a published package's directory
            raise invalid(f"checkpoint {name} does not exist (looked for {yaml_dir(info) / name})")
    return models


#: checkpoint files or published packages (distinct, existing), or ``[physics]``
Checkpoints = Annotated[Paths, AfterValidator(_checkpoints)]


class PerturbationConfig(Schema):
    """Initial-condition perturbation: ``kind``, ``pairs`` Q (+/- pairs per checkpoint),
    breeding ``cycles`` N, ``amplitude`` (fraction of the per-channel scale, see
    :func:`hens.pipelines.forecast.components.load_models`), the seed fields' correlation
    ``length_km`` and ``rmse_file``, where the 48-hour RMSE that hens measures for models
    that record none is cached (default: beside the output, :mod:`hens.pipelines.forecast.perturbation_scale`)."""

    kind: Kind = "hemispheric_bred_vector"
    pairs: Count = 1
    cycles: Count = 3
    amplitude: Positive = 0.35
    length_km: Positive = 500.0
    rmse_file: PathName | None = None

    @property
    def bred(self) -> bool:
        """Whether the perturbations are bred vectors (breeding cycles before the run)."""
        return self.kind in ("bred_vector", "hemispheric_bred_vector")


class ForecastConfig(Located):
    """A validated ensemble run; paths as written in the YAML, resolved against ``base_dir``."""

    data: Data
    output: PathName
    init_times: InitTimes
    lead_hours: Hours
    models: Checkpoints
    perturbation: PerturbationConfig = PerturbationConfig()
    seeds: Count = 1
    batch_size: Count = 16
    seed: Seed = 0
    threads: Count = 1
    output_channels: Channels | None = None
    region: Region | None = None
    output_every_hours: Hours = HOURS_PER_STEP
    precision: PrecisionOption = "float32"
    noise_scale: Positive = 1.0
    calibration: CalibrationRecord | None = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ForecastConfig:
        if self.output_every_hours > self.lead_hours:
            raise invalid(f"must be a multiple of 6 up to lead_hours, got {self.output_every_hours}",
                          at="output_every_hours")
        if self.precision != "float32" and self.physics:
            raise invalid("applies to checkpoints; models: [physics] runs in float64, drop precision",
                          at="precision")
        output = yaml_dir(info) / self.output
        if not output.parent.is_dir():
            raise invalid(f"the folder of {output} does not exist", at="output")
        if any(output.resolve() == (yaml_dir(info) / p).resolve() for p in (*self.data, *self.models)):
            raise invalid(f"{self.output} is also an input; write the ensemble elsewhere", at="output")
        return self

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
        """The checkpoints (files or package folders), resolved; none for physics."""
        return () if self.physics else tuple(self.base_dir / p for p in self.models)

    @property
    def output_path(self) -> Path:
        """The store, resolved."""
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
        exclude = {k for k, default in _UNRECORDED_DEFAULTS.items() if getattr(self, k) == default}
        return self.model_dump(mode="json", exclude=exclude or None)


def parse_config(values: Any, *, base_dir: Path = Path("."), where: str = "the config") -> ForecastConfig:
    """Validate a mapping (e.g. parsed YAML) into a :class:`ForecastConfig`.

    Parameters
    ----------
    values
        The parsed YAML.
    base_dir
        The folder relative paths are relative to.
    where
        The name of the whole in messages (the file name).

    Returns
    -------
    ForecastConfig
        The validated run.

    Raises
    ------
    ConfigError
        One line ``<dotted.path>: <message>``.
    """
    return validate(ForecastConfig, values, where=where, base=base_dir)


def load_config(path: str | Path) -> ForecastConfig:
    """Read and validate a YAML run configuration (``yaml.safe_load``)."""
    path = Path(path)
    return parse_config(read_yaml(path, "config"), base_dir=path.resolve().parent, where=path.name)
