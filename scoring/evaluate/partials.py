"""The scorecard as sums: one task per (init, lead, latitude band), summed, then finished.

:func:`piece_sums` scores one block of all members (``(M, rows, nlon)`` of one init and lead)
with :func:`hens.scoring.evaluate.fused.cell_statistics` and returns area-weighted *sums* (float64):
the weighted means of the scorecard are ratios of sums, and the histograms (ranks,
exceedance counts per threshold, max-sigma) are weighted counts. :func:`combine` adds pieces
in a fixed order (bit-for-bit the same result on any scheduler) and :func:`finish_scores`
turns the sums of one lead time into the scores of
:data:`hens.scoring.evaluate.scorecard.VARIABLES`, with the estimators of the public functions:

* skipna=False means (RMSE, MAE, CRPS, spread, persistence, outliers, sub-ensembles): a NaN
  case makes the score NaN; skipna=True means (thresholds, EFI, SOT, sigma diagnostics):
  undefined cases (NaN climate, zero tail width, zero spread) are left out.
* Brier, reliability and ROC come from the weighted counts of cases by k = #{x_m > tau}
  (p = k / M), split by event / non-event.

Weights: the grid's area weights (mean 1 over latitude rows), the same for every init, so a
pooled sum over (init, lat, lon) is the mean over inits of the spatial means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hens.scoring.evaluate import kernels
from hens.scoring.evaluate.fused import cell_statistics
from hens.scoring.extremes import efi_from_fraction, sot_from_quantile

#: k of the truth's k-sigma exceedance frequencies
SIGMA_LEVELS = (2.0, 3.0, 4.0)
#: bin edges (in sigma) of the max-sigma histogram; the last bin is open
SIGMA_BINS = np.arange(0.0, 8.25, 0.25)


@dataclass(frozen=True)
class PieceOptions:
    """What every piece of a scoring run shares (picklable: sent to dask workers)."""

    members: int
    levels: tuple[float, ...] = ()
    threshold_index: tuple[int, ...] = ()
    quantile_p: np.ndarray | None = None
    units: np.ndarray | None = None
    orders: np.ndarray | None = None
    counts: np.ndarray | None = None
    seed: int = 0


def _wsum(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """sum_j w_j v_j over cells (axis 0), NaN kept (skipna=False)."""
    return np.einsum("i,i...->...", w, v)


def _wsum_valid(w: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum of w v, sum of w) over the cells where v is defined (skipna=True)."""
    ok = ~np.isnan(v)
    return _wsum(w, np.where(ok, v, 0.0)), _wsum(w, ok.astype(np.float64))


