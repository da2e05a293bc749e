"""Training losses: area-weighted MSE, adjusted spectral MSE, ensemble CRPS, spectral CRPS.

All functions are differentiable torch code and share one reduction rule:

* ``weights=None``: no spatial reduction, the point-wise score is returned;
* ``weights`` given: the weighted mean over the trailing ``weights.ndim`` dims,
  ``sum(w * s) / sum(w)`` with ``w`` broadcast to those dims; leading dims are kept.
  Latitude weights must therefore be shaped ``(nlat, 1)`` (see :func:`area_weights`),
  so that they span ``(lat, lon)``. Call ``.mean()`` on the result for a scalar loss.

CRPS estimators for members ``x_1..x_M`` and observation ``y`` (docs/models.md, Losses), with
``skill = mean_i |x_i - y|`` and ``S = sum_{i,j} |x_i - x_j|``:

============== ======================================= ==========================================
``kind``       formula                                 property
============== ======================================= ==========================================
standard       skill - S / (2 M^2)                     CRPS of the empirical CDF (properscoring)
fair           skill - S / (2 M (M-1))                 unbiased for the CRPS of the distribution
almost_fair    skill - (1 - eps) S / (2 M (M-1))       eps = (1 - alpha) / M; alpha=1 fair,
                                                       alpha=0 standard (AIFS-CRPS, anemoi)
============== ======================================= ==========================================

``S / 2`` is computed from the sorted members, ``sum_i (2 i - M - 1) x_(i)``: O(M log M) time
and O(M) memory per point, no M x M matrix. Sorting is differentiable almost everywhere.
NaNs propagate (unlike properscoring, which skips NaN members).

Adjusted MSE (:func:`amse`) splits the squared error per total wavenumber into an amplitude
and a decorrelation term and charges the decorrelation at the larger of the two powers, so a
deterministic model gains nothing by damping scales it cannot predict (the "double penalty"
that makes MSE-trained forecasts blur with lead time).

References: Subich et al. (2025) "Fixing the double penalty in data-driven weather
forecasting through a modified spherical harmonic loss function", arXiv:2501.19374;
Ferro (2014) QJRMS 140, 1917; Lang et al. (2024) "AIFS-CRPS", arXiv:2412.15832;
Bonev et al. (2025) "FourCastNet 3", arXiv:2507.12144 (spectral CRPS).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from hens.forecast.errors import ConfigError, DataError
from hens.forecast.grids import Grid, parse_grid
from hens.forecast.types import check_choice
from hens.models.types import CRPSKind

__all__ = ["amse", "area_weights", "crps", "mse", "spectral_crps"]


def area_weights(
    grid: Grid | str, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Latitude quadrature weights of ``grid`` shaped ``(nlat, 1)``, mean 1 (north first).

    Broadcast over ``(lat, lon)`` they are the normalised cell areas of the grid, so
    ``crps(..., weights=area_weights(grid))`` is the global mean of the score.
    """
    grid = parse_grid(grid)
    return torch.as_tensor(grid.area_weights, dtype=dtype, device=device).reshape(-1, 1)


def _reduce(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Weighted mean of ``values`` over the trailing ``weights.ndim`` dims (see module doc)."""
    if weights is None:
        return values
    w = torch.as_tensor(weights, dtype=values.dtype, device=values.device)
    if w.ndim == 0 or w.ndim > values.ndim:
        raise DataError(
            f"weights of shape {tuple(w.shape)} do not fit a score of shape {tuple(values.shape)}; "
            "pass weights over the trailing dims, e.g. (nlat, 1) or (nlat, nlon)"
        )
    trailing = values.shape[values.ndim - w.ndim :]
    try:
        if torch.broadcast_shapes(w.shape, trailing) != trailing:
            raise RuntimeError
    except RuntimeError:
        raise DataError(
            f"weights of shape {tuple(w.shape)} do not broadcast to the trailing dims "
            f"{tuple(trailing)} of the score; latitude weights must be shaped (nlat, 1)"
        ) from None
    dims = tuple(range(-w.ndim, 0))
    return (values * w).sum(dims) / w.expand(trailing).sum()


def mse(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Squared error ``(pred - target)^2``, area-weighted mean over the trailing weight dims.

    Parameters
    ----------
    pred, target
        Tensors of the same shape, e.g. ``(batch, channel, lat, lon)``.
    weights
        ``None`` (point-wise result) or weights over the trailing dims, e.g.
        :func:`area_weights` ``(nlat, 1)``.

    Returns
    -------
    torch.Tensor
        Point-wise squared error, or its weighted mean with the weighted dims removed.
    """
    if pred.shape != target.shape:
        raise DataError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    return _reduce((pred - target).square(), weights)


def _check_crps_options(kind: str, alpha: float, members: int) -> None:
    check_choice("kind", kind, CRPSKind)
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"alpha={alpha} must lie in [0, 1] (1 = fair, 0 = standard CRPS)")
    if members < 1:
        raise DataError("the ensemble has no members")
    if kind != "standard" and members < 2:
        raise ConfigError(
            f"{kind} CRPS needs at least 2 members (got {members}); use kind='standard' for M = 1"
        )


