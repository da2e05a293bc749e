"""Probability forecasts of threshold events: Brier score, reliability, ROC.

Probabilities come from the ensemble: for an event ``y > threshold`` (``direction="above"``)
or ``y < threshold`` ("below"), p = k / M with k the number of members on the event side.
``threshold`` is a number or a DataArray without the member dim (e.g. a climatological
quantile per cell). Cases pooled over ``dim`` are weighted by the area weights (case
weights normalised to mean 1, so counts are "equal-area cases"; with ``weights`` of ones
they are plain case counts).

NaN: a case with a NaN member, NaN truth or NaN threshold has no probability: it is NaN in
pointwise outputs and left out of the reliability and ROC tables; for the Brier score the
mean over ``dim`` follows ``skipna``.

``dim=None`` pools nothing: the tables are per cell (one case each); pass
``dim=["init_time", "lat", "lon"]`` or similar to pool cases. The rank histogram is in
:mod:`hens.scoring.ranks`.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from hens.forecast.errors import ConfigError
from hens.forecast.types import check_choice
from hens.scoring.histogram import weighted_histogram
from hens.scoring.attributes import finish, finish_score
from hens.scoring.inputs import align_truth, checked_inputs, ensemble_size, reduce_dims
from hens.scoring.types import Dims, EventDirection
from hens.scoring.weights import case_weights, weighted_mean, weights_label


def _count_kernel(x: np.ndarray, thr: np.ndarray, *, above: bool) -> np.ndarray:
    thr = np.asarray(thr)[..., None]
    count = ((x > thr) if above else (x < thr)).sum(axis=-1)
    return np.where(np.isnan(x).any(axis=-1) | np.isnan(thr[..., 0]), np.nan, count)


def exceedance_probability(
    forecast: xr.DataArray,
    threshold: float | xr.DataArray,
    member_dim: Hashable = "member",
    *,
    direction: EventDirection = "above",
) -> xr.DataArray:
    """Ensemble probability of the event, p = #{m : x_m > threshold} / M (or ``<``).

    NaN where a member or the threshold is NaN.
    """
    check_choice("direction", direction, EventDirection)
    m, forecast, thr = checked_inputs(forecast, threshold, member_dim)
    count = xr.apply_ufunc(
        _count_kernel,
        forecast,
        thr,
        input_core_dims=[[member_dim], []],
        kwargs={"above": direction == "above"},
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    return (count / m).rename("probability")


def _event(
    truth: xr.DataArray, threshold: float | xr.DataArray, direction: EventDirection
) -> xr.DataArray:
    event = (truth > threshold) if direction == "above" else (truth < threshold)
    valid = (
        truth.notnull()
        if not isinstance(threshold, xr.DataArray)
        else truth.notnull() & threshold.notnull()
    )
    return event.astype(np.float64).where(valid)


def _event_label(direction: EventDirection) -> str:
    return f"y {'>' if direction == 'above' else '<'} threshold"


def _table_attrs(
    m: int, weights: xr.DataArray | None, direction: EventDirection
) -> dict[str, int | str]:
    """Attributes of the reliability and ROC tables."""
    return {"ensemble_size": m, "weights": weights_label(weights), "event": _event_label(direction)}


def _prepare(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    threshold: float | xr.DataArray,
    member_dim: Hashable,
    direction: EventDirection,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Forecast probability p and outcome o (1.0 / 0.0, NaN when undefined) per case."""
    check_choice("direction", direction, EventDirection)
    forecast, truth = align_truth(forecast, truth, member_dim)
    p = exceedance_probability(forecast, threshold, member_dim, direction=direction)
    o = _event(truth, threshold, direction)
    return p, o


def brier_score(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    threshold: float | xr.DataArray,
    member_dim: Hashable = "member",
    *,
    fair: bool = False,
    direction: EventDirection = "above",
    weights: xr.DataArray | None = None,
    dim: Dims = None,
    skipna: bool = False,
) -> xr.DataArray:
    """Brier score mean_w (p - o)^2 of the ensemble probability of a threshold event.

    ``fair=True`` subtracts p (1 - p) / (M - 1) per case (Ferro 2014): unbiased for the score
    of the underlying distribution (needs M >= 2; can be negative for one case).
    Dimensionless, in [0, 1] for the standard estimator. Worked example (tests/scoring/test_probability.py, M = 4):
    BS = 0.175, fair BS = 0.133333.
    """
    m = ensemble_size(forecast, member_dim, minimum=2 if fair else 1, dim=dim)
    p, o = _prepare(forecast, truth, threshold, member_dim, direction)
    point = (p - o) ** 2
    if fair:
        point = point - p * (1 - p) / (m - 1)
    out = weighted_mean(point, dim, weights=weights, skipna=skipna)
    return finish_score(
        out,
        {
            "long_name": "fair Brier score" if fair else "Brier score",
            "units": "1",
            "estimator": "fair (Ferro 2014)" if fair else "standard",
            "event": _event_label(direction),
        },
        ensemble_size=m,
        name="brier_score",
    )