def piece_sums(
    x: np.ndarray,
    y: np.ndarray,
    persistence: np.ndarray,
    weights: np.ndarray,
    options: PieceOptions,
    *,
    climate: np.ndarray | None = None,
    efi_map: bool = False,
    mean_map: bool = False,
) -> dict[str, np.ndarray]:
    """Weighted sums of one block of cells.

    Parameters
    ----------
    x
        Members, ``(M, cells)`` (the stored member-first layout, flattened over cells).
    y, persistence
        Truth at the valid time and at the initial time, ``(cells,)``.
    weights
        Area weight of each cell, ``(cells,)``, mean 1 over a full grid.
    options
        Shared settings (thresholds, sub-ensembles).
    climate
        Climate quantiles ``(cells, K)`` at ``options.quantile_p``, or None (no thresholds,
        EFI, SOT).
    efi_map
        Also return the pointwise EFI (``"efi_map"``, float32, ``(cells,)``).
    mean_map
        Also return the ensemble mean (``"mean_map"``, float64, ``(cells,)``).
    """
    m = options.members
    w = np.asarray(weights, dtype=np.float64)
    y64 = np.asarray(y, dtype=np.float64)
    thresholds = None if climate is None else climate[:, list(options.threshold_index)]
    stats = cell_statistics(x.T, y, climate=climate, thresholds=thresholds, units=options.units,
                            seed=options.seed)
    err = stats["mean"] - y64
    pers = np.asarray(persistence, dtype=np.float64) - y64
    outside = ((y64 < stats["min"]) | (y64 > stats["max"])).astype(np.float64)
    outside[np.isnan(stats["mean"])] = np.nan
    out = {
        "w": np.array(w.sum()),
        "se": _wsum(w, err**2), "ae": _wsum(w, np.abs(err)),
        "crps": _wsum(w, stats["crps"]), "fair_crps": _wsum(w, stats["fair_crps"]),
        "var": _wsum(w, stats["var"]),
        "p_se": _wsum(w, pers**2), "p_ae": _wsum(w, np.abs(pers)),
        "outlier": _wsum(w, outside),
        "rank": np.bincount(stats["rank"] + 1, weights=w, minlength=m + 2)[1:],
    }
    out["max_sigma"], out["max_sigma_w"] = _wsum_valid(w, stats["max_sigma"])
    ms = stats["max_sigma"]
    code = np.where(np.isnan(ms), -1, np.searchsorted(SIGMA_BINS, np.nan_to_num(ms), side="right") - 1)
    out["max_sigma_hist"] = np.bincount(code + 1, weights=w, minlength=SIGMA_BINS.size + 1)[1:]
    ts = stats["truth_sigma"]
    beyond = np.stack([np.where(np.isnan(ts), np.nan, ts > k) for k in SIGMA_LEVELS], axis=1)
    out["sigma_exc"], out["sigma_w"] = _wsum_valid(w, beyond)
    if climate is not None:
        _threshold_sums(out, stats, y64, thresholds, w, m)
        frac = stats["climate_le"] / m
        frac[np.isnan(stats["mean"])] = np.nan
        efi = efi_from_fraction(frac, climate, p=options.quantile_p, eps=None)
        out["efi"], out["efi_w"] = _wsum_valid(w, efi)
        out["efi_abs"], _ = _wsum_valid(w, np.abs(efi))
        p = options.quantile_p
        pick = {q: int(np.argmin(np.abs(p - q))) for q in (0.01, 0.1, 0.9, 0.99)}
        for name, j, inner, tail in (("sot_upper", 1, 0.9, 0.99), ("sot_lower", 0, 0.1, 0.01)):
            sot = sot_from_quantile(stats["quantiles"][:, j], climate[:, pick[inner]],
                                    climate[:, pick[tail]], eps=None)
            out[name], out[f"{name}_w"] = _wsum_valid(w, sot)
        if efi_map:
            out["efi_map"] = efi.astype(np.float32)
    if mean_map:
        out["mean_map"] = stats["mean"]
    if options.units is not None:
        _subset_sums(out, stats, y64, w, options)
    return out


def _threshold_sums(out: dict, stats: dict, y: np.ndarray, thr: np.ndarray, w: np.ndarray, m: int) -> None:
    """Weighted counts of cases by k = #{x > tau}, for events and non-events, per threshold."""
    n_thr = thr.shape[1]
    events = np.zeros((n_thr, m + 1))
    non_events = np.zeros((n_thr, m + 1))
    valid_member = ~np.isnan(stats["mean"])
    for t in range(n_thr):
        ok = valid_member & ~np.isnan(thr[:, t]) & ~np.isnan(y)
        k = stats["above"][ok, t]
        event = y[ok] > thr[ok, t]
        events[t] = np.bincount(k[event], weights=w[ok][event], minlength=m + 1)
        non_events[t] = np.bincount(k[~event], weights=w[ok][~event], minlength=m + 1)
    out["events"], out["non_events"] = events, non_events


