"""Extreme Forecast Index (EFI) and Shift of Tails (SOT) against a model climate.

The model climate ("M-climate") of each cell (and lead time, season) is the CDF of the
model's own reforecasts, stored as quantiles Q_c(p_k) over a dim ``quantile`` with
p_k = k / 100, k = 0..100 (101 values including min and max); :func:`climate_quantiles`
builds it. Use the model's climate, not the reanalysis', or EFI measures the model bias.

EFI (Lalaurette 2003), in [-1, 1], with F_f(p) the fraction of members <= Q_c(p):

    EFI = (2 / pi) integral_0^1 (p - F_f(p)) / sqrt(p (1 - p)) dp

Discrete estimator (earthkit-meteo): F_f linear between climate quantiles and integrated
exactly. With A_k = acos(sqrt p_{k+1}) - acos(sqrt p_k), B_k = sqrt(p_{k+1}(1 - p_{k+1}))
- sqrt(p_k (1 - p_k)), F_k = F_f(p_k) and D_k = (F_{k+1} - F_k) / (p_{k+1} - p_k):

    EFI = (2 / pi) sum_k [ (2 F_k - 1) A_k + ((1 - 2 p_k) A_k + B_k) D_k - B_k ]

0 when the members follow the climate, +1 (-1) when all lie above its maximum (below its
minimum). With 101 quantiles the estimator slightly underestimates |EFI| of continuous
distributions (Gaussian shift of 2 sigma: 0.714 vs 0.724 exact).

SOT (ECMWF), with Q_f the members' percentile (numpy "linear"):

    upper:  SOT = (Q_f(90) - Q_c(99)) / (Q_c(99) - Q_c(90))
    lower:  SOT = (Q_f(10) - Q_c(1))  / (Q_c(1)  - Q_c(10))

Positive when at least 10 % of the members lie beyond the climate's 99th (1st) percentile,
for either tail; clipped to [-10, 10]; NaN where the climate tail width |Q_c(99) - Q_c(90)|
is zero within rounding (or <= ``eps``).

NaN: a NaN member or NaN climate quantile gives NaN; dims are reduced only via ``dim``.

Both agree with earthkit-meteo's ``extreme.efi`` / ``extreme.sot`` to 1e-12, eps variants,
ties and NaNs included (tests/scoring/test_extremes.py). Deliberate differences: hens
integrates over the climate's own ``quantile`` coords (earthkit assumes evenly spaced
p_k = k / (n - 1), so only such sets are compared) and clips EFI to [-1, 1]; SOT reads the
0.9/0.99 (0.1/0.01) quantiles by probability from any quantile set (earthkit needs 101
percentiles and also offers other levels), and treats a tail width within 8 ulp of zero as
zero (earthkit: exactly zero), which random data never reach.
References: Lalaurette (2003), QJRMS 129, 3037; Zsoter (2006), ECMWF Newsletter 107;
ECMWF forecast user guide; earthkit-meteo ``extreme``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from hens.forecast.errors import DataError
from hens.forecast.types import check_choice
from hens.scoring.attributes import finish, finish_score
from hens.scoring.inputs import checked_inputs, core_chunks, reduce_dims
from hens.scoring.types import Dims, Tail
from hens.scoring.weights import weighted_mean

QUANTILE = "quantile"
SOT_CLIP = 10.0


def climate_quantiles(
    samples: xr.DataArray, dim: Hashable | Sequence[Hashable], *, n: int = 101
) -> xr.DataArray:
    """Model-climate quantiles Q_c(k / (n - 1)), k = 0..n-1, over the sample dims ``dim``.

    numpy "linear" quantiles, NaN propagated; output dim ``quantile`` (last) in [0, 1].
    """
    dims = reduce_dims(samples, dim)
    if n < 3:
        raise DataError(f"need at least 3 climate quantiles (min, median, max), got n={n}")
    q = np.linspace(0.0, 1.0, n)
    out = core_chunks(samples, tuple(dims)).quantile(q, dim=dims, method="linear", skipna=False)
    out = out.transpose(*[d for d in out.dims if d != QUANTILE], QUANTILE)
    return finish(
        out, {**samples.attrs, "long_name": "model-climate quantiles"}, name="climate_quantiles"
    )


def _check_climate(clim: xr.DataArray, quantile_dim: Hashable) -> np.ndarray:
    if quantile_dim not in clim.dims or quantile_dim not in clim.coords:
        raise DataError(
            f"climate quantiles need a {quantile_dim!r} dim with probability coords in [0, 1]; "
            f"build them with hens.scoring.climate_quantiles"
        )
    p = np.asarray(clim[quantile_dim].values, dtype=np.float64)
    if p.size < 2 or np.any(np.diff(p) <= 0) or abs(p[0]) > 1e-9 or abs(p[-1] - 1) > 1e-9:
        raise DataError(
            f"climate {quantile_dim!r} coords must increase from 0 to 1 "
            f"(got {p[0]:.3g}..{p[-1]:.3g}, "
            f"{p.size} values)"
        )
    return p


def _fraction_below(xs: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """F[n, k] = #{m : xs[n, m] <= qs[n, k]} / M for non-decreasing rows of ``qs``.

    One stable merge sort per row (members first, so ties count as <=), in blocks of rows.
    """
    m, k = xs.shape[-1], qs.shape[-1]
    frac = np.empty(qs.shape, dtype=np.float64)
    step = max(1, (1 << 17) // (m + k))
    for start in range(0, xs.shape[0], step):
        sl = slice(start, start + step)
        merged = np.concatenate([xs[sl], qs[sl]], axis=-1)
        is_q = np.argsort(merged, axis=-1, kind="stable") >= m
        frac[sl] = np.cumsum(~is_q, axis=-1)[is_q].reshape(-1, k)
    return frac / m


def efi_from_fraction(
    frac: np.ndarray, qs: np.ndarray, *, p: np.ndarray, eps: float | None
) -> np.ndarray:
    """EFI of rows from F_f(p_k) ``frac`` ``(n, K)`` and the climate quantiles ``qs`` ``(n, K)``."""
    acos_d = np.diff(np.arccos(np.sqrt(p)))
    prod_d = np.diff(np.sqrt(p * (1.0 - p)))
    slope = np.diff(frac, axis=-1) / np.diff(p)
    terms = (
        (2.0 * frac[:, :-1] - 1.0) * acos_d
        + ((1.0 - 2.0 * p[:-1]) * acos_d + prod_d) * slope
        - prod_d
    )
    if eps is not None and eps > 0:  # precipitation: ignore intervals whose upper quantile is dry
        wet = qs[:, 1:] > eps
        efi = np.where(wet, terms, 0.0).sum(-1) / np.maximum(
            np.where(wet, -acos_d - prod_d, 0.0).sum(-1), eps
        )
    else:
        efi = terms.sum(-1) * (2.0 / np.pi)
    efi = np.clip(efi, -1.0, 1.0)  # the bounds are exact; the sum can round 1 ulp past them
    efi[np.isnan(frac).any(-1) | np.isnan(qs).any(-1)] = np.nan
    return efi


def _efi_kernel(x: np.ndarray, q: np.ndarray, *, p: np.ndarray, eps: float | None) -> np.ndarray:
    lead = np.broadcast_shapes(x.shape[:-1], q.shape[:-1])
    m, k = x.shape[-1], q.shape[-1]
    xs = np.broadcast_to(x, (*lead, m)).reshape(-1, m)
    qs = np.broadcast_to(q, (*lead, k)).reshape(-1, k)
    frac = _fraction_below(xs, qs)
    frac[np.isnan(xs).any(-1)] = np.nan
    return efi_from_fraction(frac, qs, p=p, eps=eps).reshape(lead)


def efi(
    forecast: xr.DataArray,
    climate: xr.DataArray,
    member_dim: Hashable = "member",
    *,
    quantile_dim: Hashable = QUANTILE,
    eps: float | None = None,
    weights: xr.DataArray | None = None,
    dim: Dims = None,
    skipna: bool = False,
) -> xr.DataArray:
    """Extreme Forecast Index of the ensemble against climate quantiles (module docstring).

    Parameters
    ----------
    forecast
        Ensemble with ``member_dim``.
    climate
        Climate quantiles over ``quantile_dim`` (coords p_k increasing from 0 to 1,
        values non-decreasing), broadcastable against the forecast without its members.
    eps
        Precipitation variant (earthkit-meteo): climate intervals whose upper quantile is
        <= eps are left out and the index renormalised by its maximum over the rest.
    weights, dim, skipna
        Optional area-weighted mean of the index over ``dim``.

    Returns
    -------
    EFI in [-1, 1], dimensionless. Worked example: climate uniform on [0, 1], members
    0.55..0.95 step 0.1 -> 0.350839.
    """
    p = _check_climate(climate, quantile_dim)
    m, forecast, climate = checked_inputs(forecast, climate, member_dim, dim=dim)
    climate = core_chunks(climate, (quantile_dim,))
    point = xr.apply_ufunc(
        _efi_kernel,
        forecast,
        climate,
        input_core_dims=[[member_dim], [quantile_dim]],
        kwargs={"p": p, "eps": eps},
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    out = weighted_mean(point, dim, weights=weights, skipna=skipna)
    return finish_score(
        out,
        {
            "long_name": "Extreme Forecast Index",
            "units": "1",
            "estimator": f"discrete, {p.size} climate quantiles (earthkit-meteo)",
        },
        ensemble_size=m,
        name="efi",
    )


def sot_from_quantile(
    qf: np.ndarray, q_inner: np.ndarray, q_tail: np.ndarray, *, eps: float | None
) -> np.ndarray:
    """SOT from the members' quantile ``qf`` and the climate's inner and tail quantiles."""
    if eps is not None and eps > 0:
        q_inner = np.where(q_inner < eps, 0.0, q_inner)
    width = q_tail - q_inner
    tol = max(eps or 0.0, 0.0) + 8 * np.finfo(np.float64).eps * np.maximum(
        abs(q_tail), abs(q_inner)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        sot = np.where(np.abs(width) > tol, (qf - q_tail) / width, np.nan)
    return np.clip(sot, -SOT_CLIP, SOT_CLIP)


def _sot_kernel(
    x: np.ndarray, q_inner: np.ndarray, q_tail: np.ndarray, *, level: float, eps: float | None
) -> np.ndarray:
    if eps is not None and eps > 0:
        x = np.where(x < eps, 0.0, x)
    qf = np.quantile(x, level, axis=-1, method="linear")
    return sot_from_quantile(qf, q_inner, q_tail, eps=eps)


def sot(
    forecast: xr.DataArray,
    climate: xr.DataArray,
    member_dim: Hashable = "member",
    *,
    tail: Tail = "upper",
    quantile_dim: Hashable = QUANTILE,
    eps: float | None = None,
    weights: xr.DataArray | None = None,
    dim: Dims = None,
    skipna: bool = False,
) -> xr.DataArray:
    """Shift of Tails of the ensemble against climate quantiles (module docstring).

    ``tail="upper"`` uses Q_f(90), Q_c(90), Q_c(99); ``"lower"`` Q_f(10), Q_c(10), Q_c(1).
    The climate must hold those probabilities in ``quantile_dim``. ``eps`` (precipitation,
    earthkit-meteo): members and Q_c(90) below eps count as 0, and tail widths <= eps give
    NaN. Returns SOT in [-10, 10], dimensionless, NaN where the tail width is ~0.
    Worked example: Q_c(90) = 10, Q_c(99) = 15, members 8..18 -> 0.4.
    """
    check_choice("tail", tail, Tail)
    p = _check_climate(climate, quantile_dim)
    level, inner, outer = (0.9, 0.9, 0.99) if tail == "upper" else (0.1, 0.1, 0.01)
    picks = []
    for want in (inner, outer):
        i = int(np.argmin(np.abs(p - want)))
        if abs(p[i] - want) > 1e-6:
            raise DataError(
                f"climate {quantile_dim!r} has no {want:g} quantile, which SOT ({tail}) needs"
            )
        picks.append(climate.isel({quantile_dim: i}, drop=True))
    m, forecast, q_inner = checked_inputs(forecast, picks[0], member_dim, dim=dim)
    point = xr.apply_ufunc(
        _sot_kernel,
        forecast,
        q_inner,
        picks[1],
        input_core_dims=[[member_dim], [], []],
        kwargs={"level": level, "eps": eps},
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    out = weighted_mean(point, dim, weights=weights, skipna=skipna)
    pct = (90, 99) if tail == "upper" else (10, 1)
    return finish_score(
        out,
        {
            "long_name": f"Shift of Tails ({tail})",
            "units": "1",
            "estimator": f"(Q_f({pct[0]}) - Q_c({pct[1]})) / (Q_c({pct[1]}) - Q_c({pct[0]})), "
            f"clipped to [-10, 10]",
        },
        ensemble_size=m,
        name="sot",
    )
