"""Continuous ranked probability score of an ensemble, O(M log M) by sorting.

For members x_1..x_M and verification y (one cell),

    skill   = (1/M) sum_i |x_i - y|
    S / 2   = sum_{i<j} |x_i - x_j| = sum_i (2i - M - 1) x_(i)       (x_(i) sorted, i = 1..M)
    CRPS    = skill - S / (2 M^2)                                     (standard)
    fCRPS   = skill - S / (2 M (M - 1))                               (fair, Ferro 2014)

The standard estimator is the CRPS of the empirical distribution of the members (as
properscoring and scoringrules' ``"qd"``); it is biased high for a finite ensemble and
rewards ensembles that are too narrow. The fair estimator is unbiased for the CRPS of the
distribution the members are drawn from (WeatherBench2's ``CRPS``, scoringrules' ``"fair"``/
``"pwm"``); it can be negative for a single case and needs M >= 2.

Because sum_i (2i - M - 1) = 0, the spread term is computed on d_i = x_(i) - y, which keeps
float32 accurate for fields with a large mean (geopotential). The kernel sorts a copy of
one block of cells at a time (about 1 MiB), so memory beyond the input is bounded.
"""

from __future__ import annotations

from collections.abc import Hashable

import numba
import numpy as np
import xarray as xr

from hens.scoring.attributes import finish_score, units_of
from hens.scoring.inputs import align_truth, ensemble_size, member_chunks
from hens.scoring.types import Dims, XrObj
from hens.scoring.weights import weighted_mean

#: bytes of sorted members held per block by the kernel
_BLOCK_BYTES = 1 << 20
#: members per tile when transposing a member-first block
_TILE = 32


@numba.njit(nogil=True, cache=True)
def _transpose_rows(src, out):
    """``out[c, i] = src[c, i]`` for a ``src`` whose member axis ``i`` is strided: 16 members
    (a cache line of float32 ``out``) at a time, each read along its contiguous cells."""
    rows, m = out.shape
    for i0 in range(0, m, 16):
        i1 = min(i0 + 16, m)
        for c in range(rows):
            for i in range(i0, i1):
                out[c, i] = src[c, i]


