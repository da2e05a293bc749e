"""Area weights and the weighted mean that every hens score uses to aggregate.

Weights are the latitude quadrature weights of the grid (torch-harmonics: Gauss for
``legendre-gauss``, Clenshaw-Curtis for ``equiangular``; cell areas for
``equiangular-nopoles``), found from the coordinates with
:meth:`hens.forecast.grids.Grid.detect` and normalised to mean 1 over latitude rows
(WeatherBench2's convention). Longitudes are equally spaced, so each cell of a row has the
row's weight, and the weighted mean over ``(lat, lon)`` is

    mean_w(f) = sum_j w_j f_j / sum_j w_j,

the quadrature approximation of (1 / 4 pi) * integral f dOmega. Dims other than ``lat``
(``lon``, ``init_time``, ``lead_time``...) get equal weights. The choice is recorded in the
result's ``weights`` attribute.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from hens.forecast.errors import DataError
from hens.forecast.grids import Grid
from hens.scoring.inputs import reduce_dims
from hens.scoring.types import Dims, XrObj

LAT, LON = "lat", "lon"


def area_weights(lat: xr.DataArray, lon: xr.DataArray | None = None) -> xr.DataArray:
    """Latitude weights of the grid with these coordinates, over ``lat``, mean 1.

    Parameters
    ----------
    lat
        Latitude coordinate in degrees north, either order (weights follow the values).
    lon
        Longitude coordinate in degrees east; only its size matters to identify the grid.
        Without it (zonal means) the latitudes alone identify the grid kind.

    Returns
    -------
    xarray.DataArray
        Weights over ``lat`` with the same coordinate values and order as ``lat``, mean 1,
        attribute ``weights`` naming the quadrature and grid.

    Raises
    ------
    hens.forecast.errors.GridMismatch
        If the latitudes are not those of a registered grid (pass ``weights=`` then).
    """
    # detect on the stored dtype: float32 coordinates (hens stores) get float32 tolerances
    lat_values = np.asarray(lat.values)
    lon_values = np.asarray(lon.values) if lon is not None else np.arange(4) * 90.0
    grid = Grid.detect(lat_values, lon_values, what="scored data")
    lat_values = lat_values.astype(np.float64)
    north_first = grid.area_weights  # descending latitude
    order = np.argsort(-lat_values, kind="stable")
    values = np.empty_like(north_first)
    values[order] = north_first
    name = f"{grid.kind} quadrature, {grid.nlat} latitudes"
    return xr.DataArray(
        values, dims=(lat.dims[0],), coords={lat.dims[0]: lat.values}, attrs={"weights": name}
    )


def resolve_weights(
    obj: xr.DataArray | xr.Dataset, dims: list[Hashable], weights: xr.DataArray | None
) -> xr.DataArray | None:
    """The weights to use when reducing ``obj`` over ``dims`` (None: equal weights).

    Explicit ``weights`` must be non-negative and finite, span only dims of ``obj`` and have
    exactly its coordinates there; detected area weights are used when ``lat`` is reduced.
    """
    if weights is None:
        if LAT not in dims:
            return None
        return area_weights(obj[LAT], obj[LON] if LON in obj.dims else None)
    if not isinstance(weights, xr.DataArray):
        raise DataError(
            f"weights must be an xarray.DataArray with named dims, got {type(weights).__name__}"
        )
    extra = [d for d in weights.dims if d not in obj.dims]
    if extra:
        raise DataError(
            f"weights have dims {', '.join(map(repr, extra))} that the data lacks; "
            f"give weights over dims of the data (e.g. over 'lat')"
        )
    if not any(d in dims for d in weights.dims):
        return None
    try:
        xr.align(obj, weights, join="exact")
    except ValueError as err:
        raise DataError(
            f"weights coordinates differ from the data's ({err}); build them on the data's "
            f"coordinates, e.g. weights.reindex_like(data)"
        ) from err
    if not weights.chunks:
        values = np.asarray(weights.values)
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise DataError(
                "weights must be finite and >= 0; replace missing ones with weights.fillna(0)"
            )
    out = weights.copy(deep=False)
    out.attrs = {"weights": weights.attrs.get("weights", "explicit")}
    return out


def weighted_mean(
    obj: XrObj,
    dim: Dims = None,
    *,
    weights: xr.DataArray | None = None,
    skipna: bool = False,
) -> XrObj:
    """Area-weighted mean of ``obj`` over ``dim`` (``None``: returned unchanged).

    Parameters
    ----------
    obj
        Scores or fields with named dims.
    dim
        Dims to average over. When ``lat`` is among them and ``weights`` is None, the grid's
        quadrature weights are used (see the module docstring).
    weights
        Explicit non-negative weights over some dims of ``obj`` (e.g. ``lat``, or
        ``lat, lon`` for a land mask). Only their relative size matters.
    skipna
        NaN handling. ``False`` (default): any NaN in the averaged cells gives NaN, so
        missing data is never hidden. ``True``: NaN cells are left out and the weights of the
        remaining cells renormalised (this changes the denominator: a score over a masked
        region is the mean over the valid cells only).

    Returns
    -------
    Same type as ``obj``, without ``dim``, attribute ``weights`` recording the weighting.
    """
    dims = reduce_dims(obj, dim)
    if not dims:
        return obj
    w = resolve_weights(obj, dims, weights)
    if w is None:
        out = obj.mean(dims, skipna=skipna)
        label = "equal"
    else:
        out = obj.weighted(w).mean(dims, skipna=skipna)
        label = str(w.attrs["weights"])
    out.attrs = {**obj.attrs, "weights": label}
    return out


def case_weights(
    obj: xr.DataArray, dims: list[Hashable], weights: xr.DataArray | None
) -> xr.DataArray | None:
    """Weights of the cases pooled over ``dims``, normalised to mean 1 over those dims.

    With equal weights (None returned) the weighted count of a histogram bin is the plain
    number of cases; with area weights it is the number of "equal-area cases".
    """
    w = resolve_weights(obj, dims, weights)
    if w is None:
        return None
    over = [d for d in w.dims if d in dims]
    out = w / w.mean(over)
    out.attrs = w.attrs
    return out


def weights_label(weights: xr.DataArray | None) -> str:
    """The ``weights`` attribute recording how cases were weighted."""
    return "equal" if weights is None else str(weights.attrs.get("weights", "explicit"))
