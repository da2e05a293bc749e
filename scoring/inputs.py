"""Checks shared by every scoring function: the member dim, the truth, the dims to reduce,
and the dask chunks a metric's kernel sees (the attributes results carry:
:mod:`hens.scoring.attributes`).

All checks look at dims and coordinates only, so they never load dask-backed data.
Problems with the data raise :class:`hens.forecast.errors.DataError` naming the dim and the fix.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from hens.forecast.errors import DataError
from hens.scoring.types import Dims, XrObj


def ensemble_size(
    forecast: xr.DataArray | xr.Dataset, member_dim: Hashable, *, minimum: int = 1, dim: Dims = None
) -> int:
    """Number of members ``M`` (the size of ``member_dim``); raise unless ``M >= minimum``.

    Also checks on entry that ``dim`` names dims of the forecast other than the member dim.
    """
    if member_dim not in forecast.dims:
        raise DataError(
            f"forecast has no member dim {member_dim!r} "
            f"(dims: {', '.join(map(str, forecast.dims))}); "
            f"pass member_dim=... naming the ensemble dim"
        )
    size = int(forecast.sizes[member_dim])
    if size < minimum:
        raise DataError(f"this score needs at least {minimum} members; {member_dim!r} has {size}")
    reduce_dims(forecast, dim, member_dim)
    return size


#: largest dask chunk of all members that :func:`member_chunks` builds
MEMBER_CHUNK_BYTES = 256 << 20


def member_chunks(forecast: XrObj, member_dim: Hashable, *, max_bytes: int = MEMBER_CHUNK_BYTES) -> XrObj:
    """Put all members of a dask-backed forecast in one chunk, within ``max_bytes`` per chunk.

    Other dims keep their chunks where the all-member chunk fits; otherwise ``lat`` (else the
    largest other dim) is halved until it does (a whole field of 7,424 members at 0.25 degrees would be
    30 GB: it becomes latitude bands). Raises :class:`DataError` if one cell of all members
    exceeds ``max_bytes``.
    """
    if not forecast.chunks or member_dim not in forecast.dims:
        return forecast
    chunks = (
        forecast.chunksizes
        if isinstance(forecast, xr.Dataset)
        else dict(zip(forecast.dims, forecast.chunks, strict=True))
    )
    sizes = {d: max(c) for d, c in chunks.items()}
    sizes[member_dim] = int(forecast.sizes[member_dim])
    items = [v.dtype.itemsize for v in (forecast.data_vars.values() if isinstance(forecast, xr.Dataset) else [forecast])]

    def nbytes() -> int:
        return int(np.prod(list(sizes.values()))) * max(items)

    if len(chunks[member_dim]) == 1 and nbytes() <= max_bytes:
        return forecast
    while nbytes() > max_bytes:
        free = [d for d in sizes if d != member_dim and sizes[d] > 1]
        if not free:
            raise DataError(
                f"one cell of all {sizes[member_dim]} members is {nbytes()} bytes, over the "
                f"max_bytes={max_bytes} budget of a chunk; raise max_bytes"
            )
        d = "lat" if "lat" in free else max(free, key=lambda k: sizes[k])  # bands, as stored
        sizes[d] = -(-sizes[d] // 2)
    return forecast.chunk(sizes)


def core_chunks(obj: XrObj, dims: tuple[Hashable, ...]) -> XrObj:
    """Put each of ``dims`` of a dask-backed object in a single chunk."""
    if obj.chunks:
        return obj.chunk({d: -1 for d in dims if d in obj.dims})
    return obj


def align_truth(forecast: XrObj, truth: Any, member_dim: Hashable) -> tuple[XrObj, Any]:
    """Check that ``truth`` has no member dim and the same coordinates on shared dims.

    Coordinates must match exactly (``join="exact"``): a truth on another grid or other
    times raises :class:`DataError` instead of being silently intersected.
    """
    if not isinstance(truth, xr.DataArray | xr.Dataset):
        return forecast, truth
    if member_dim in truth.dims:
        raise DataError(
            f"truth has the member dim {member_dim!r}; select one verification field per case "
            f"(e.g. truth.isel({member_dim}=0)) or pass the right member_dim"
        )
    try:
        forecast, truth = xr.align(forecast, truth, join="exact")
    except ValueError as err:
        raise DataError(
            f"forecast and truth coordinates differ ({err}); select matching times/levels "
            f"first, e.g. truth.sel(time=forecast.valid_time)"
        ) from err
    return forecast, truth


def checked_members(
    forecast: XrObj, member_dim: Hashable, *, minimum: int = 1, dim: Dims = None
) -> tuple[int, XrObj]:
    """The checks an ensemble score starts with: :func:`ensemble_size` and :func:`member_chunks`.

    Returns
    -------
    The number of members ``M`` and the forecast with all members in one chunk.
    """
    size = ensemble_size(forecast, member_dim, minimum=minimum, dim=dim)
    return size, member_chunks(forecast, member_dim)


def checked_inputs(
    forecast: XrObj, truth: Any, member_dim: Hashable, *, minimum: int = 1, dim: Dims = None
) -> tuple[int, XrObj, Any]:
    """:func:`checked_members`, then :func:`align_truth` of ``truth`` (or a threshold, climate).

    Returns
    -------
    ``M``, the forecast with all members in one chunk, and the truth aligned with it.
    """
    size, forecast = checked_members(forecast, member_dim, minimum=minimum, dim=dim)
    forecast, truth = align_truth(forecast, truth, member_dim)
    return size, forecast, truth


def reduce_dims(
    obj: xr.DataArray | xr.Dataset, dim: Dims, member_dim: Hashable | None = None
) -> list[Hashable]:
    """``dim`` as a list of dims of ``obj``; ``None`` gives ``[]`` (reduce nothing more)."""
    if dim is None:
        return []
    dims = [dim] if isinstance(dim, str) or not isinstance(dim, list | tuple) else list(dim)
    missing = [d for d in dims if d not in obj.dims]
    if missing:
        raise DataError(
            f"cannot reduce over {', '.join(map(repr, missing))}: not a dim of the data "
            f"(dims: {', '.join(map(str, obj.dims))})"
        )
    if member_dim is not None and member_dim in dims:
        raise DataError(
            f"dim must not contain the member dim {member_dim!r}: members are always reduced"
        )
    return dims
