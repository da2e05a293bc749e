"""The AR(1) noise process of the stochastic SFNO: its statistics, per-member bits, white-noise
limit (the bits of earlier versions), antithetic states, config and old checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hens.forecast.errors import ConfigError, DataError
from hens.models.sfno.noise import (
    SphericalNoise, advance_coefficients, ar1_factor, draw_coefficients, make_generator,
)
from hens.models.sfno.network import SFNOConfig
from hens.models.sfno.stochastic import StochasticSFNO, StochasticSFNOConfig
from hens.models.stepper import Stepper

torch.set_num_threads(1)
MEMBERS, STEPS = 256, 24


def _model(tau: float, injection: str = "input") -> StochasticSFNO:
    torch.manual_seed(0)
    base = SFNOConfig(3, 3, grid="16x32", embed_dim=8, num_layers=2, norm="layer" if injection != "input" else "none")
    return StochasticSFNO(StochasticSFNOConfig(base, injection=injection, noise_decorrelation_hours=tau)).eval()


def _fields(tau: float) -> torch.Tensor:
    """``(STEPS, MEMBERS, 2, 16, 32)`` noise fields of an AR(1) rollout from a stationary start."""
    noise = SphericalNoise("16x32", (500.0, 4000.0))
    gen, phi, state, out = make_generator(0), ar1_factor(tau), None, []
    for _ in range(STEPS):
        draw = noise.draw(gen, MEMBERS)
        state = draw if state is None else advance_coefficients(state, draw, phi)
        out.append(noise.isht(state))
    return torch.stack(out).double()


def test_ar1_factor_uses_the_model_step():
    assert ar1_factor(6.0) == pytest.approx(math.exp(-1.0))  # FourCastNet 3's default: one step
    assert ar1_factor(24.0) == pytest.approx(math.exp(-0.25)) and ar1_factor(0.0) == 0.0
    assert ar1_factor(12.0, step_hours=3.0) == pytest.approx(math.exp(-0.25))
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ConfigError, match="decorrelation"):
            ar1_factor(bad)


@pytest.mark.parametrize("tau", [0.0, 6.0, 24.0])
def test_lag_one_correlation_is_phi_and_the_variance_stays_one(tau):
    """Point-wise statistics over members, pooled over grid points and steps.

    For one grid point the lag-one correlation of M series of T steps has a standard error
    of about sqrt((1 - phi^2) / (M T)); averaging over correlated grid points does not raise
    it. The sample variance of M unit normals has standard error sqrt(2 / M) per point; over
    T steps of an AR(1) series (squares correlated by phi^2k) sqrt(2 / (M T) (1 + phi^2) /
    (1 - phi^2)). Tolerances: 4 standard errors.
    """
    phi = ar1_factor(tau)
    f = _fields(tau)  # (T, M, channel, lat, lon)
    weights = torch.from_numpy(SphericalNoise("16x32").grid.area_weights)[:, None].double()
    weights = weights / (weights.sum() * f.shape[-1])
    for c in range(f.shape[2]):
        x = f[:, :, c]
        lag = ((x[1:] * x[:-1]).mean(1) * weights).sum((-2, -1)).mean()
        var = ((x**2).mean(1) * weights).sum((-2, -1))  # per step, the mean is zero by construction
        corr = float(lag / var.mean())
        assert corr == pytest.approx(phi, abs=4 * math.sqrt((1 - phi**2) / (MEMBERS * (STEPS - 1))))
        np.testing.assert_allclose(var.numpy(), 1.0, atol=4 * math.sqrt(2 / MEMBERS))  # every step, the first too
        late = 2 / (MEMBERS * STEPS / 2) * (1 + phi**2) / (1 - phi**2)
        assert float(var[STEPS // 2 :].mean()) == pytest.approx(1.0, abs=4 * math.sqrt(late))  # no drift


def test_white_noise_is_the_plain_draws_of_earlier_versions():
    """tau = 0: every state is the generator's next plain draw, so a rollout threading the
    state gives the bits of the stateless ``stepper(x, generator)`` calls of earlier versions."""
    model = _model(0.0)
    stepper = Stepper(model, mean=[0.0, 1.0, 2.0], std=[1.0, 2.0, 3.0], tendency_std=[0.1, 0.2, 0.3])
    x0 = torch.randn(2, 3, 16, 32)
    gens_a, gens_b = [make_generator(s) for s in (4, 9)], [make_generator(s) for s in (4, 9)]
    a, b, noise = x0, x0, None
    with torch.no_grad():
        for _ in range(3):
            noise = stepper.next_noise(gens_a, 2, noise)
            a = stepper(a, noise=noise)
            b = stepper(b, gens_b)
    assert torch.equal(a, b)


def test_a_members_states_are_its_own_whatever_the_batch():
    """Member seed 5 alone, second in a batch, first in another: the same bits at every step."""
    model = _model(24.0)
    batches = [[5], [3, 5], [5, 11, 2]]
    gens = [[make_generator(s) for s in seeds] for seeds in batches]
    states: list[torch.Tensor | None] = [None] * len(batches)
    for _ in range(4):
        states = [model.next_noise(g, len(g), s) for g, s in zip(gens, states)]
        rows = [s[seeds.index(5)] for s, seeds in zip(states, batches)]
        assert all(torch.equal(rows[0], r) for r in rows[1:])
    assert not torch.equal(states[1][0], states[1][1])


def test_an_antithetic_member_carries_the_negated_state():
    """Negating the start and every draw negates every state exactly, so ``-state`` at each
    step is the antithetic member's AR(1) state; the model runs on it like on any state."""
    model = _model(6.0, injection="both")
    phi = model.cfg.noise_phi
    gen = make_generator(8)
    plus = minus = None
    for _ in range(3):
        draw = model.draw(gen, 2)
        plus = draw if plus is None else advance_coefficients(plus, draw, phi)
        minus = -draw if minus is None else advance_coefficients(minus, -draw, phi)
        assert torch.equal(minus, -plus)
    x = torch.randn(2, 3, 16, 32)
    with torch.no_grad():
        assert not torch.allclose(model(x, noise=plus), model(x, noise=minus))