def _subset_sums(out: dict, stats: dict, y: np.ndarray, w: np.ndarray, options: PieceOptions) -> None:
    """Best-member error and outliers of each draw's prefixes (nested sub-ensembles).

    A prefix's minimum is the previous prefix's minimum and that of the units added: one
    pass over the units per draw, each a contiguous row of cells. The whole ensemble (the last
    size) is the same in every draw: it is reduced once, and each draw stops at the size before.
    """
    n_draws, n_sizes = options.orders.shape[0], options.counts.size
    best = np.empty((n_draws, n_sizes))
    outliers = np.empty_like(best)
    nan_y = np.isnan(y)

    def sums(e: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outside = ((y < lo) | (y > hi)).astype(np.float64)
        outside[np.isnan(lo) | nan_y] = np.nan
        return _wsum(w, e), _wsum(w, outside)  # no BLAS: same bits anywhere

    whole = options.counts[-1] == stats["unit_error"].shape[0]
    if whole:  # NaN propagates, as min(skipna=False)
        best[:, -1], outliers[:, -1] = sums(stats["unit_error"].min(0), stats["unit_min"].min(0),
                                            stats["unit_max"].max(0))
    counts = options.counts[:-1] if whole else options.counts
    # a NaN member or truth anywhere makes the whole ensemble's sum NaN
    has_nan = bool(np.isnan(best[0, -1]) if whole else np.isnan(stats["unit_error"]).any())
    if not has_nan:  # compiled loops (they do not track NaN)
        for r, order in enumerate(options.orders):
            kernels.prefix_extremes(stats["unit_error"], stats["unit_min"], stats["unit_max"], order, counts,
                                    y, w, best[r], outliers[r])
        out["best"], out["subset_outlier"] = best, outliers
        return
    for r, order in enumerate(options.orders):
        start = 0
        e = lo = hi = None
        for j, stop in enumerate(counts):
            rows = order[start:stop]
            e_new = stats["unit_error"][rows].min(0)
            lo_new, hi_new = stats["unit_min"][rows].min(0), stats["unit_max"][rows].max(0)
            e = e_new if e is None else np.minimum(e, e_new)
            lo = lo_new if lo is None else np.minimum(lo, lo_new)
            hi = hi_new if hi is None else np.maximum(hi, hi_new)
            best[r, j], outliers[r, j] = sums(e, lo, hi)
            start = stop
    out["best"], out["subset_outlier"] = best, outliers


def combine(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Sum pieces in list order; maps (keys ending in ``_map``: a band's cells) are concatenated
    in order. A key missing from some pieces (the spectra of banded blocks come from their own
    task) sums over the others."""
    total: dict[str, np.ndarray] = {}
    maps: dict[str, list[np.ndarray]] = {}
    for part in parts:
        for k, v in part.items():
            if k.endswith("_map"):
                maps.setdefault(k, []).append(v)
            else:
                total[k] = total[k] + v if k in total else np.array(v, dtype=np.float64, copy=True)
    total.update({k: np.concatenate(v) for k, v in maps.items()})
    return total


def _roc_auc(events: np.ndarray, non_events: np.ndarray) -> float:
    """Trapezoid area through (F, H) for decisions k >= K, K = M + 1 .. 0 (as roc_auc)."""
    tp = np.concatenate([[0.0], np.cumsum(events[::-1])])
    fp = np.concatenate([[0.0], np.cumsum(non_events[::-1])])
    if tp[-1] <= 0 or fp[-1] <= 0:
        return float("nan")
    h, f = tp / tp[-1], fp / fp[-1]
    return float((np.diff(f) * (h[1:] + h[:-1]) / 2).sum())


def _reliability(events: np.ndarray, non_events: np.ndarray, m: int) -> tuple[np.ndarray, ...]:
    """Per probability bin: mean p, observed frequency, weighted count (as reliability)."""
    k = np.arange(m + 1)
    p = k / m
    if m <= 20:
        code, nbins = k, m + 1
    else:
        nbins = 10
        code = np.minimum(np.floor(p * nbins), nbins - 1).astype(int)
    cases = events + non_events
    count = np.bincount(code, weights=cases, minlength=nbins)
    sum_p = np.bincount(code, weights=cases * p, minlength=nbins)
    sum_o = np.bincount(code, weights=events, minlength=nbins)
    with np.errstate(invalid="ignore", divide="ignore"):
        den = np.where(count > 0, count, np.nan)
        return sum_p / den, sum_o / den, count


def finish_scores(
    sums: dict[str, np.ndarray], options: PieceOptions
) -> dict[str, np.ndarray]:
    """The scores of one lead time from its summed pieces (module docstring)."""
    m = options.members
    w = sums["w"]
    out = {
        "rmse": np.sqrt(sums["se"] / w), "mae": sums["ae"] / w,
        "crps": sums["crps"] / w, "fair_crps": sums["fair_crps"] / w,
        "spread": np.sqrt(sums["var"] / w),
        "persistence_rmse": np.sqrt(sums["p_se"] / w), "persistence_mae": sums["p_ae"] / w,
        "outlier_fraction": sums["outlier"] / w,
        "rank_histogram": sums["rank"] / sums["rank"].sum(),
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        out["spread_skill_ratio"] = np.sqrt((m + 1) / m) * out["spread"] / out["rmse"]
        out["max_sigma_mean"] = sums["max_sigma"] / sums["max_sigma_w"]
        out["max_sigma_histogram"] = sums["max_sigma_hist"] / sums["max_sigma_hist"].sum()
        out["sigma_exceedance"] = sums["sigma_exc"] / sums["sigma_w"]
    if "events" in sums:
        out.update(_threshold_scores(sums["events"], sums["non_events"], m, options.levels))
        with np.errstate(invalid="ignore", divide="ignore"):
            out["efi_mean"] = sums["efi"] / sums["efi_w"]
            out["efi_abs_mean"] = sums["efi_abs"] / sums["efi_w"]
            out["sot_upper_mean"] = sums["sot_upper"] / sums["sot_upper_w"]
            out["sot_lower_mean"] = sums["sot_lower"] / sums["sot_lower_w"]
    if "best" in sums:
        best, outl = sums["best"] / w, sums["subset_outlier"] / w
        ddof = 1 if best.shape[0] > 1 else 0
        out["best_member_mae"], out["best_member_mae_spread"] = best.mean(0), best.std(0, ddof=ddof)
        out["subset_outlier_fraction"] = outl.mean(0)
        out["subset_outlier_fraction_spread"] = outl.std(0, ddof=ddof)
    return out


def _threshold_scores(
    events: np.ndarray, non_events: np.ndarray, m: int, levels: tuple[float, ...]
) -> dict[str, np.ndarray]:
    p = np.arange(m + 1) / m
    n_thr = events.shape[0]
    scores = {k: np.empty(n_thr) for k in ("brier_score", "fair_brier_score", "event_frequency",
                                           "brier_skill_score", "roc_auc")}
    rel = [[], [], []]
    for t in range(n_thr):
        e, n = events[t], non_events[t]
        total = (e + n).sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            bs = ((e * (p - 1.0) ** 2).sum() + (n * p**2).sum()) / total
            penalty = ((e + n) * p * (1 - p)).sum() / total / (m - 1) if m > 1 else np.nan
            obar = e.sum() / total
        q = 1.0 - levels[t]  # the climatological probability of y > Q(level)
        scores["brier_score"][t] = bs
        scores["fair_brier_score"][t] = bs - penalty
        scores["event_frequency"][t] = obar
        with np.errstate(invalid="ignore", divide="ignore"):
            scores["brier_skill_score"][t] = 1.0 - bs / (obar * (1 - q) ** 2 + (1 - obar) * q**2)
        scores["roc_auc"][t] = _roc_auc(e, n)
        for i, v in enumerate(_reliability(e, n, m)):
            rel[i].append(v)
    names = ("forecast_probability", "observed_frequency", "count")
    scores.update({f"reliability_{k}": np.stack(v) for k, v in zip(names, rel, strict=True)})
    return scores
