"""Losses: CRPS against properscoring/scoringrules and worked examples, gradients."""

from __future__ import annotations

import math

import numpy as np
import properscoring
import pytest
import scoringrules
import torch

from hens.forecast.errors import ConfigError, DataError, GridMismatch
from hens.forecast.grids import Grid
from hens.models.training.losses import amse, area_weights, crps, mse, spectral_crps

torch.set_num_threads(1)
KINDS = ("standard", "fair", "almost_fair")


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


# ---------------------------------------------------------------- worked examples
@pytest.mark.parametrize(
    ("y", "standard", "fair", "almost_fair"),
    [(3.0, 2 / 3, 1 / 3, 0.35), (5.0, 2.0, 5 / 3, 1.683333), (0.0, 1.666667, 1.333333, 1.35)],
)
def test_worked_example(y, standard, fair, almost_fair):
    x = _t([[1.0, 2.0, 4.0]])
    obs = _t([y])
    assert crps(x, obs, 1).item() == pytest.approx(standard, abs=1e-6)
    assert crps(x, obs, 1, kind="fair").item() == pytest.approx(fair, abs=1e-6)
    assert crps(x, obs, 1, kind="almost_fair", alpha=0.95).item() == pytest.approx(almost_fair, abs=1e-6)


def test_worked_example_member_order_and_dim():
    x = _t([4.0, 1.0, 2.0])  # unsorted, members in dim 0, scalar target
    assert crps(x, _t(3.0), 0).item() == pytest.approx(2 / 3, abs=1e-12)
    assert crps(x, _t(3.0), -1, kind="fair").item() == pytest.approx(1 / 3, abs=1e-12)


def test_area_weighted_example():
    # two cells, members [1, 2, 4], y = 3 and y = 5 -> point CRPS [2/3, 2.0]
    x = _t([[1.0, 1.0], [2.0, 2.0], [4.0, 4.0]])
    y = _t([3.0, 5.0])
    assert crps(x, y, 0, _t([0.25, 0.75])).item() == pytest.approx(1.6667, abs=1e-4)
    assert crps(x, y, 0, _t([1.0, 3.0])).item() == pytest.approx(0.25 * 2 / 3 + 0.75 * 2.0, abs=1e-12)


# ---------------------------------------------------------------- reference libraries
@pytest.mark.parametrize("members", [1, 2, 3, 8, 21])
def test_standard_matches_properscoring(members):
    rng = np.random.default_rng(members)
    fc = rng.normal(size=(5, 7, members)) * 3 + 1
    obs = rng.normal(size=(5, 7))
    fc[0, 0, :] = 0.5  # ties, including the observation's value
    obs[0, 0] = 0.5
    expected = properscoring.crps_ensemble(obs, fc, axis=-1)
    got = crps(torch.from_numpy(fc), torch.from_numpy(obs), -1).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("members", [2, 5, 16])
def test_fair_matches_scoringrules(members):
    rng = np.random.default_rng(100 + members)
    fc = rng.normal(size=(members, 4, 6)) * 2
    obs = rng.normal(size=(4, 6))
    expected = scoringrules.crps_ensemble(obs, np.moveaxis(fc, 0, -1), m_axis=-1, estimator="fair")
    got = crps(torch.from_numpy(fc), torch.from_numpy(obs), 0, kind="fair").numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    standard = scoringrules.crps_ensemble(obs, np.moveaxis(fc, 0, -1), m_axis=-1, estimator="nrg")
    np.testing.assert_allclose(crps(torch.from_numpy(fc), torch.from_numpy(obs), 0).numpy(), standard, atol=1e-6)


def test_float32_large_offsets_keep_precision():
    # z500-like magnitudes: the estimator is centred on y, so float32 stays accurate
    rng = np.random.default_rng(3)
    fc = (55000.0 + rng.normal(size=(64, 16)) * 50).astype(np.float32)
    obs = (55000.0 + rng.normal(size=64) * 50).astype(np.float32)
    expected = properscoring.crps_ensemble(obs.astype(np.float64), fc.astype(np.float64), axis=-1)
    got = crps(torch.from_numpy(fc), torch.from_numpy(obs), 1).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=0)


def test_pairwise_brute_force_and_alpha_limits():
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.normal(size=(3, 6)))
    y = torch.from_numpy(rng.normal(size=3))
    m = x.shape[1]
    skill = (x - y[:, None]).abs().mean(1)
    pair_sum = (x[:, :, None] - x[:, None, :]).abs().sum((1, 2))
    for alpha in (0.0, 0.3, 0.95, 1.0):
        eps = (1 - alpha) / m
        brute = skill - (1 - eps) * pair_sum / (2 * m * (m - 1))
        torch.testing.assert_close(crps(x, y, 1, kind="almost_fair", alpha=alpha), brute)
    torch.testing.assert_close(crps(x, y, 1, kind="almost_fair", alpha=0.0), crps(x, y, 1))
    torch.testing.assert_close(crps(x, y, 1, kind="almost_fair", alpha=1.0), crps(x, y, 1, kind="fair"))
    mixed = 0.95 * crps(x, y, 1, kind="fair") + 0.05 * crps(x, y, 1)
    torch.testing.assert_close(crps(x, y, 1, kind="almost_fair"), mixed)


