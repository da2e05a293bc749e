"""Stochastic SFNO and its noise: determinism per seed, unit-variance fields, injection modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hens.forecast.errors import ConfigError, DataError
from hens.models.sfno.network import SFNOConfig
from hens.models.sfno.noise import SphericalNoise, make_generator, noise_amplitudes
from hens.models.sfno.stochastic import StochasticSFNO, StochasticSFNOConfig
from hens.models.stepper import Stepper

torch.set_num_threads(1)


def _model(injection: str = "input", grid: str = "16x32", scale: int = 1) -> StochasticSFNO:
    torch.manual_seed(0)
    base = SFNOConfig(3, 3, grid=grid, embed_dim=8, num_layers=2, scale_factor=scale,
                      norm="layer" if injection != "input" else "none")
    return StochasticSFNO(StochasticSFNOConfig(base, injection=injection)).eval()


@pytest.mark.parametrize(("injection", "scale"), [("input", 1), ("norm", 2), ("both", 2)])
def test_same_seed_bit_identical_other_seed_different(injection, scale):
    model = _model(injection, scale=scale)
    with torch.no_grad():  # conditional norms start as plain layer norms: give them some weight
        for name, p in model.named_parameters():
            if "film" in name:
                p.normal_(std=0.3)
    x = torch.randn(2, 3, 16, 32)
    with torch.no_grad():
        a = model(x, make_generator(7))
        b = model(x, make_generator(7))
        c = model(x, make_generator(8))
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3


def test_member_is_a_function_of_its_seed_not_of_the_batch():
    model = _model()
    x = torch.randn(1, 3, 16, 32).expand(3, -1, -1, -1)
    with torch.no_grad():
        batch = model(x, [make_generator(s) for s in (1, 2, 3)])
        alone = model(x[:1], [make_generator(2)])
    torch.testing.assert_close(batch[1:2], alone, atol=1e-5, rtol=1e-5)
    assert (batch[0] - batch[1]).abs().max() > 1e-3  # same state, other seed: another member


def test_rollout_through_stepper_is_reproducible():
    model = _model()
    stepper = Stepper(model, mean=[0.0, 1.0, 2.0], std=[1.0, 2.0, 3.0], tendency_std=[0.1, 0.2, 0.3])
    assert stepper.stochastic
    x0 = torch.randn(1, 3, 16, 32)

    def rollout(seed: int) -> torch.Tensor:
        gen, x = make_generator(seed), x0
        with torch.no_grad():
            for _ in range(3):
                x = stepper(x, gen)
        return x

    assert torch.equal(rollout(5), rollout(5))
    assert not torch.equal(rollout(5), rollout(6))


def test_explicit_noise_and_argument_checks():
    model = _model()
    x = torch.randn(2, 3, 16, 32)
    coeffs = model.draw(make_generator(3), 2)
    with torch.no_grad():
        same = model(x, noise=coeffs)
        torch.testing.assert_close(same, model(x, make_generator(3)))
        assert not torch.allclose(same, model(x, noise=-coeffs))  # antithetic member
    with pytest.raises(ValueError, match="exactly one"):
        model(x)
    with pytest.raises(ValueError, match="exactly one"):
        model(x, make_generator(3), noise=coeffs)
    with pytest.raises(DataError, match="noise coefficients"):
        model(x, noise=coeffs[:1])
    with pytest.raises(ConfigError, match="generators for a batch"):
        model(x, [make_generator(1)])


def test_config_checks_and_round_trip():
    base = SFNOConfig(3, 3, grid="16x32", norm="layer")
    cfg = StochasticSFNOConfig(base, noise_lengths_km=[500, 2000], injection="both")
    assert cfg.noise_lengths_km == (500.0, 2000.0)
    assert StochasticSFNOConfig.from_dict(cfg.to_dict()) == cfg
    net = cfg.network_config()
    assert net.in_channels == 5 and net.cond_dim == 2
    with pytest.raises(ConfigError, match="norm='layer'"):
        StochasticSFNOConfig(SFNOConfig(3, 3, grid="16x32"), injection="norm")
    with pytest.raises(ConfigError, match="injection='noise'"):
        StochasticSFNOConfig(base, injection="noise")
    with pytest.raises(ConfigError, match="positive"):
        StochasticSFNOConfig(base, noise_lengths_km=(0.0,))
    with pytest.raises(ConfigError, match="seed"):
        make_generator(-1)


def test_noise_fields_have_unit_variance_and_ordered_smoothness():
    noise = SphericalNoise("32x64", lengths_km=(500, 1000, 2000, 4000))
    fields = noise(make_generator(0), 256)  # (256, 4, 32, 64)
    assert fields.shape == (256, 4, 32, 64)
    var = fields.var(dim=0).mean(dim=(-2, -1))  # point-wise variance over draws, averaged
    np.testing.assert_allclose(var.numpy(), 1.0, rtol=0.08)
    roughness = (fields - fields.roll(1, -1)).square().mean(dim=(0, 2, 3))
    assert torch.all(roughness[:-1] > roughness[1:])  # longer correlation, smoother field
    sigma = noise_amplitudes(32, 1000.0)
    l = np.arange(32)
    assert sigma[0] == 0.0 and np.sum(sigma**2 * (2 * l + 1)) / (4 * np.pi) == pytest.approx(1.0)


def test_model_noise_matches_standalone_helper():
    model = _model(grid="32x64")
    helper = SphericalNoise("32x64", model.cfg.noise_lengths_km, lmax=model.net.cfg.truncation)
    coeffs = model.draw(make_generator(11), 2)
    torch.testing.assert_close(helper.draw(make_generator(11), 2), coeffs)
    ours = model.noise_fields(coeffs, model.net.t_data)
    torch.testing.assert_close(ours, helper.isht(coeffs), atol=1e-5, rtol=0)


def test_per_member_generators_keep_the_cpu_bits_and_a_member_ignores_its_batch():
    from hens.models.sfno.noise import amplitude_table, draw_coefficients

    amps = amplitude_table(12, (500.0, 2000.0))
    seeds = [3, 5, 7]
    rows = draw_coefficients(amps, [make_generator(s, torch.device("cpu")) for s in seeds], 3)
    assert rows.device.type == "cpu"
    # the CPU numbers of earlier versions: one randn per row from its own CPU generator
    before = torch.stack([torch.randn(amps.shape, generator=make_generator(s)) for s in seeds])
    assert torch.equal(rows, torch.view_as_complex((before * amps).contiguous()))
    # member 5 alone, or first in another batch: the same bits at every step
    alone, other = [make_generator(5)], [make_generator(5), make_generator(11)]
    for _ in range(3):
        assert torch.equal(draw_coefficients(amps, alone, 1)[0], draw_coefficients(amps, other, 2)[0])
