"""String options of the scoring functions, defined once.

Every string option is a :data:`typing.Literal` alias; public functions check it on entry
with :func:`hens.forecast.types.check_choice`, which raises
:class:`hens.forecast.errors.ConfigError` naming the allowed values.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal, TypeVar

import xarray as xr

#: which tail of the distribution (SOT, sigma diagnostics)
Tail = Literal["upper", "lower"]
#: tails counted by the sigma diagnostics
SigmaTail = Literal["upper", "lower", "both"]
#: threshold events: ``y > threshold`` ("above") or ``y < threshold`` ("below")
EventDirection = Literal["above", "below"]
#: spectrum over total wavenumber l or zonal wavenumber m
SpectrumKind = Literal["total", "zonal"]
#: how the best member's errors are aggregated
BestMemberMetric = Literal["mae", "rmse"]
#: what scoring a store does with members whose ``completed`` flag is not set
Incomplete = Literal["raise", "drop"]

#: dims to reduce: a name, several names, or None (reduce only the member dim)
Dims = Hashable | Sequence[Hashable] | None

#: a DataArray or a Dataset; functions return the same kind they were given
XrObj = TypeVar("XrObj", xr.DataArray, xr.Dataset)
