"""The schema library of hens' YAML files: pydantic models whose first error is one line.

The forecast YAML (:mod:`hens.pipelines.forecast.config`) and the campaign YAML
(:mod:`hens.pipelines.campaign.config`) are :class:`Schema` models built from the field
types here. :func:`validate` raises pydantic's first error as one
:class:`~hens.forecast.errors.ConfigError` line ``<dotted.path>: <message>``, e.g.
``perturbation.pairs: must be an integer >= 1, got 0``; the command line prints it after
``hens: error:``.
"""

from __future__ import annotations

import datetime as dt
import glob
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args

import numpy as np
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer,
                      PlainValidator, PrivateAttr, ValidationError, ValidationInfo, WrapValidator,
                      model_validator)
from pydantic_core import PydanticCustomError

from hens.forecast.errors import ConfigError
from hens.forecast.sources.remote import is_url
from hens.forecast.types import HOURS_PER_STEP

S = TypeVar("S", bound="Schema")


def invalid(message: str, *, at: str | None = None) -> PydanticCustomError:
    """The error for a validator to raise: ``message`` as it is, about the value or its key ``at``.

    Parameters
    ----------
    message
        The text after ``<dotted.path>:``.
    at
        Dotted key below the validated value (a model validator names the field it checks).
    """
    # "{message}" as the template: pydantic fills only this placeholder, so braces in the
    # message (e.g. "{lat: [south, north]}") stay as they are
    return PydanticCustomError("hens", "{message}", {"message": message, "at": at})


