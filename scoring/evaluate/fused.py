"""One sort per cell: every member statistic of the scorecard from the sorted members.

:func:`cell_statistics` copies a block of cells (about 1 MiB of members), sorts each cell's
members once and derives, per cell:

* standard and fair CRPS (sum_i (2i - M - 1) x_(i) on the sorted members, :mod:`.crps`);
* ensemble mean and unbiased variance (float64), min and max (outliers);
* the rank of the truth, #{x_m < y}, ties broken uniformly at random exactly as
  :func:`hens.scoring.ranks.ranks` does (same stream for the same chunk);
* counts #{x_m <= v} for the climate quantiles (EFI's F_f(p_k)) and the thresholds
  (exceedance probabilities of Brier, reliability and ROC), by one binary search per value
  on the sorted block;
* forecast quantiles (numpy "linear") at 0.1 and 0.9 (SOT), read from the sorted members;
* sigma diagnostics: largest |z_m| and the truth's |y - xbar| / s.

Counts are exact comparisons of the float32 members with float64 values: a float32 x
satisfies x <= v exactly when x <= v rounded down to float32, so each row's sorted members are
searched for float32 targets (one binary search per value).
NaN: a NaN member or truth makes the cell's statistics NaN (rank -1), as the public
functions do. Cost O(M log M) per cell; memory one block beyond the input. The passes over
every member of a block are the compiled loops of :mod:`hens.scoring.evaluate.kernels`.
"""

from __future__ import annotations

import zlib

import numpy as np

from hens.scoring.crps import copy_rows
from hens.scoring.evaluate import kernels

#: bytes of members copied and sorted per block
BLOCK_BYTES = 1 << 20
#: forecast quantile levels read from the sorted members (SOT lower, upper)
QUANTILE_LEVELS = (0.1, 0.9)


def _round_down_f32(v: np.ndarray) -> np.ndarray:
    """The largest float32 <= v (float64 in); NaN stays NaN."""
    v32 = v.astype(np.float32)
    with np.errstate(invalid="ignore"):
        up = v32.astype(np.float64) > v
    return np.where(up, np.nextafter(v32, np.float32(-np.inf)), v32)


def _targets(v: np.ndarray, *, strict: bool) -> np.ndarray:
    """float32 targets t of float64 values: #{x <= t} = #{x <= v}, or #{x < v} if strict
    (NaN values: 0, their counts are masked by the caller)."""
    v = np.asarray(v, dtype=np.float64)
    v32 = _round_down_f32(v)
    if strict:  # x < v  <=>  x <= the largest float32 below v
        exact = v32.astype(np.float64) == v
        v32 = np.where(exact, np.nextafter(v32, np.float32(-np.inf)), v32)
    return np.nan_to_num(v32.astype(np.float32), nan=0.0)


