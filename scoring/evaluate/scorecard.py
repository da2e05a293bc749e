"""The scores of one (channel, lead block) of an ensemble, lazily, and their descriptions.

Every score is one of the metric functions of :mod:`hens.scoring` applied to the block with
``dim=["init_time", "lat", "lon"]``: cases are pooled over initial times and cells with the
grid's area weights, squared quantities (MSE, variance) are averaged over initial times
*after* the spatial mean and *before* the root. :data:`VARIABLES` describes each output
variable (extra dims, long name, units, estimator); :func:`block_scores` builds the lazy
DataArrays of one block, to be computed in one pass over the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

import hens.scoring as hs
from hens.scoring.weights import weighted_mean

#: the dims pooled into each score (per lead time)
POOLED = ["init_time", "lat", "lon"]
#: units markers, resolved per channel by the writer
SAME, SQUARED_SR, ONE = "channel", "channel^2 sr", "1"


@dataclass(frozen=True)
class Variable:
    """An output variable: dims after ``(channel, lead_time)``, text, units kind."""

    dims: tuple[str, ...]
    long_name: str
    units: str
    estimator: str = ""


_T, _B, _S = ("threshold",), ("threshold", "probability_bin"), ("ensemble_size",)
_EFI = "discrete EFI vs the analysis climate"
_EXC = "of y > climate quantile"
VARIABLES: dict[str, Variable] = {
    "rmse": Variable((), "ensemble-mean RMSE", SAME, "sqrt(mean_t mean_w (xbar - y)^2)"),
    "mae": Variable((), "ensemble-mean MAE", SAME, "mean_t mean_w |xbar - y|"),
    "crps": Variable((), "CRPS", SAME, "standard (empirical CDF of the members)"),
    "fair_crps": Variable((), "fair CRPS", SAME, "fair (Ferro 2014), unbiased for the parent"),
    "spread": Variable((), "ensemble spread", SAME, "sqrt(mean_t mean_w s^2), s^2 with ddof=1"),
    "spread_skill_ratio": Variable((), "spread-skill ratio", ONE, "sqrt((M+1)/M) spread / RMSE"),
    "persistence_rmse": Variable((), "persistence RMSE", SAME, "truth at init as the forecast"),
    "persistence_mae": Variable((), "persistence MAE (= its CRPS)", SAME,
                                "truth at init as the forecast"),
    "outlier_fraction": Variable((), "outlier fraction", ONE,
                                 "share of cases with y outside [min x, max x]; expected 2/(M+1)"),
    "rank_histogram": Variable(("rank",), "rank histogram (relative frequency)", ONE,
                               "rank = #{x_m < y}, ties at random"),
    "brier_score": Variable(_T, f"Brier score {_EXC}", ONE, "standard"),
    "fair_brier_score": Variable(_T, f"fair Brier score {_EXC}", ONE, "fair (Ferro 2014)"),
    "event_frequency": Variable(_T, f"observed frequency {_EXC}", ONE),
    "brier_skill_score": Variable(_T, "Brier skill score vs the climatological probability", ONE,
                                  "1 - BS / BS_ref, BS_ref of the constant forecast 1 - q"),
    "roc_auc": Variable(_T, f"ROC area {_EXC}", ONE, "trapezoid over p >= k/M"),
    "reliability_forecast_probability": Variable(_B, "mean forecast probability per bin", ONE),
    "reliability_observed_frequency": Variable(_B, "observed frequency per bin", ONE),
    "reliability_count": Variable(_B, "area-weighted case count per bin", ONE),
    "efi_mean": Variable((), "mean Extreme Forecast Index", ONE, _EFI),
    "efi_abs_mean": Variable((), "mean |Extreme Forecast Index|", ONE, _EFI),
    "sot_upper_mean": Variable((), "mean Shift of Tails (upper)", ONE,
                               "(Q_f(90) - Q_c(99)) / (Q_c(99) - Q_c(90))"),
    "sot_lower_mean": Variable((), "mean Shift of Tails (lower)", ONE,
                               "(Q_f(10) - Q_c(1)) / (Q_c(1) - Q_c(10))"),
    "efi_map": Variable(("lat", "lon"), "Extreme Forecast Index of the first init", ONE, _EFI),
    "spectrum_members": Variable(("wavenumber",), "mean power spectrum of the members",
                                 SQUARED_SR, "mean over members (a balanced sample of up to 64) and init times of E_l(x_m)"),
    "spectrum_ensemble_mean": Variable(("wavenumber",), "power spectrum of the ensemble mean",
                                       SQUARED_SR, "mean over init times of E_l(xbar)"),
    "spectrum_truth": Variable(("wavenumber",), "power spectrum of the truth", SQUARED_SR,
                               "mean over init times of E_l(y)"),
    "best_member_mae": Variable(_S, "best-member MAE of balanced sub-ensembles", SAME,
                                "mean over random draws of mean_t mean_w min_m |x_m - y|"),
    "best_member_mae_spread": Variable(_S, "best-member MAE, standard deviation over draws", SAME,
                                       "std (ddof=1) over random balanced draws"),
    "subset_outlier_fraction": Variable(_S, "outlier fraction of balanced sub-ensembles", ONE,
                                        "mean over random draws; expected 2/(M+1)"),
    "subset_outlier_fraction_spread": Variable(_S, "outlier fraction, standard deviation over draws",
                                               ONE, "std (ddof=1) over random balanced draws"),
    "sigma_exceedance": Variable(("sigma",), "frequency of |y - xbar| > k s", ONE,
                                 "area-weighted share of cases; Gaussian 2 (1 - Phi(k)) "
                                 "(expected_sigma_exceedance), slightly more for finite M"),
    "max_sigma_mean": Variable((), "mean of max_m |x_m - xbar| / s", ONE,
                               "area mean over cases with s > 0; Gaussian: expected_max_sigma_full"),
    "max_sigma_histogram": Variable(("sigma_bin",), "distribution of max_m |x_m - xbar| / s", ONE,
                                    "area-weighted share of cases per sigma_bin"),
}


def _mean(point: xr.DataArray, *, skipna: bool = False) -> xr.DataArray:
    return weighted_mean(point, POOLED, skipna=skipna)


def core_scores(
    fc: xr.DataArray, truth: xr.DataArray, persistence: xr.DataArray
) -> dict[str, xr.DataArray]:
    """Moments, CRPS, persistence, ranks and outliers: each ``(lead_time, ...)``."""
    hist = hs.rank_histogram(fc, truth, dim=POOLED)
    return {
        "rmse": hs.ensemble_mean_rmse(fc, truth, dim=POOLED),
        "mae": _mean(abs(fc.mean("member") - truth)),
        "crps": hs.crps(fc, truth, dim=POOLED),
        "fair_crps": hs.crps(fc, truth, fair=True, dim=POOLED),
        "spread": hs.spread(fc, dim=POOLED),
        "spread_skill_ratio": hs.spread_skill_ratio(fc, truth, dim=POOLED),
        "persistence_rmse": np.sqrt(_mean((persistence - truth) ** 2)),
        "persistence_mae": _mean(abs(persistence - truth)),
        "outlier_fraction": hs.outlier_fraction(fc, truth, dim=POOLED),
        "rank_histogram": hist / hist.sum("rank"),
    }


def threshold_scores(
    fc: xr.DataArray, truth: xr.DataArray, thresholds: xr.DataArray
) -> dict[str, xr.DataArray]:
    """Brier, reliability and ROC of ``y > threshold`` over a ``threshold`` dim.

    Cases whose threshold is NaN (a climatology window without data) are left out.
    """
    kw = {"dim": POOLED}
    event = (truth > thresholds).astype(np.float64).where(thresholds.notnull())
    p_clim = 1.0 - thresholds["threshold"]
    bs = hs.brier_score(fc, truth, thresholds, skipna=True, **kw)
    rel = hs.reliability(fc, truth, thresholds, **kw)
    obar = _mean(event, skipna=True)
    reference = obar * (1.0 - p_clim) ** 2 + (1.0 - obar) * p_clim**2
    return {
        "brier_score": bs,
        "fair_brier_score": hs.brier_score(
            fc, truth, thresholds, fair=True, skipna=True, **kw
        ),
        "event_frequency": obar,
        "brier_skill_score": 1.0 - bs / reference,
        "roc_auc": hs.roc_auc(fc, truth, thresholds, **kw),
        **{
            f"reliability_{name}": rel[name].rename(bin="probability_bin")
            for name in ("forecast_probability", "observed_frequency", "count")
        },
    }


def extreme_scores(fc: xr.DataArray, climate: xr.DataArray) -> dict[str, xr.DataArray]:
    """EFI (means and the map of the first initial time) and SOT means against ``climate``.

    Cells where the index is undefined (NaN climate, zero tail width for SOT) are left out
    of the means.
    """
    point = hs.efi(fc, climate)
    return {
        "efi_mean": _mean(point, skipna=True),
        "efi_abs_mean": _mean(abs(point), skipna=True),
        "efi_map": point.isel(init_time=0, drop=True),
        "sot_upper_mean": hs.sot(fc, climate, tail="upper", dim=POOLED, skipna=True),
        "sot_lower_mean": hs.sot(fc, climate, tail="lower", dim=POOLED, skipna=True),
    }


def subset_scores(
    fc: xr.DataArray, truth: xr.DataArray, subsets: list[tuple[int, np.ndarray]]
) -> dict[str, xr.DataArray]:
    """Best-member MAE and outlier fraction of each sub-ensemble, over ``ensemble_size``."""
    sizes = [n for n, _ in subsets]
    best, outliers = [], []
    for _, positions in subsets:
        sub = fc.isel(member=positions)
        best.append(hs.best_member_error(sub, truth, dim=POOLED))
        outliers.append(hs.outlier_fraction(sub, truth, dim=POOLED))
    size = xr.DataArray(sizes, dims="ensemble_size", name="ensemble_size")
    return {
        "best_member_mae": xr.concat(best, dim=size),
        "subset_outlier_fraction": xr.concat(outliers, dim=size),
    }