def test_next_noise_advances_by_phi():
    model = _model(12.0)
    phi = math.exp(-0.5)
    g1, g2 = make_generator(3), make_generator(3)
    start = model.next_noise(g1, 2)
    assert torch.equal(start, model.draw(g2, 2))  # a stationary start is a plain draw
    step = model.next_noise(g1, 2, start)
    expected = phi * start + math.sqrt(1 - phi**2) * model.draw(g2, 2)
    torch.testing.assert_close(step, expected, rtol=1e-6, atol=1e-7)
    with pytest.raises(DataError, match="does not fit"):
        model.next_noise(g1, 1, start)


def test_config_records_the_decorrelation_and_old_dicts_are_white():
    base = SFNOConfig(3, 3, grid="16x32", norm="layer")
    cfg = StochasticSFNOConfig(base, injection="both", noise_decorrelation_hours=12)
    assert cfg.to_dict()["noise_decorrelation_hours"] == 12.0 and cfg.noise_phi == pytest.approx(math.exp(-0.5))
    assert StochasticSFNOConfig.from_dict(cfg.to_dict()) == cfg
    assert StochasticSFNOConfig(base).noise_decorrelation_hours == 6.0  # FourCastNet 3's
    old = {k: v for k, v in cfg.to_dict().items() if k != "noise_decorrelation_hours"}
    assert StochasticSFNOConfig.from_dict(old).noise_decorrelation_hours == 0.0
    assert "AR(1), tau 12 h (phi 0.607 per step)" in cfg.describe()
    assert "white in time" in StochasticSFNOConfig.from_dict(old).describe()
    with pytest.raises(ConfigError, match="decorrelation"):
        StochasticSFNOConfig(base, noise_decorrelation_hours=-6)
    with pytest.raises(ConfigError, match="bad stochastic SFNO config keys: tau"):
        StochasticSFNOConfig.from_dict({**cfg.to_dict(), "tau": 1})


def test_white_states_from_one_batch_generator_are_its_plain_draws():
    """The training path (one generator for all rows) keeps the draws of earlier versions."""
    model = _model(0.0)
    amps = model.amplitudes
    g1, g2 = make_generator(1), make_generator(1)
    state = None
    for _ in range(3):
        state = model.next_noise(g1, 4, state)
        assert torch.equal(state, draw_coefficients(amps, g2, 4))
