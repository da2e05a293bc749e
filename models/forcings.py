"""Known-in-advance inputs of a model step: the phase of the year and of the day.

A forecast model only sees the state; the forcing that drives the atmosphere (insolation,
or the world's seasonal equilibrium) depends on the date, which the state alone does not
pin down. Without it a model relaxes towards a seasonless climate and its largest scales
drift within days. As GraphCast's ``year_progress``/``day_progress`` inputs (and SFNO's
cosine zenith angle), each forcing adds its sine and cosine as input fields:

* ``year_progress``: fraction of the 365.25-day year since 1970-01-01 (constant in space);
* ``day_progress``: local mean solar time as a fraction of the day, ``UTC + lon / 360``
  (varies with longitude; use it for data with a diurnal cycle such as ERA5);
* ``cos_zenith``: the cosine of the solar zenith angle, one field, as NVIDIA's published SFNO
  packages compute it (:mod:`hens.models.zenith`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hens.forecast.errors import ConfigError, DataError
from hens.models.zenith import cos_zenith

#: input fields each forcing adds (its sine and cosine)
FORCINGS: dict[str, int] = {"year_progress": 2, "day_progress": 2, "cos_zenith": 1}
#: what ``hens train`` gives a model unless told otherwise
DEFAULT_FORCINGS: tuple[str, ...] = ("year_progress",)
_YEAR_SECONDS = 365.25 * 86_400.0
_DAY_SECONDS = 86_400.0


def check_forcings(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple, or :class:`ConfigError` for an unknown or repeated one."""
    names = tuple(str(n) for n in names)
    unknown = [n for n in names if n not in FORCINGS]
    if unknown:
        raise ConfigError(f"unknown forcing {', '.join(unknown)}; use any of {', '.join(FORCINGS)} (or none)")
    if len(set(names)) != len(names):
        raise ConfigError(f"forcings {', '.join(names)} repeat a name")
    return names


def parse_forcings(value: str | Sequence[str]) -> tuple[str, ...]:
    """Forcings from ``"year_progress,day_progress"``, ``"none"`` or a list of names."""
    if isinstance(value, str):
        value = [] if value.strip().lower() in ("", "none") else [v.strip() for v in value.split(",") if v.strip()]
    return check_forcings(value)


def forcing_channels(names: Sequence[str]) -> int:
    """Number of input fields that ``names`` add."""
    return sum(FORCINGS[n] for n in check_forcings(names))


def forcing_fields(
    names: Sequence[str], times: np.ndarray | np.datetime64, nlat: int, nlon: int, *, lat: np.ndarray | None = None
) -> torch.Tensor:
    """Forcing fields ``(B, forcing_channels(names), nlat, nlon)`` float32 at ``times``.

    Parameters
    ----------
    names
        Forcings, in input order.
    times
        Valid time of each row (``datetime64``, shape ``(B,)``), or one for all rows (then B = 1).
    nlat, nlon
        Grid shape; longitudes are ``360 k / nlon`` degrees east (hens grids start at 0).
    lat
        Latitudes of the rows (degrees north); ``cos_zenith`` needs them.
    """
    stamps = np.atleast_1d(np.asarray(times, dtype="datetime64[ns]"))
    if np.isnat(stamps).any():
        raise DataError("a forcing needs the valid time of every state; got NaT")
    seconds = (stamps - np.datetime64(0, "ns")) / np.timedelta64(1, "s")
    lon = np.arange(nlon) / nlon  # fraction of a turn east of Greenwich
    fields = []
    for name in check_forcings(names):
        if name == "cos_zenith":
            if lat is None or len(lat) != nlat:
                raise DataError(f"cos_zenith needs the {nlat} latitudes of the grid")
            fields.append(cos_zenith(stamps, lat, np.arange(nlon) * (360.0 / nlon)))
            continue
        # (B, 1, 1) or (B, 1, nlon): sine and cosine on the distinct values only, then broadcast
        if name == "year_progress":
            turns = np.mod(seconds / _YEAR_SECONDS, 1.0)[:, None, None]
        else:
            turns = np.mod(seconds[:, None] / _DAY_SECONDS + lon[None, :], 1.0)[:, None, :]
        fields += [np.broadcast_to(f(2.0 * np.pi * turns), (stamps.size, nlat, nlon)) for f in (np.sin, np.cos)]
    if not fields:
        return torch.zeros(stamps.size, 0, nlat, nlon)
    return torch.from_numpy(np.stack(fields, axis=1).astype(np.float32))
