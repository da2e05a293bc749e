"""Compiled loops of the scorer (numba, without the GIL): the passes over every member.

At HENS size a scoring piece spends its time in passes over every member of every cell; as
numpy expressions each statistic is a pass of its own through a multi-MB float64 temporary,
with the GIL taken between them, so two dask threads hardly ran at once (docs/store.md, "The
12 minutes of Scoring at scale"). These loops make one pass per row and release the GIL. They
keep the numpy expressions' estimators (tests/scoring/evaluate/test_partials.py): float64 sums
of ``d = x - y``, counts by binary search in the sorted row (NaN last, never counted). Every
sum runs in a fixed order without fast-math reassociation, so a result does not depend on the
instruction set the loops were compiled for (tests/scoring/evaluate/test_kernels.py)."""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def sorted_row_sums(block, y, offset, crps, fair, mean, var):
    """CRPS (standard and fair), mean and unbiased variance of each sorted row of ``block``
    about its truth ``y[r]`` (float64, ``d = x - y`` exact), written at ``offset + r``.

    Each sum is four interleaved partial sums (member ``i`` in partial ``i % 4``, added in that
    order at the end): one float64 sum would wait on each addition's latency. The order is fixed,
    so the bits do not depend on the machine."""
    rows, m = block.shape
    inv = 1.0 / m
    whole = m - m % 4
    for r in range(rows):
        yr = np.float64(y[r])
        t0 = t1 = t2 = t3 = 0.0  # sum d
        a0 = a1 = a2 = a3 = 0.0  # sum |d|
        h0 = h1 = h2 = h3 = 0.0  # sum (2i - M - 1) d_(i), i = 1..M
        for i in range(0, whole, 4):
            d0 = np.float64(block[r, i]) - yr
            d1 = np.float64(block[r, i + 1]) - yr
            d2 = np.float64(block[r, i + 2]) - yr
            d3 = np.float64(block[r, i + 3]) - yr
            t0 += d0
            t1 += d1
            t2 += d2
            t3 += d3
            a0 += abs(d0)
            a1 += abs(d1)
            a2 += abs(d2)
            a3 += abs(d3)
            c = 2.0 * i + 1.0 - m  # 2 (i + 1) - M - 1
            h0 += c * d0
            h1 += (c + 2.0) * d1
            h2 += (c + 4.0) * d2
            h3 += (c + 6.0) * d3
        for i in range(whole, m):  # the remainder goes to partials 0, 1, 2 in turn
            d = np.float64(block[r, i]) - yr
            c = 2.0 * i + 1.0 - m
            if i % 4 == 0:
                t0 += d
                a0 += abs(d)
                h0 += c * d
            elif i % 4 == 1:
                t1 += d
                a1 += abs(d)
                h1 += c * d
            else:
                t2 += d
                a2 += abs(d)
                h2 += c * d
        dbar = (((t0 + t1) + t2) + t3) * inv
        s0 = s1 = s2 = s3 = 0.0  # sum (d - dbar)^2
        for i in range(0, whole, 4):
            e0 = (np.float64(block[r, i]) - yr) - dbar
            e1 = (np.float64(block[r, i + 1]) - yr) - dbar
            e2 = (np.float64(block[r, i + 2]) - yr) - dbar
            e3 = (np.float64(block[r, i + 3]) - yr) - dbar
            s0 += e0 * e0
            s1 += e1 * e1
            s2 += e2 * e2
            s3 += e3 * e3
        for i in range(whole, m):
            e = (np.float64(block[r, i]) - yr) - dbar
            s0 += e * e
        skill = (((a0 + a1) + a2) + a3) * inv
        spread = ((h0 + h1) + h2) + h3
        crps[offset + r] = skill - spread / (m * m)
        mean[offset + r] = dbar + yr
        if m > 1:
            fair[offset + r] = skill - spread / (m * (m - 1.0))
            var[offset + r] = (((s0 + s1) + s2) + s3) / (m - 1.0)
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


@numba.njit(nogil=True, cache=True)
def prefix_extremes(unit_error, unit_min, unit_max, order, counts, y, w, best, outliers):
    """One draw's nested sub-ensembles, for units without NaN (the caller checks): running minima
    of the units' |x - y| and smallest members and running maxima of their largest members over
    ``order``; at ``counts[j]`` units, the weighted sums over cells of the best member's error
    (``best[j]``) and of the truth outside [min, max] (``outliers[j]``). Each unit is one pass
    along its contiguous rows of cells."""
    cells = y.shape[0]
    e = unit_error[order[0]].copy()
    lo = unit_min[order[0]].copy()
    hi = unit_max[order[0]].copy()
    done = 1
    for j in range(counts.shape[0]):
        for i in range(done, counts[j]):
            ue, um, ux = unit_error[order[i]], unit_min[order[i]], unit_max[order[i]]
            for c in range(cells):  # selects on ordered compares: vector min/max instructions
                e[c] = ue[c] if ue[c] < e[c] else e[c]
                lo[c] = um[c] if um[c] < lo[c] else lo[c]
                hi[c] = ux[c] if ux[c] > hi[c] else hi[c]
        done = max(done, counts[j])
        s_best, s_out = 0.0, 0.0
        for c in range(cells):
            s_best += w[c] * e[c]
            s_out += w[c] * (1.0 if (y[c] < lo[c] or y[c] > hi[c]) else 0.0)
        best[j] = s_best
        outliers[j] = s_out