def copy_rows(src: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Copy ``src`` (cells, M) into C-ordered ``out``; members-first views are transposed.

    A view whose member axis is strided (a member-first Zarr chunk seen through xarray, a
    scoring piece) is a transposition: native float members go through a compiled loop (~2x
    faster than numpy's column tiles at 7,424 members), any other dtype in narrow column tiles
    that keep reads and writes in cache.
    """
    if src.strides[-1] == src.itemsize or src.shape[-1] <= _TILE:
        np.copyto(out, src, casting="same_kind")
        return out
    if src.dtype.kind == "f" and src.dtype.itemsize in (4, 8) and src.dtype.isnative:
        _transpose_rows(src, out)
        return out
    for i in range(0, src.shape[-1], _TILE):
        np.copyto(out[:, i : i + _TILE], src[:, i : i + _TILE], casting="same_kind")
    return out


def crps_kernel(x: np.ndarray, y: np.ndarray, *, fair: bool = False) -> np.ndarray:
    """Pointwise ensemble CRPS of numpy arrays, members on the last axis of ``x``.

    Parameters
    ----------
    x
        Members, shape ``(..., M)``; any strides (a transposed view is not copied whole).
    y
        Verification, shape broadcastable to ``x.shape[:-1]``.
    fair
        Fair (unbiased) estimator instead of the standard one.

    Returns
    -------
    numpy.ndarray
        Shape ``x.shape[:-1]``, dtype float32 for float32 input, otherwise float64 (the
        promotion of the inputs). A NaN member or a NaN ``y`` gives NaN.
    """
    m = x.shape[-1]
    dtype = np.result_type(x.dtype, y.dtype, np.float32)
    lead = np.broadcast_shapes(x.shape[:-1], np.shape(y))
    x2 = np.broadcast_to(x, (*lead, m)).reshape(-1, m)
    y2 = np.broadcast_to(np.asarray(y, dtype=dtype), lead).reshape(-1)
    ranks = np.arange(1, m + 1, dtype=dtype)
    coef = 2.0 * ranks - (m + 1)
    spread_norm = float(m) * (m - 1 if fair else m)
    out = np.empty(y2.shape[0], dtype=dtype)
    step = max(1, _BLOCK_BYTES // (m * np.dtype(dtype).itemsize))
    buffer = np.empty((min(step, x2.shape[0]), m), dtype=dtype)
    for start in range(0, x2.shape[0], step):
        stop = min(start + step, x2.shape[0])
        block = copy_rows(x2[start:stop], buffer[: stop - start])
        block.sort(axis=-1)  # NaNs go last and make both terms NaN
        block -= y2[start:stop, None]
        half_pairs = block @ coef  # sum_i (2i - M - 1) (x_(i) - y) = S / 2
        np.abs(block, out=block)
        skill = block.sum(axis=-1)
        out[start:stop] = skill / m - half_pairs / spread_norm
    return out.reshape(lead)


def crps(
    forecast: XrObj,
    truth: XrObj | xr.DataArray,
    member_dim: Hashable = "member",
    *,
    fair: bool = False,
    weights: xr.DataArray | None = None,
    dim: Dims = None,
    skipna: bool = False,
) -> XrObj:
    """Ensemble CRPS, pointwise or area-weighted over ``dim``.

    Parameters
    ----------
    forecast
        Ensemble with a ``member_dim`` (DataArray or Dataset; numpy or dask). Other dims
        (``init_time``, ``lead_time``, ``channel``, ``lat``, ``lon``...) broadcast against
        ``truth``; shared coordinates must match exactly.
    truth
        Verification without ``member_dim``.
    member_dim
        Name of the ensemble dim.
    fair
        ``False``: standard estimator (empirical CDF; properscoring). ``True``: fair
        estimator, unbiased for the underlying distribution (WeatherBench2); needs M >= 2.
    weights
        Explicit weights for the mean over ``dim`` (default: the grid's quadrature weights
        when ``lat`` is reduced).
    dim
        Dims to average over after scoring each cell; ``None`` keeps every non-member dim.
    skipna
        For the mean over ``dim`` only, see :func:`hens.scoring.weighted_mean`.

    Returns
    -------
    Same type as ``forecast``: CRPS in the units of the variable, attributes ``estimator``,
    ``ensemble_size``, ``weights``.

    Notes
    -----
    NaN: a NaN member or NaN truth makes that cell's CRPS NaN (unlike properscoring, which
    scores the remaining members); drop members explicitly with ``forecast.dropna(member_dim)``.
    Cost O(M log M) per cell; dask inputs stay lazy, one chunk per task, members in one chunk.

    References
    ----------
    Gneiting & Raftery (2007), JASA 102, 359. Ferro (2014), QJRMS 140, 1917.
    Zamo & Naveau (2018), Math. Geosci. 50, 209.
    """
    m = ensemble_size(forecast, member_dim, minimum=2 if fair else 1, dim=dim)
    if isinstance(forecast, xr.Dataset):  # variable by variable: each keeps its own dtype
        kw = {"fair": fair, "weights": weights, "dim": dim, "skipna": skipna}
        scores = {
            name: crps(
                var, truth[name] if isinstance(truth, xr.Dataset) else truth, member_dim, **kw
            )
            for name, var in forecast.data_vars.items()
        }
        first = next(iter(scores.values()))
        return xr.Dataset(scores, attrs={k: v for k, v in first.attrs.items() if k != "units"})
    forecast, truth = align_truth(member_chunks(forecast, member_dim), truth, member_dim)
    dtype = np.result_type(forecast.dtype, np.float32)
    point = xr.apply_ufunc(
        crps_kernel,
        forecast,
        truth,
        input_core_dims=[[member_dim], []],
        kwargs={"fair": fair},
        dask="parallelized",
        output_dtypes=[dtype],
    )
    out = weighted_mean(point, dim, weights=weights, skipna=skipna)
    return finish_score(
        out,
        {
            "long_name": "fair CRPS" if fair else "CRPS",
            "units": units_of(truth) or units_of(forecast),
            "estimator": "fair (Ferro 2014)" if fair else "standard (empirical CDF)",
        },
        ensemble_size=m,
        name="crps",
    )