def test_single_member_is_mae_and_fair_raises():
    x = _t([[1.0], [2.0]])
    y = _t([3.0, 0.0])
    torch.testing.assert_close(crps(x, y, 1), _t([2.0, 2.0]))
    for kind in ("fair", "almost_fair"):
        with pytest.raises(ConfigError, match="at least 2 members"):
            crps(x, y, 1, kind=kind)


def test_bad_options_and_shapes():
    x, y = torch.zeros(2, 3), torch.zeros(2)
    with pytest.raises(ConfigError, match="kind='crps' is not an option"):
        crps(x, y, 1, kind="crps")
    with pytest.raises(ConfigError, match="alpha"):
        crps(x, y, 1, kind="almost_fair", alpha=1.5)
    with pytest.raises(DataError, match="without member_dim"):
        crps(x, torch.zeros(3), 1)
    with pytest.raises(DataError, match="member_dim"):
        crps(x, y, 2)
    with pytest.raises(DataError, match=r"\(nlat, 1\)"):
        crps(torch.zeros(4, 3, 5), torch.zeros(3, 5), 0, torch.ones(3))
    with pytest.raises(DataError, match="shape"):
        mse(torch.zeros(2, 3), torch.zeros(3, 2))


def test_nan_propagates():
    x = _t([[1.0, float("nan"), 4.0]])
    assert torch.isnan(crps(x, _t([3.0]), 1)).all()


# ---------------------------------------------------------------- area weighting
def test_area_weights_and_mse():
    grid = Grid(8, 16)
    w = area_weights(grid, dtype=torch.float64)
    assert w.shape == (8, 1) and w.mean().item() == pytest.approx(1.0)
    torch.testing.assert_close(w[:, 0], w.flip(0)[:, 0])  # symmetric about the equator
    pred = torch.ones(2, 3, 8, 16, dtype=torch.float64)
    target = torch.zeros_like(pred)
    target[..., :4, :] = 2.0  # northern half off by 1
    assert mse(pred, target, w).shape == (2, 3)
    torch.testing.assert_close(mse(pred, target, w), torch.ones(2, 3, dtype=torch.float64))
    # a field that is 1 on one row only: its weighted mean is that row's area fraction
    target = torch.zeros_like(pred)
    target[..., 0, :] = 1.0
    frac = grid.quadrature_weights[0] / grid.quadrature_weights.sum()
    assert mse(torch.zeros_like(pred), target, w)[0, 0].item() == pytest.approx(frac)
    assert mse(pred, target).shape == pred.shape


# ---------------------------------------------------------------- spectral CRPS
def _field_from_coefficients(grid: Grid, coeffs: dict[tuple[int, int], complex]) -> torch.Tensor:
    from torch_harmonics import InverseRealSHT

    lmax = grid.nlat
    isht = InverseRealSHT(grid.nlat, grid.nlon, lmax=lmax, mmax=lmax, grid=grid.sht_grid)
    c = torch.zeros(lmax, lmax, dtype=torch.complex128)
    for (l, m), v in coeffs.items():
        c[l, m] = v
    return isht(c)


def test_spectral_crps_known_coefficients():
    grid = Grid(8, 16)
    target = _field_from_coefficients(grid, {(2, 1): 1.0 + 0.0j})
    members = torch.stack(
        [_field_from_coefficients(grid, {(2, 1): a + 0.0j}) for a in (1.0, 2.0, 4.0)]
    )
    # amplitudes |c| / sqrt(4 pi): members [1, 2, 4] / s, target 3 / s ... scaled example
    target3 = 3.0 * target
    s = math.sqrt(4 * math.pi)
    got = spectral_crps(members, target3, 0, grid)
    # only (l=2, m=1) is non-zero: weight 2/(4 pi), CRPS of [1,2,4]/s vs 3/s = (2/3)/s
    assert got.item() == pytest.approx(2 / (4 * math.pi) * (2 / 3) / s, rel=1e-6)
    fair = spectral_crps(members, target3, 0, grid, kind="fair", absolute=False)
    assert fair.item() == pytest.approx(2 / (4 * math.pi) * (1 / 3) / s, rel=1e-6)


