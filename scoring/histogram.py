"""Weighted counts of integer codes over some dims, chunk by chunk (rank histograms,
reliability bins, ROC tables).

A histogram with B bins of an array of codes is computed per dask chunk with
``np.bincount`` (memory O(chunk + B) per task) and the partial histograms are summed, so
its cost does not grow with B times the number of cases, unlike a one-hot comparison.
"""

from __future__ import annotations

from collections.abc import Hashable
from math import prod

import numpy as np
import xarray as xr


def _block_histogram(
    codes: np.ndarray, weights: np.ndarray | None, *, nbins: int, nkeep: int
) -> np.ndarray:
    """Histogram of one block whose first ``nkeep`` axes are kept and the rest reduced.

    Returns the block shape with the reduced axes set to 1 and a trailing ``nbins`` axis.
    """
    keep_shape = codes.shape[:nkeep]
    k, n = prod(keep_shape), prod(codes.shape[nkeep:])
    flat = codes.reshape(k, n)
    valid = flat >= 0
    index = (np.arange(k, dtype=np.int64)[:, None] * nbins + flat)[valid]
    w = None if weights is None else np.broadcast_to(weights, codes.shape).reshape(k, n)[valid]
    hist = np.bincount(index, weights=w, minlength=k * nbins).astype(np.float64)
    return hist.reshape(*keep_shape, *(1,) * (codes.ndim - nkeep), nbins)


def weighted_histogram(
    codes: xr.DataArray,
    nbins: int,
    dims: list[Hashable],
    *,
    weights: xr.DataArray | None = None,
    new_dim: str = "bin",
) -> xr.DataArray:
    """Weighted count of each code 0..nbins-1 over ``dims``; negative codes are skipped.

    Parameters
    ----------
    codes
        Integer DataArray (numpy or dask); -1 marks a case that is not counted.
    nbins
        Number of bins; codes must be < nbins.
    dims
        Dims pooled into each histogram (possibly empty: one histogram per cell).
    weights
        Case weights broadcastable to ``codes`` (None: each case counts 1).
    new_dim
        Name of the output bin dim (appended last).

    Returns
    -------
    xarray.DataArray
        float64, the non-pooled dims of ``codes`` followed by ``new_dim``.
    """
    keep = [d for d in codes.dims if d not in dims]
    codes = codes.transpose(*keep, *dims)
    if weights is not None:
        weights = weights.broadcast_like(codes).transpose(*codes.dims)
    nkeep = len(keep)
    if codes.chunks is None:
        hist = _block_histogram(
            codes.values,
            None if weights is None else np.asarray(weights.values),
            nbins=nbins,
            nkeep=nkeep,
        )
    else:
        import dask.array as dsa

        data = codes.data
        args: list = [data]
        if weights is not None:
            args.append(dsa.asarray(weights.data).rechunk(data.chunks))
        chunks = (
            *data.chunks[:nkeep],
            *((1,) * len(c) for c in data.chunks[nkeep:]),
            (nbins,),
        )

        def block(c: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
            return _block_histogram(c, w, nbins=nbins, nkeep=nkeep)

        hist = dsa.map_blocks(block, *args, chunks=chunks, new_axis=data.ndim, dtype=np.float64)
    hist = hist.sum(axis=tuple(range(nkeep, nkeep + len(dims))))
    coords = {d: codes[d] for d in keep if d in codes.coords}
    return xr.DataArray(hist, dims=(*keep, new_dim), coords=coords)