def _crps_last(x: torch.Tensor, y: torch.Tensor, kind: str, alpha: float) -> torch.Tensor:
    """Point-wise CRPS of members in the last dim of ``x`` against ``y`` (``x.shape[:-1]``)."""
    members = x.shape[-1]
    d = x - y.unsqueeze(-1)  # centred on y: translation-invariant, keeps float32 precision
    skill = d.abs().mean(-1)
    if members == 1:
        return skill
    ranks = torch.arange(1, members + 1, dtype=d.dtype, device=d.device)
    half_spread = (torch.sort(d, dim=-1).values * (2.0 * ranks - members - 1.0)).sum(-1)  # S / 2
    if kind == "standard":
        factor = 1.0 / members**2
    elif kind == "fair":
        factor = 1.0 / (members * (members - 1))
    else:
        eps = (1.0 - float(alpha)) / members
        factor = (1.0 - eps) / (members * (members - 1))
    return skill - factor * half_spread


def crps(
    pred: torch.Tensor,
    target: torch.Tensor,
    member_dim: int,
    weights: torch.Tensor | None = None,
    *,
    kind: CRPSKind = "standard",
    alpha: float = 0.95,
) -> torch.Tensor:
    """Ensemble CRPS, vectorised over members with the sorted-sample form.

    Parameters
    ----------
    pred
        Ensemble forecast; members along ``member_dim``, e.g. ``(batch, member, channel, lat, lon)``.
    target
        Observation with the shape of ``pred`` without ``member_dim``.
    member_dim
        Member dimension of ``pred`` (negative values count from the end).
    weights
        ``None`` (point-wise CRPS) or weights over the trailing dims of the point-wise score,
        e.g. :func:`area_weights` ``(nlat, 1)``; see the module docstring.
    kind
        ``"standard"`` (empirical CDF; properscoring, scoringrules ``"qd"``), ``"fair"``
        (unbiased; scoringrules ``"fair"``, WeatherBench2 CRPS) or ``"almost_fair"``.
    alpha
        Fairness of ``"almost_fair"`` in [0, 1]: 1 is fair, 0 standard (AIFS uses 0.95).

    Returns
    -------
    torch.Tensor
        CRPS in the units of ``target``: point-wise (shape of ``target``) or weighted mean.

    Raises
    ------
    ConfigError
        Unknown ``kind``, ``alpha`` outside [0, 1], or ``fair``/``almost_fair`` with M < 2.
    DataError
        ``target`` does not have the shape of ``pred`` without ``member_dim``.
    """
    if not -pred.ndim <= member_dim < pred.ndim:
        raise DataError(f"member_dim={member_dim} is not a dim of pred with shape {tuple(pred.shape)}")
    members = pred.shape[member_dim]
    _check_crps_options(kind, alpha, members)
    x = pred.movedim(member_dim, -1)
    if x.shape[:-1] != target.shape:
        raise DataError(
            f"target {tuple(target.shape)} must have the shape of pred {tuple(pred.shape)} "
            f"without member_dim={member_dim}, i.e. {tuple(x.shape[:-1])}"
        )
    return _reduce(_crps_last(x, target, kind, alpha), weights)


