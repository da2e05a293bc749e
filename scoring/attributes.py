"""The attributes every scoring result carries (CF ``units``, ``long_name``, the ensemble size,
how it was averaged), attached without loading dask-backed data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import xarray as xr

from hens.scoring.types import XrObj


def finish(out: XrObj, attrs: Mapping[str, Any], *, name: str | None = None) -> XrObj:
    """Attach ``attrs`` (and a name) to a result, on the Dataset and each of its variables."""
    out = out.copy(deep=False)
    clean = {k: v for k, v in attrs.items() if v is not None}
    if isinstance(out, xr.Dataset):
        out.attrs = {**clean}
        for var in out.data_vars.values():
            var.attrs = {**var.attrs, **clean}
    else:
        out.attrs = {**out.attrs, **clean}
        if name is not None:
            out.name = name
    return out


def finish_score(out: XrObj, attrs: Mapping[str, Any], *, ensemble_size: int, name: str) -> XrObj:
    """:func:`finish` a score averaged by :func:`hens.scoring.weights.weighted_mean`.

    Parameters
    ----------
    out
        The score; the ``weights`` attribute that the mean set is kept, and where nothing
        was averaged it is ``"none (pointwise)"``.
    attrs
        The score's own attributes (``long_name``, ``units``...).
    ensemble_size
        ``M``, recorded as the ``ensemble_size`` attribute.
    name
        Name of the result.
    """
    weights = out.attrs.get("weights", "none (pointwise)")
    return finish(out, {**attrs, "ensemble_size": ensemble_size, "weights": weights}, name=name)


def units_of(obj: Any) -> str | None:
    """The ``units`` attribute of a DataArray, if any."""
    return obj.attrs.get("units") if isinstance(obj, xr.DataArray) else None