def sorted_quantiles(xs: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    """numpy "linear" quantiles of sorted rows ``(rows, M)`` -> ``(rows, L)`` float64.

    Same interpolation and rounding as ``np.quantile(..., method="linear")`` (its lerp,
    with the form that is exact at t = 1 for t >= 0.5).
    """
    m = xs.shape[-1]
    out = np.empty((xs.shape[0], len(levels)))
    for j, level in enumerate(levels):
        h = (m - 1) * level
        lo = int(np.floor(h))
        hi = min(lo + 1, m - 1)
        t = h - lo
        a, b = xs[:, lo].astype(np.float64), xs[:, hi].astype(np.float64)
        diff = b - a
        out[:, j] = b - diff * (1 - t) if t >= 0.5 else a + diff * t
    return out


def _over_unit(func: np.ufunc, grouped: np.ndarray) -> np.ndarray:
    """``func`` (minimum/maximum, NaN propagating) over the last, short axis of ``(rows, U, size)``
    as ``size - 1`` elementwise calls: numpy's reduction over an axis of 2 runs up to 15x slower."""
    out = grouped[..., 0].copy()
    for k in range(1, grouped.shape[-1]):
        func(out, grouped[..., k], out=out)
    return out


def _unit_extremes(x: np.ndarray, y: np.ndarray, units: np.ndarray, out: dict) -> None:
    """Per-unit min |x - y|, min and max of member-first ``x`` ``(M, cells)`` whose units are
    consecutive members: ``(U, size, cells)`` is a view, every operation runs along cells, and
    the units go in groups whose temporaries stay in cache (no multi-MB temporary per piece)."""
    grouped = x.reshape(*units.shape, x.shape[-1])
    step = max(1, BLOCK_BYTES // (4 * x.shape[-1]))
    scratch = np.empty((min(step, units.shape[0]), x.shape[-1]), dtype=np.result_type(x, y))
    for start in range(0, units.shape[0], step):
        g = grouped[start:start + step]
        error, lo, hi = (out[k][start:start + step] for k in ("unit_error", "unit_min", "unit_max"))
        work = scratch[: len(g)]
        with np.errstate(invalid="ignore"):
            np.abs(np.subtract(g[:, 0], y, out=work), out=work)
            error[:] = work
            lo[:] = hi[:] = g[:, 0]
            for k in range(1, units.shape[1]):
                np.abs(np.subtract(g[:, k], y, out=work), out=work)
                np.minimum(error, work, out=error)
                np.minimum(lo, g[:, k], out=lo)
                np.maximum(hi, g[:, k], out=hi)


def _ranks(below: np.ndarray, ties: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Break ties exactly as :func:`hens.scoring.ranks._rank_kernel` (stream keyed by y)."""
    if ties.any():
        key = zlib.crc32(np.ascontiguousarray(y, dtype=np.float64).tobytes())
        below = below + np.random.default_rng([seed, key]).integers(0, ties + 1)
    return below


def cell_statistics(
    x: np.ndarray,
    y: np.ndarray,
    *,
    climate: np.ndarray | None = None,
    thresholds: np.ndarray | None = None,
    units: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Per-cell statistics of an ensemble from one sort of its members.

    Parameters
    ----------
    x
        Members ``(cells, M)``, float32, any strides (a member-first view is copied in tiles).
    y
        Truth ``(cells,)``.
    climate
        Climate quantile values ``(cells, K)`` (float64, non-decreasing per cell) or None.
    thresholds
        Event thresholds ``(cells, T)`` (float64) or None.
    units
        Member positions of the (checkpoint, pair) units, ``(U, size)``, for per-unit minima
        of |x - y|, min and max (sub-ensembles), or None.
    seed
        Tie-breaking stream of the ranks (as :func:`hens.scoring.ranks.ranks`).

    Returns
    -------
    dict
        ``crps``, ``fair_crps``, ``mean``, ``var`` (ddof=1), ``min``, ``max``, ``max_sigma``
        (max_m |z_m|), ``truth_sigma`` (|y - xbar| / s) and ``rank`` (int64, -1 for NaN)
        over cells; ``quantiles`` ``(cells, 2)`` at :data:`QUANTILE_LEVELS`;
        ``climate_le`` ``(cells, K)``, ``above`` ``(cells, T)`` (#{x > threshold});
        ``unit_error``, ``unit_min``, ``unit_max`` ``(U, cells)``. Units of ``x`` (float64),
        NaN where a member or the truth is NaN.
    """
    n, m = x.shape
    y = np.asarray(y).reshape(n)
    y64 = y.astype(np.float64)
    out: dict[str, np.ndarray] = {
        k: np.empty(n) for k in ("crps", "fair_crps", "mean", "var", "min", "max")
    }
    out["quantiles"] = np.empty((n, len(QUANTILE_LEVELS)))
    below, ties = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    if climate is not None:
        out["climate_le"] = np.empty(climate.shape, dtype=np.int64)
    if thresholds is not None:
        out["above"] = np.empty(thresholds.shape, dtype=np.int64)
    if units is not None:
        for k in ("unit_error", "unit_min", "unit_max"):  # units first: draws gather whole rows
            out[k] = np.empty((units.shape[0], n), dtype=np.float32)  # float32 values: lossless
    # units of neighbouring members in member order (hens' layout: a +/- pair side by side) are
    # rows of the member-first input side by side: no gather, no transposition
    consecutive = units is not None and np.array_equal(units.ravel(), np.arange(m))
    if consecutive:
        _unit_extremes(x.T, y, units, out)
    step = max(1, BLOCK_BYTES // (4 * m))
    buffer = np.empty((min(step, n), m), dtype=np.float32)
    for start in range(0, n, step):
        sl = slice(start, min(start + step, n))
        block = copy_rows(x[sl], buffer[: sl.stop - start])
        if units is not None and not consecutive:  # member order matters here: before the sort
            grouped = block[:, units]  # (rows, U, size)
            with np.errstate(invalid="ignore"):
                out["unit_error"][:, sl] = _over_unit(np.minimum, np.abs(grouped - y[sl, None, None])).T
            out["unit_min"][:, sl] = _over_unit(np.minimum, grouped).T
            out["unit_max"][:, sl] = _over_unit(np.maximum, grouped).T
        block.sort(axis=-1)  # NaN last
        kernels.sorted_row_sums(block, y[sl], start, out["crps"], out["fair_crps"], out["mean"], out["var"])
        out["min"][sl], out["max"][sl] = block[:, 0], block[:, -1]
        out["quantiles"][sl] = sorted_quantiles(block, QUANTILE_LEVELS)
        yy = y64[sl, None]
        parts = [_targets(yy, strict=True), _targets(yy, strict=False)]
        if climate is not None:
            parts.append(_targets(climate[sl], strict=False))
        if thresholds is not None:
            parts.append(_targets(thresholds[sl], strict=False))
        targets = np.concatenate(parts, axis=1)
        counts = np.empty(targets.shape, dtype=np.int64)
        kernels.count_le(block, targets, counts)
        below[sl], ties[sl] = counts[:, 0], counts[:, 1] - counts[:, 0]
        k = 2
        if climate is not None:
            out["climate_le"][sl] = counts[:, k:k + climate.shape[1]]
            k += climate.shape[1]
        if thresholds is not None:
            out["above"][sl] = m - counts[:, k:]
    invalid = np.isnan(y64) | np.isnan(out["max"])
    ties[np.isnan(y64)] = 0  # (x == NaN) is never true: no ties to break there
    rank = _ranks(below, ties, y, seed)
    out["rank"] = np.where(invalid, -1, rank)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sqrt(out["var"])
        s = np.where(s > 0, s, np.nan)
        out["max_sigma"] = np.maximum(out["max"] - out["mean"], out["mean"] - out["min"]) / s
        out["truth_sigma"] = np.abs(y64 - out["mean"]) / s
    for k in ("crps", "fair_crps", "mean", "var", "quantiles"):
        out[k][invalid] = np.nan
    return out
