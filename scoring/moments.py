"""Ensemble-mean error, spread and their ratio (first two moments of the ensemble).

With normalised area weights w_j, ensemble mean xbar and unbiased member variance
s^2 = sum_m (x_m - xbar)^2 / (M - 1), over the cases t and cells j pooled by ``dim``:

    RMSE   = sqrt( mean_{t,j; w} (xbar - y)^2 )
    spread = sqrt( mean_{t,j; w} s^2 )
    SSR    = sqrt((M + 1) / M) * spread / RMSE

Squared quantities are averaged over every dim in ``dim`` (time included) *before* the root,
as WeatherBench2's default (not its "SqrtBeforeTimeAvg" variants); to get one value per lead
time pass ``dim=["init_time", "lat", "lon"]``. For exchangeable members and truth
E(xbar - y)^2 = (1 + 1/M) sigma^2, so the factor sqrt((M+1)/M) makes SSR -> 1 for a
calibrated ensemble of any size (Fortin et al. 2014).

NaN: a NaN member or NaN truth makes that cell NaN; ``skipna=True`` leaves such cells out of
the mean over ``dim`` (renormalising the weights) -- members are never skipped.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from hens.scoring.attributes import finish, finish_score, units_of
from hens.scoring.inputs import checked_inputs, checked_members
from hens.scoring.types import Dims, XrObj
from hens.scoring.weights import weighted_mean

_REF = "Fortin et al. (2014), J. Hydrometeor. 15, 1708; WeatherBench2 (Rasp et al. 2024)"


def _squared_error(forecast: XrObj, truth: XrObj | xr.DataArray, member_dim: Hashable) -> XrObj:
    return (forecast.mean(member_dim, skipna=False) - truth) ** 2


def _variance(forecast: XrObj, member_dim: Hashable) -> XrObj:
    return forecast.var(member_dim, ddof=1, skipna=False)


def _squared_units(forecast: XrObj, truth: XrObj | xr.DataArray) -> str | None:
    units = units_of(truth) or units_of(forecast)
    return f"({units})^2" if units else None


def ensemble_mean_mse(
    forecast: XrObj,
    truth: XrObj | xr.DataArray,
    member_dim: Hashable = "member",
    *,
    weights: xr.DataArray | None = None,
    dim: Dims = None,
    skipna: bool = False,
) -> XrObj:
    """Mean squared error of the ensemble mean, mean_w (xbar - y)^2, in units^2."""
    m, forecast, truth = checked_inputs(forecast, truth, member_dim, dim=dim)
    out = weighted_mean(
        _squared_error(forecast, truth, member_dim), dim, weights=weights, skipna=skipna
    )
    return finish_score(
        out,
        {"long_name": "ensemble-mean MSE", "units": _squared_units(forecast, truth)},
        ensemble_size=m,
        name="ensemble_mean_mse",
    )


def ensemble_mean_rmse(
    forecast: XrObj,
    truth: XrObj | xr.DataArray,
    member_dim: Hashable = "member",
    *,
    weights: xr.DataArray | None = None,
    dim: Dims = None,
    skipna: bool = False,
) -> XrObj:
    """Root mean squared error of the ensemble mean, sqrt(mean_w (xbar - y)^2).

    The mean runs over every dim in ``dim`` before the root (module docstring); pointwise
    (``dim=None``) it is |xbar - y|. Units of the variable. This is *not* the mean of the
    members' RMSEs.
    """
    mse = ensemble_mean_mse(forecast, truth, member_dim, weights=weights, dim=dim, skipna=skipna)
    out = np.sqrt(mse)
    return finish(
        out,
        {
            **mse.attrs,
            "long_name": "ensemble-mean RMSE",
            "units": units_of(truth) or units_of(forecast),
            "references": _REF,
        },
        name="ensemble_mean_rmse",
    )


def spread(
    forecast: XrObj,
    member_dim: Hashable = "member",
    *,
    weights: xr.DataArray | None = None,
    dim: Dims = None,
    skipna: bool = False,
) -> XrObj:
    """Ensemble spread sqrt(mean_w s^2), s^2 the unbiased (ddof=1) member variance.

    Units of the variable; needs M >= 2. Variances are averaged over ``dim`` before the root.
    """
    m, forecast = checked_members(forecast, member_dim, minimum=2, dim=dim)
    out = np.sqrt(
        weighted_mean(_variance(forecast, member_dim), dim, weights=weights, skipna=skipna)
    )
    return finish_score(
        out,
        {
            "long_name": "ensemble spread",
            "units": units_of(forecast),
            "estimator": "sqrt of mean unbiased variance (ddof=1)",
        },
        ensemble_size=m,
        name="spread",
    )


def spread_skill_ratio(
    forecast: XrObj,
    truth: XrObj | xr.DataArray,
    member_dim: Hashable = "member",
    *,
    weights: xr.DataArray | None = None,
    dim: Dims = None,
    skipna: bool = False,
) -> XrObj:
    """Spread-skill ratio sqrt((M+1)/M) * spread / RMSE (dimensionless, 1 when calibrated).

    > 1 means over-dispersive, < 1 under-dispersive. ``M`` is the size of ``member_dim``.
    Both moments are averaged over ``dim`` before the roots (module docstring). With
    ``skipna=True`` both means use the same cells (those where the error and variance are
    both defined).

    Worked example (tests/scoring/test_moments.py): weights [0.25, 0.75], members [1,2,4] / [0,1,2],
    y = [3, 0.5] give RMSE 0.546453, spread 1.154701, SSR 2.43998.
    """
    m, forecast, truth = checked_inputs(forecast, truth, member_dim, minimum=2, dim=dim)
    err = _squared_error(forecast, truth, member_dim)
    var = _variance(forecast, member_dim)
    if skipna:
        valid = err.notnull() & var.notnull()
        err, var = err.where(valid), var.where(valid)
    mse = weighted_mean(err, dim, weights=weights, skipna=skipna)
    mvar = weighted_mean(var, dim, weights=weights, skipna=skipna)
    # the ratio drops attributes: keep the weights label that the means recorded
    out = (np.sqrt((m + 1) / m) * np.sqrt(mvar) / np.sqrt(mse)).assign_attrs(mse.attrs)
    return finish_score(
        out,
        {
            "long_name": "spread-skill ratio",
            "units": "1",
            "estimator": "sqrt((M+1)/M) * spread / RMSE, means before roots",
            "references": _REF,
        },
        ensemble_size=m,
        name="spread_skill_ratio",
    )


def debiased_ensemble_mean_mse(
    forecast: XrObj,
    truth: XrObj | xr.DataArray,
    member_dim: Hashable = "member",
    *,
    weights: xr.DataArray | None = None,
    dim: Dims = None,
    skipna: bool = False,
) -> XrObj:
    """MSE - spread^2 / M: unbiased for the MSE of an infinite ensemble's mean (units^2).

    WeatherBench2's ``DebiasedEnsembleMeanMSE``; can be negative when few cases are pooled
    (the worked example gives -0.145833).
    """
    m, forecast, truth = checked_inputs(forecast, truth, member_dim, minimum=2, dim=dim)
    point = _squared_error(forecast, truth, member_dim) - _variance(forecast, member_dim) / m
    out = weighted_mean(point, dim, weights=weights, skipna=skipna)
    return finish_score(
        out,
        {"long_name": "debiased ensemble-mean MSE", "units": _squared_units(forecast, truth)},
        ensemble_size=m,
        name="debiased_ensemble_mean_mse",
    )
