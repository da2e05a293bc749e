"""Ensemble metrics, spectra and extremes over xarray (numpy or dask, lazily).

Conventions shared by every score:

* Named dims: members on ``member_dim`` (default ``"member"``), grid on ``lat``/``lon``,
  anything else (``init_time``, ``lead_time``, ``channel``) is carried along.
* ``dim=None`` reduces only the member dim (pointwise scores); ``dim=[...]`` takes the
  area-weighted mean over those dims with the grid's quadrature weights
  (:func:`area_weights`) or explicit ``weights=``. Squared quantities (RMSE, spread) are
  averaged before the root.
* NaN: a NaN member or NaN truth makes that cell's score NaN (members are never silently
  dropped); ``skipna=True`` leaves NaN cells out of the mean over ``dim``.
* Results carry ``estimator``, ``ensemble_size`` and ``weights`` attributes.

Importing this package does not import torch or scipy; the spectra import torch and the
Gaussian reference values import scipy when called.

Layout: the metric families at this level (:mod:`~hens.scoring.crps`,
:mod:`~hens.scoring.moments`, :mod:`~hens.scoring.ranks` and :mod:`~hens.scoring.tails`
(ranks, outliers and sub-ensemble tails), :mod:`~hens.scoring.probability` (Brier,
reliability, ROC), :mod:`~hens.scoring.extremes`, :mod:`~hens.scoring.spectra`) with their
shared input checks, weights and histograms; scoring a whole ensemble store (``hens score``,
:func:`hens.scoring.evaluate.score_ensemble`) in :mod:`hens.scoring.evaluate`; figures
(``hens plot``, :func:`hens.scoring.plots.plot_scores`) in :mod:`hens.scoring.plots`.
"""

from hens.scoring.probability import (
    brier_score,
    exceedance_probability,
    reliability,
    roc_auc,
    roc_curve,
)
from hens.scoring.crps import crps, crps_kernel
from hens.scoring.extremes import climate_quantiles, efi, sot
from hens.scoring.moments import (
    debiased_ensemble_mean_mse,
    ensemble_mean_mse,
    ensemble_mean_rmse,
    spread,
    spread_skill_ratio,
)
from hens.scoring.ranks import rank_histogram, ranks
from hens.scoring.spectra import power_spectrum, resampled_spectrum_error
from hens.scoring.tails import (
    best_member_error,
    expected_best_member_error,
    expected_max_sigma,
    expected_outlier_fraction,
    max_sigma,
    outlier_fraction,
    sigma_exceedance,
)
from hens.scoring.weights import area_weights, weighted_mean

__all__ = [
    "area_weights",
    "best_member_error",
    "brier_score",
    "climate_quantiles",
    "crps",
    "crps_kernel",
    "debiased_ensemble_mean_mse",
    "efi",
    "ensemble_mean_mse",
    "ensemble_mean_rmse",
    "exceedance_probability",
    "expected_best_member_error",
    "expected_max_sigma",
    "expected_outlier_fraction",
    "max_sigma",
    "outlier_fraction",
    "power_spectrum",
    "rank_histogram",
    "ranks",
    "reliability",
    "resampled_spectrum_error",
    "roc_auc",
    "roc_curve",
    "sigma_exceedance",
    "sot",
    "spread",
    "spread_skill_ratio",
    "weighted_mean",
]