def _reworded(message: Callable[[Any], str]) -> WrapValidator:
    """Replace pydantic's error of a value by ``message(value)``."""

    def wrap(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise invalid(message(value)) from None

    return WrapValidator(wrap)


def expect(kind: str) -> WrapValidator:
    """``Annotated`` metadata after a type: its errors read ``must be <kind>, got <value>``.

    Parameters
    ----------
    kind
        What the value must be, e.g. ``"an integer >= 1"``.
    """
    return _reworded(lambda value: f"must be {kind}, got {value!r}")


def one_of(alias: Any) -> Any:
    """The type of a string option of the ``Literal`` ``alias``: ``'x' is not one of a, b`` otherwise.

    Parameters
    ----------
    alias
        A :data:`typing.Literal` alias (:mod:`hens.forecast.types`, :mod:`hens.models.types`).
    """
    choices = ", ".join(get_args(alias))
    return Annotated[alias, _reworded(lambda value: f"{value!r} is not one of {choices}")]


def listed(item: Any, kind: str, *, alone: bool = False, min_length: int = 1) -> Any:
    """The type of a YAML list of ``item``, kept as a tuple.

    Parameters
    ----------
    item
        The type of the items.
    kind
        What the list must be (:func:`expect`).
    alone
        Whether one string alone stands for a list of one.
    min_length
        The fewest items.
    """

    def as_tuple(value: Any) -> Any:
        if alone and isinstance(value, str):
            return (value,)
        return tuple(value) if isinstance(value, list) else value

    return Annotated[tuple[item, ...], BeforeValidator(as_tuple), Field(min_length=min_length), expect(kind)]


def yaml_dir(info: ValidationInfo) -> Path:
    """The folder of the YAML being validated (:func:`validate`'s ``base``), for relative paths.

    Parameters
    ----------
    info
        The validator's info.
    """
    return (info.context or {}).get("base_dir", Path("."))


def _existing_data(paths: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
    for pattern in paths:
        if is_url(pattern):
            continue  # gs://, s3://, memory://, ...: open_source checks them on opening
        path = yaml_dir(info) / pattern
        if not path.exists() and not glob.glob(str(path)):
            raise invalid(f"{pattern!r} does not exist (looked for {path})")
    return paths


def _time(value: Any) -> np.datetime64:
    if isinstance(value, (dt.date, dt.datetime)):  # unquoted YAML dates
        value = value.isoformat()
    try:
        t = np.datetime64(str(value), "ns")
    except ValueError:
        raise invalid(f"cannot read {value!r}; write e.g. \"2001-03-01T00\"") from None
    if (t - t.astype("datetime64[D]")) % np.timedelta64(HOURS_PER_STEP, "h"):
        raise invalid(f"{value!r} is not at 00, 06, 12 or 18 UTC")
    return t


def _init_times(value: Any) -> tuple[np.datetime64, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise invalid(f"must be a non-empty list of times, got {value!r}")
    times = sorted(_time(t) for t in value)
    if len(set(times)) != len(times):
        raise invalid("lists a time twice")
    return tuple(times)


#: a count (batch size, ranks, breeding cycles, ...)
Count = Annotated[int, Field(ge=1), expect("an integer >= 1")]
#: a count that may be 0
Size = Annotated[int, Field(ge=0), expect("an integer >= 0")]
#: a seed of random streams (numpy and torch take 63 bits)
Seed = Annotated[int, Field(ge=0, lt=2**63), expect("an integer >= 0 and < 2**63")]
#: a finite number > 0
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False), expect("a positive number")]
#: hours of whole model steps
Hours = Annotated[int, Field(ge=HOURS_PER_STEP, multiple_of=HOURS_PER_STEP),
                  expect(f"a positive integer multiple of {HOURS_PER_STEP}")]
#: true or false
Flag = Annotated[bool, expect("true or false")]
#: a non-empty string (a path, a SLURM time or partition)
Text = Annotated[str, Field(min_length=1), expect("a non-empty string")]
#: a path (relative to the YAML file's folder)
PathName = Annotated[str, Field(min_length=1), expect("a path")]
#: a path, or a non-empty list of paths
Paths = listed(Text, "a path or a non-empty list of paths", alone=True)
#: data paths or URLs (anything :func:`hens.forecast.open_source` accepts); local ones must exist
Data = Annotated[Paths, AfterValidator(_existing_data)]
#: initial times, sorted: ISO text (``"2001-03-01T00"``) or YAML dates, at 00, 06, 12 or 18 UTC
InitTimes = Annotated[
    tuple[np.datetime64, ...],
    PlainValidator(_init_times),
    PlainSerializer(lambda times: [str(np.datetime_as_string(t, unit="h")) for t in times], when_used="json"),
]


class Schema(BaseModel):
    """A YAML mapping: strict types, frozen, unknown keys refused (listing the known ones)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, values: Any) -> Any:
        # pydantic would say "Extra inputs are not permitted" / "valid dictionary": name the keys
        if isinstance(values, cls):
            return values
        keys = list(cls.model_fields)
        if not isinstance(values, Mapping):
            raise invalid(f"must be a mapping of keys such as {', '.join(k + ':' for k in keys[:3])}, "
                          f"got {values!r}")
        unknown = [str(k) for k in values if k not in cls.model_fields]
        if unknown:
            raise invalid(f"unknown key {unknown[0]!r}; allowed: {', '.join(keys)}")
        return values


class Located(Schema):
    """A file's schema: relative paths are relative to :attr:`base_dir`, its folder."""

    _base_dir: Path = PrivateAttr(default=Path("."))

    @model_validator(mode="after")
    def _locate(self, info: ValidationInfo) -> Located:
        self._base_dir = yaml_dir(info)
        return self

    @property
    def base_dir(self) -> Path:
        """The folder relative paths are relative to (the YAML file's)."""
        return self._base_dir


def _dotted(loc: tuple[str | int, ...]) -> str:
    """``("models", 2)`` -> ``models[2]``, ``("perturbation", "pairs")`` -> ``perturbation.pairs``."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def validate(model: type[S], values: Any, *, where: str, base: Path = Path(".")) -> S:
    """Validate ``values`` (parsed YAML) into ``model``; the first error as one line.

    Parameters
    ----------
    model
        The schema.
    values
        The parsed YAML.
    where
        Name of the whole (the file name): the path of errors about the whole.
    base
        The folder relative paths are relative to.

    Raises
    ------
    ConfigError
        ``<dotted.path>: <message>`` of the first error.
    """
    try:
        return model.model_validate(values, context={"base_dir": base})
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        ctx = first.get("ctx") or {}
        loc = (*first["loc"], *(ctx["at"].split(".") if ctx.get("at") else ()))
        if first["type"] == "hens":
            message = ctx["message"]
        elif first["type"] == "missing":
            message = f"missing from {where}"
        else:  # a check without its own words (none of hens' types): pydantic's
            message = f"{first['msg']}, got {first['input']!r}"
        raise ConfigError(f"{_dotted(loc) or where}: {message}") from None


def read_yaml(path: Path, what: str) -> Any:
    """``yaml.safe_load`` of the file ``path``, a :class:`ConfigError` line if it cannot be read.

    Parameters
    ----------
    path
        The YAML file.
    what
        What it is, for the message (``"config"``, ``"campaign"``).

    Raises
    ------
    ConfigError
        An unreadable file, or bad YAML with its line and column.
    """
    import yaml

    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read {what} {path}: {err.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"bad YAML in {path}{where}: {problem}") from None
