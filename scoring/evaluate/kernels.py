"""Compiled row loops of :func:`hens.scoring.evaluate.fused.cell_statistics` (numba, no GIL).

At HENS size a scoring piece spends its time in passes over every member of every cell; as
numpy expressions each statistic is a pass of its own through a float64 temporary, with the
GIL taken between them, so two dask threads hardly run at once. These loops make one pass per
row for the sums and run without the GIL. They keep the numpy expressions' estimators and
NaN rules (tests/scoring/evaluate/test_partials.py): float64 sums of ``d = x - y`` in member
order, NaN propagating minima and maxima, counts by binary search in the sorted row (NaN
last, never counted). Sums are sequential (no fast-math reassociation), so a row's result
does not depend on the instruction set the loops were compiled for.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def sorted_row_sums(block, y, offset, crps, fair, mean, var):
    """CRPS (standard and fair), mean and unbiased variance of each sorted row of ``block``
    about its truth ``y[r]`` (float64, ``d = x - y`` exact), written at ``offset + r``."""
    rows, m = block.shape
    inv = 1.0 / m
    for r in range(rows):
        yr = np.float64(y[r])
        total = 0.0
        absolute = 0.0
        half_pairs = 0.0  # sum_i (2i - M - 1) d_(i)
        for i in range(m):
            d = np.float64(block[r, i]) - yr
            total += d
            absolute += abs(d)
            half_pairs += (2.0 * (i + 1) - (m + 1)) * d
        dbar = total * inv
        squares = 0.0
        for i in range(m):
            e = (np.float64(block[r, i]) - yr) - dbar
            squares += e * e
        crps[offset + r] = absolute * inv - half_pairs / (m * m)
        mean[offset + r] = dbar + yr
        if m > 1:
            fair[offset + r] = absolute * inv - half_pairs / (m * (m - 1.0))
            var[offset + r] = squares / (m - 1.0)
        else:
            fair[offset + r] = math.nan
            var[offset + r] = math.nan


@numba.njit(nogil=True, cache=True)
def count_le(block, targets, out):
    """``out[r, k] = #{x <= targets[r, k]}`` in each sorted row of ``block`` (NaN last: a NaN
    member is never counted); one binary search per target."""
    rows, m = block.shape
    for r in range(rows):
        for k in range(targets.shape[1]):
            t = targets[r, k]
            lo, hi = 0, m
            while lo < hi:
                mid = (lo + hi) >> 1
                if block[r, mid] <= t:
                    lo = mid + 1
                else:
                    hi = mid
            out[r, k] = lo