def _band_limit(grid: Grid) -> int:
    """Largest exact triangular truncation of the SHT on ``grid`` (torch-harmonics' rule)."""
    lmax = grid.nlat if grid.sht_grid == "legendre-gauss" else (grid.nlat + 1) // 2
    return min(lmax, grid.nlon // 2 + 1)


def _spectral_inputs(pred: torch.Tensor, grid: Grid | str, lmax: int | None) -> tuple[Grid, int]:
    """The parsed grid and ``lmax`` (default: the band limit), checked against it and ``pred``."""
    grid = parse_grid(grid)
    limit = _band_limit(grid)
    lmax = limit if lmax is None else int(lmax)
    if not 1 <= lmax <= limit:
        raise ConfigError(f"lmax={lmax} is outside 1..{limit}, the band limit of grid {grid.spec}")
    if pred.shape[-2:] != grid.shape:
        raise DataError(f"pred has (lat, lon) = {tuple(pred.shape[-2:])}, grid {grid.spec} needs {grid.shape}")
    return grid, lmax


@lru_cache(maxsize=16)
def _sht(grid: Grid, lmax: int, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """An orthonormal RealSHT of ``grid`` truncated at ``lmax``, built once per key."""
    from torch_harmonics import RealSHT

    sht = RealSHT(grid.nlat, grid.nlon, lmax=lmax, mmax=lmax, grid=grid.sht_grid, norm="ortho")
    return sht.to(device=device, dtype=dtype)


@lru_cache(maxsize=16)
def _lm_weights(lmax: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(lmax, lmax) weights: 1/(4 pi) at m = 0, 2/(4 pi) for 0 < m <= l, 0 for m > l."""
    l = torch.arange(lmax, device=device)
    w = torch.where(l[None, :] == 0, 1.0, 2.0) * (l[None, :] <= l[:, None])
    return (w / (4.0 * math.pi)).to(dtype)


def _coefficients(x: torch.Tensor, grid: Grid, lmax: int) -> torch.Tensor:
    """``SHT(x) / sqrt(4 pi)`` over the last two dims, in float32 (float64 for float64 input)."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    sht = _sht(grid, lmax, x.device, dtype)
    with torch.autocast(device_type=x.device.type, enabled=False):
        return sht(x.to(dtype)) * (1.0 / math.sqrt(4.0 * math.pi))


def spectral_crps(
    pred: torch.Tensor,
    target: torch.Tensor,
    member_dim: int,
    grid: Grid | str,
    *,
    kind: CRPSKind = "standard",
    alpha: float = 0.95,
    lmax: int | None = None,
    absolute: bool = True,
) -> torch.Tensor:
    """CRPS of spherical-harmonic coefficients (FourCastNet 3 / makani; docs/models.md, Losses).

    ``c_lm = SHT(x) / sqrt(4 pi)`` (orthonormal real SHT of each member and of the target);
    the CRPS of the members' ``|c_lm|`` (``absolute=True``) or of their real and imaginary
    parts separately (``absolute=False``, the two scores added) against the target's, summed
    over ``l < lmax, m <= l`` with weights ``1/(4 pi)`` at ``m = 0`` and ``2/(4 pi)`` otherwise
    (the 2 counts the ``m < 0`` coefficients of a real field).

    Parameters
    ----------
    pred
        Members along ``member_dim``; the last two dims are ``(lat, lon)`` of ``grid``,
        latitude north first.
    target
        The shape of ``pred`` without ``member_dim``.
    member_dim
        Member dimension of ``pred``; must not be one of the last two dims.
    grid
        The data grid (:class:`~hens.forecast.grids.Grid` or spec such as ``"32x64"``).
    kind, alpha
        The CRPS estimator, as in :func:`crps`.
    lmax
        Truncation (degrees ``l < lmax``); default and upper limit: the grid's exact band
        limit (``nlat`` for Legendre-Gauss, ``(nlat + 1) // 2`` for equiangular, at most
        ``nlon // 2 + 1``).
    absolute
        Score amplitudes (phase-free, constrains each member's spectrum) or real/imag parts.

    Returns
    -------
    torch.Tensor
        Shape of ``target`` without ``(lat, lon)``. Transforms run in float32 (float64 for
        float64 input); the SHT is built once per (grid, lmax, device, dtype).
    """
    grid, lmax = _spectral_inputs(pred, grid, lmax)
    if not -pred.ndim <= member_dim < pred.ndim or member_dim % pred.ndim >= pred.ndim - 2:
        raise DataError(
            f"member_dim={member_dim} must be a dim of pred {tuple(pred.shape)} before (lat, lon)"
        )
    members = pred.shape[member_dim]
    _check_crps_options(kind, alpha, members)
    x = pred.movedim(member_dim, -3)
    if x.shape[:-3] + x.shape[-2:] != target.shape:
        raise DataError(
            f"target {tuple(target.shape)} must have the shape of pred {tuple(pred.shape)} "
            f"without member_dim={member_dim}"
        )
    cx = _coefficients(x, grid, lmax)  # (..., M, L, L)
    cy = _coefficients(target, grid, lmax)  # (..., L, L)
    dtype = cx.real.dtype
    if absolute:
        score = _crps_last(cx.abs().movedim(-3, -1), cy.abs(), kind, alpha)
    else:
        score = _crps_last(cx.real.movedim(-3, -1), cy.real, kind, alpha) + _crps_last(
            cx.imag.movedim(-3, -1), cy.imag, kind, alpha
        )
    return (score * _lm_weights(lmax, pred.device, dtype)).sum((-2, -1))


def amse(
    pred: torch.Tensor,
    target: torch.Tensor,
    grid: Grid | str,
    *,
    lmax: int | None = None,
    eps: float = 1e-12,
) -> torch.Tensor:
    """Adjusted MSE (Subich et al. 2025): the spectral MSE with the double penalty removed.

    With ``c_lm = SHT(x) / sqrt(4 pi)`` and ``w_m = 1/(4 pi)`` at ``m = 0``, ``2/(4 pi)`` otherwise,
    per total wavenumber ``P_x(l) = 4 pi sum_m w_m |x_lm|^2``, likewise ``P_y``, and the
    cross power ``X(l) = 4 pi sum_m w_m Re(x_lm conj(y_lm))``, Parseval splits the area-mean
    squared error into ``sum_l (sqrt P_x - sqrt P_y)^2 + 2 (sqrt(P_x P_y) - X)``. The AMSE
    replaces the decorrelation term's ``sqrt(P_x P_y)`` by ``max(P_x, P_y)``:

        AMSE = sum_l (sqrt P_x - sqrt P_y)^2 + 2 (max(P_x, P_y) - X * max / sqrt(P_x P_y))

    i.e. ``2 max(P_x, P_y) (1 - coherence)``. It is >= the MSE, equal where the powers
    match, zero only for ``pred == target``; its minimiser keeps the target's power in every
    degree instead of damping what it cannot place.

    Parameters
    ----------
    pred, target
        Fields of one shape ``(..., lat, lon)`` on ``grid``, latitude north first.
    grid
        The data grid (:class:`~hens.forecast.grids.Grid` or spec such as ``"32x64"``).
    lmax
        Truncation (degrees ``l < lmax``); default and upper limit: the grid's exact band limit.
    eps
        Floor of ``P_x`` and ``P_y`` (squared units of the fields), so that degrees without
        power keep finite gradients.

    Returns
    -------
    torch.Tensor
        Shape of ``target`` without ``(lat, lon)``, in the squared units of the fields: the
        area-weighted mean squared error for band-limited fields whose powers match.
    """
    grid, lmax = _spectral_inputs(pred, grid, lmax)
    if pred.shape != target.shape:
        raise DataError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    cx, cy = _coefficients(pred, grid, lmax), _coefficients(target, grid, lmax)
    w = _lm_weights(lmax, cx.device, cx.real.dtype)
    scale = 4.0 * math.pi
    px = scale * (w * cx.abs().square()).sum(-1)
    py = scale * (w * cy.abs().square()).sum(-1)
    cross = scale * (w * (cx * cy.conj()).real).sum(-1)
    px, py = px.clamp_min(eps), py.clamp_min(eps)  # a degree without power: finite gradients
    amplitude = px.sqrt() - py.sqrt()
    decorrelation = 2.0 * torch.maximum(px, py) * (1.0 - cross / (px * py).sqrt())
    return (amplitude.square() + decorrelation).sum(-1)