def reliability(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    threshold: float | xr.DataArray,
    member_dim: Hashable = "member",
    *,
    bins: int | None = None,
    direction: EventDirection = "above",
    weights: xr.DataArray | None = None,
    dim: Dims = None,
) -> xr.Dataset:
    """Reliability-diagram table: per probability bin, mean p, observed frequency, count.

    Bins: ``None`` uses the M + 1 possible values k / M when M <= 20, else 10 equal bins;
    an int ``n`` gives n equal bins on [0, 1] (the last one closed). Returns a Dataset over
    ``bin`` with ``forecast_probability`` and ``observed_frequency`` (weighted means, NaN for
    empty bins) and ``count`` (weighted case count, the sharpness histogram), and coords
    ``bin_lower``/``bin_upper``. References: Wilks (2011), ch. 8.4.
    """
    m = ensemble_size(forecast, member_dim, dim=dim)
    dims = reduce_dims(forecast, dim, member_dim)
    p, o = _prepare(forecast, truth, threshold, member_dim, direction)
    if bins is None and m <= 20:
        nbins, lower, upper = m + 1, np.arange(m + 1) / m, np.arange(m + 1) / m
        code = np.rint(p * m)
    else:
        nbins = 10 if bins is None else int(bins)
        if nbins < 1:
            raise ConfigError(f"bins={bins} is invalid; use a positive number of bins or None")
        edges = np.linspace(0.0, 1.0, nbins + 1)
        lower, upper = edges[:-1], edges[1:]
        code = np.minimum(np.floor(p * nbins), nbins - 1)
    code = code.where(o.notnull()).fillna(-1).astype(np.int32)
    w = case_weights(p, dims, weights)
    w1 = xr.ones_like(p) if w is None else w
    count = weighted_histogram(code, nbins, dims, weights=w, new_dim="bin")
    sum_p = weighted_histogram(code, nbins, dims, weights=w1 * p.fillna(0), new_dim="bin")
    sum_o = weighted_histogram(code, nbins, dims, weights=w1 * o.fillna(0), new_dim="bin")
    denominator = count.where(count > 0)  # empty bins give NaN, without 0/0 warnings
    out = xr.Dataset(
        {
            "forecast_probability": sum_p / denominator,
            "observed_frequency": sum_o / denominator,
            "count": count,
        },
    ).assign_coords(bin=np.arange(nbins), bin_lower=("bin", lower), bin_upper=("bin", upper))
    return finish(out, _table_attrs(m, w, direction))


def roc_curve(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    threshold: float | xr.DataArray,
    member_dim: Hashable = "member",
    *,
    direction: EventDirection = "above",
    weights: xr.DataArray | None = None,
    dim: Dims = None,
) -> xr.Dataset:
    """ROC points: hit rate H and false-alarm rate F for each decision p >= k / M.

    Returns a Dataset over ``probability_threshold`` = k / M for k = M + 1 (never warn,
    point (0, 0)) down to 0 (always warn, (1, 1)), with ``hit_rate`` = TP / (TP + FN) and
    ``false_alarm_rate`` = FP / (FP + TN) from weighted case counts (NaN where there are no
    events or no non-events).
    """
    m = ensemble_size(forecast, member_dim, dim=dim)
    dims = reduce_dims(forecast, dim, member_dim)
    p, o = _prepare(forecast, truth, threshold, member_dim, direction)
    code = np.rint(p * m).where(o.notnull()).fillna(-1).astype(np.int32)
    w = case_weights(p, dims, weights)
    w1 = xr.ones_like(o) if w is None else w
    events = weighted_histogram(code, m + 1, dims, weights=w1 * o.fillna(0), new_dim="k")
    non_events = weighted_histogram(code, m + 1, dims, weights=w1 * (1 - o.fillna(1)), new_dim="k")

    def cumulative(h: xr.DataArray) -> xr.DataArray:  # sum over codes >= k, k = M+1 .. 0
        c = h.isel(k=slice(None, None, -1)).cumsum("k")
        zero = xr.zeros_like(h.isel(k=slice(0, 1)))
        return xr.concat([zero, c], dim="k")

    tp, fp = cumulative(events), cumulative(non_events)
    coord = np.arange(m + 1, -1, -1) / m
    out = (
        xr.Dataset(
            {
                "hit_rate": tp / _positive(tp.isel(k=-1)),
                "false_alarm_rate": fp / _positive(fp.isel(k=-1)),
            }
        )
        .rename(k="probability_threshold")
        .assign_coords(probability_threshold=coord)
    )
    return finish(out, _table_attrs(m, w, direction))


def roc_auc(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    threshold: float | xr.DataArray,
    member_dim: Hashable = "member",
    *,
    direction: EventDirection = "above",
    weights: xr.DataArray | None = None,
    dim: Dims = None,
) -> xr.DataArray:
    """Area under the ROC curve (trapezoid through the M + 2 points of :func:`roc_curve`).

    Equals the probability that a random event case has a higher p than a random
    non-event case, ties counting 1/2 (Mann-Whitney). 0.5 = no skill, 1 = perfect.
    Worked example (tests/scoring/test_probability.py): 0.833333.
    """
    curve = roc_curve(
        forecast, truth, threshold, member_dim, direction=direction, weights=weights, dim=dim
    )
    f, h = curve["false_alarm_rate"], curve["hit_rate"]
    df = f.diff("probability_threshold")
    mid = (h + h.shift(probability_threshold=1)).isel(probability_threshold=slice(1, None)) / 2
    auc = (df * mid).sum("probability_threshold", skipna=False)
    return finish(auc, {**curve.attrs, "long_name": "ROC area", "units": "1"}, name="roc_auc")


def _positive(total: xr.DataArray) -> xr.DataArray:
    return total.where(total > 0)
