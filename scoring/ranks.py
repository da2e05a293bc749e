"""Rank of the truth among the members and the rank histogram (Talagrand diagram).

rank = #{m : x_m < y} in 0..M, M + 1 bins; ties between y and members are broken uniformly
at random, so discrete variables (rounded precipitation, categories) still give a flat
histogram when calibrated (WeatherBench2 jitters all values instead). Flat = calibrated,
U = under-dispersive, dome = over-dispersive, slope = bias. Sampling noise of a bin's
relative frequency over N independent cases ~ sqrt(M / N); neighbouring cells are
correlated, so judge flatness with effective sample sizes, not the cell count.

NaN: a case with a NaN member or NaN truth has rank -1 and is not counted. ``dim=None``
gives one-case histograms per cell; pass ``dim=[...]`` to pool cases (area-weighted).
References: Hamill (2001), MWR 129, 550; Talagrand et al. (1997).
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable

import numpy as np
import xarray as xr

from hens.scoring.histogram import weighted_histogram
from hens.scoring.attributes import finish
from hens.scoring.inputs import checked_inputs, ensemble_size, reduce_dims
from hens.scoring.types import Dims
from hens.scoring.weights import case_weights, weights_label


def _rank_kernel(x: np.ndarray, y: np.ndarray, *, seed: int) -> np.ndarray:
    y = np.asarray(y)[..., None]
    below = (x < y).sum(axis=-1)
    ties = (x == y).sum(axis=-1)
    if ties.any():  # spread tied members uniformly over their rank positions
        key = zlib.crc32(np.ascontiguousarray(y, dtype=np.float64).tobytes())
        below = below + np.random.default_rng([seed, key]).integers(0, ties + 1)
    invalid = np.isnan(y[..., 0]) | np.isnan(x).any(axis=-1)
    return np.where(invalid, -1, below).astype(np.int32)


def ranks(
    forecast: xr.DataArray, truth: xr.DataArray, member_dim: Hashable = "member", *, seed: int = 0
) -> xr.DataArray:
    """Rank of the truth among the members, #{m : x_m < y} in 0..M (int32, -1 if NaN).

    Ties between y and members are broken uniformly at random (reproducibly: the stream
    depends on ``seed`` and the chunk's truth values), so discrete variables still give a
    flat histogram when calibrated. Example: members [1, 2, 4], y = 3 -> 2.
    """
    _, forecast, truth = checked_inputs(forecast, truth, member_dim)
    return xr.apply_ufunc(
        _rank_kernel,
        forecast,
        truth,
        input_core_dims=[[member_dim], []],
        kwargs={"seed": seed},
        dask="parallelized",
        output_dtypes=[np.int32],
    ).rename("rank")


def rank_histogram(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    member_dim: Hashable = "member",
    *,
    weights: xr.DataArray | None = None,
    dim: Dims = None,
    seed: int = 0,
) -> xr.DataArray:
    """Weighted counts of the truth's rank (dim ``rank``, M + 1 bins) pooled over ``dim``.

    Flat for a calibrated ensemble (sampling noise of a bin's relative frequency over N
    independent cases ~ sqrt(M / N)); U-shaped when under-dispersive, dome-shaped when
    over-dispersive, sloped when biased. Divide by the sum over ``rank`` for frequencies.
    Cases with NaN are not counted. References: Hamill (2001), MWR 129, 550.
    """
    m = ensemble_size(forecast, member_dim, dim=dim)
    dims = reduce_dims(forecast, dim, member_dim)
    r = ranks(forecast, truth, member_dim, seed=seed)
    w = case_weights(r, dims, weights)
    hist = weighted_histogram(r, m + 1, dims, weights=w, new_dim="rank")
    hist = hist.assign_coords(rank=np.arange(m + 1))
    return finish(
        hist,
        {
            "long_name": "rank histogram (weighted case counts)",
            "units": "1",
            "ensemble_size": m,
            "weights": weights_label(w),
        },
        name="rank_histogram",
    )