def test_spectral_crps_shapes_errors_and_float32():
    grid = Grid(8, 16)
    pred = torch.randn(2, 4, 3, 8, 16)  # (batch, member, channel, lat, lon)
    target = torch.randn(2, 3, 8, 16)
    out = spectral_crps(pred, target, 1, grid, kind="almost_fair")
    assert out.shape == (2, 3) and out.dtype == torch.float32 and (out > 0).all()
    assert spectral_crps(pred, target, 1, "8x16", lmax=4).shape == (2, 3)
    with pytest.raises(ConfigError, match="band limit"):
        spectral_crps(pred, target, 1, grid, lmax=9)
    with pytest.raises(DataError, match="before"):
        spectral_crps(pred, target, -1, grid)
    with pytest.raises(GridMismatch):
        spectral_crps(pred, target, 1, "8x16:equiangular-nopoles")
    with pytest.raises(ConfigError, match="at least 2"):
        spectral_crps(pred[:, :1], target, 1, grid, kind="fair")


# ---------------------------------------------------------------- adjusted MSE (Subich et al. 2025)
def _transforms(grid: Grid) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Float64 forward and inverse SHT of ``grid`` at its band limit."""
    from torch_harmonics import InverseRealSHT, RealSHT

    kw = {"lmax": grid.nlat, "mmax": grid.nlat, "grid": grid.sht_grid}
    return RealSHT(*grid.shape, **kw).double(), InverseRealSHT(*grid.shape, **kw).double()


def _band_limited(grid: Grid, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Random fields with every degree below the grid's band limit, float64."""
    sht, isht = _transforms(grid)
    noise = torch.randn(*shape, *grid.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return isht(sht(noise))


def test_amse_equals_mse_where_powers_match_and_exceeds_it_elsewhere():
    grid = Grid(16, 32)
    w = area_weights(grid, dtype=torch.float64)
    x, y = _band_limited(grid, (3, 2), 0), _band_limited(grid, (3, 2), 1)
    # a rotation in longitude keeps the power of every degree: AMSE is the MSE (Parseval)
    rotated = torch.roll(x, 5, dims=-1)
    # to 1e-6: torch-harmonics keeps its Legendre tables in float32
    torch.testing.assert_close(amse(x, rotated, grid), mse(x, rotated, w), rtol=1e-6, atol=0.0)
    assert (amse(x, y, grid) > mse(x, y, w) * 1.0001).all()
    assert amse(x, x, grid).abs().max() < 1e-9
    assert amse(x, y, grid).shape == (3, 2)


def test_amse_does_not_reward_damping():
    """A forecast with the target's power in every degree but unrelated phases: MSE prefers
    it damped to nothing, AMSE at full amplitude."""
    grid = Grid(16, 32)
    sht, isht = _transforms(grid)
    w = area_weights(grid, dtype=torch.float64)
    y = _band_limited(grid, (8,), 3)
    cx, cy = sht(_band_limited(grid, (8,), 2)), sht(y)
    m_weight = torch.where(torch.arange(grid.nlat) == 0, 1.0, 2.0).double()
    power = lambda c: (m_weight * c.abs().square()).sum(-1, keepdim=True)  # noqa: E731
    x = isht(cx * (power(cy) / power(cx)).sqrt())
    gains = torch.linspace(0.0, 2.0, 21, dtype=torch.float64)
    m = torch.stack([mse(g * x, y, w).mean() for g in gains])
    a = torch.stack([amse(g * x, y, grid).mean() for g in gains])
    assert gains[m.argmin()] <= 0.2
    assert gains[a.argmin()] == 1.0


def test_amse_errors_and_gradient():
    grid = Grid(8, 16)
    pred = torch.randn(2, 8, 16)
    with pytest.raises(DataError, match="differ in shape"):
        amse(pred, pred[:1], grid)
    with pytest.raises(DataError, match="grid 4x8"):
        amse(pred, pred, "4x8")
    with pytest.raises(ConfigError, match="band limit"):
        amse(pred, pred, grid, lmax=9)
    gen = torch.Generator().manual_seed(4)
    p = torch.randn(2, 4, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    target = torch.randn(2, 4, 8, dtype=torch.float64, generator=gen)
    assert torch.autograd.gradcheck(lambda q: amse(q, target, "4x8"), (p,))


# ---------------------------------------------------------------- gradients
def test_gradcheck_mse_and_crps():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 3, 4, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    target = torch.randn(2, 4, 5, dtype=torch.float64, generator=gen)
    w = torch.rand(4, 1, dtype=torch.float64, generator=gen) + 0.5
    assert torch.autograd.gradcheck(lambda p: mse(p[:, 0], target, w), (pred,))
    for kind in KINDS:
        assert torch.autograd.gradcheck(
            lambda p, kind=kind: crps(p, target, 1, w, kind=kind, alpha=0.9), (pred,)
        )


def test_gradcheck_spectral_crps():
    gen = torch.Generator().manual_seed(1)
    pred = torch.randn(3, 4, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    target = torch.randn(4, 8, dtype=torch.float64, generator=gen)
    for kind in KINDS:
        for absolute in (True, False):
            assert torch.autograd.gradcheck(
                lambda p, k=kind, a=absolute: spectral_crps(p, target, 0, "4x8", kind=k, absolute=a),
                (pred,),
            )
