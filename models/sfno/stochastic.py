"""Stochastic SFNO: an :class:`~hens.models.sfno.network.SFNO` driven by seeded spherical noise.

The noise (:mod:`hens.models.sfno.noise`: Gaussian random fields, unit point-wise std, a few
correlation lengths) is a per-member state that an AR(1) process with decorrelation time
``noise_decorrelation_hours`` advances once per step (FourCastNet 3; 0: white noise, a fresh
draw every step). Whoever rolls the model out holds the state: :meth:`StochasticSFNO.next_noise`
advances it from the member's generator and ``forward(x, noise=state)`` runs a step with it;
``forward(x, generator)`` draws a stationary state for one step. The fields enter the network:

* ``injection="input"``: the noise fields are extra input channels (FourCastNet 3's
  "concatenate" auxiliary channels);
* ``injection="norm"``: every block norm is a conditional layer norm of the noise fields
  (AIFS-CRPS), on the block's output grid;
* ``"both"``.

The noise is drawn from ``torch.Generator`` objects passed by the caller, on their device (the
engine's are on the model's device), so a member is a pure function of (checkpoint, seed,
device kind): the same generator state gives a bit-identical output.
Train it with an ensemble CRPS over M >= 2 members (``hens.models.training.losses.crps``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hens.forecast.errors import ConfigError, DataError
from hens.forecast.types import check_choice
from hens.models.sfno.layers import SphericalTransform
from hens.models.sfno.noise import (
    DEFAULT_DECORRELATION_HOURS, DEFAULT_LENGTHS_KM, Generators, advance_coefficients, amplitude_table, ar1_factor,
    draw_coefficients,
)
from hens.models.sfno.network import SFNO, SFNOConfig
from hens.models.types import NoiseInjection


@dataclass(frozen=True)
class StochasticSFNOConfig:
    """A :class:`SFNOConfig` for the physical channels plus the noise.

    Attributes
    ----------
    sfno
        Architecture; ``in_channels`` counts physical channels only (noise channels are added).
    noise_lengths_km
        Correlation length of each noise channel.
    injection
        ``"input"``, ``"norm"`` or ``"both"`` (see the module docstring).
    noise_decorrelation_hours
        Decorrelation time ``tau`` of the AR(1) noise process (hours, >= 0; 0: white noise).
        A config dict without it (checkpoints from before it existed) means 0.
    """

    sfno: SFNOConfig
    noise_lengths_km: tuple[float, ...] = DEFAULT_LENGTHS_KM
    injection: NoiseInjection = "input"
    noise_decorrelation_hours: float = DEFAULT_DECORRELATION_HOURS

    def __post_init__(self) -> None:
        check_choice("injection", self.injection, NoiseInjection)
        object.__setattr__(self, "noise_decorrelation_hours", float(self.noise_decorrelation_hours))
        ar1_factor(self.noise_decorrelation_hours)  # raises for a negative or infinite time
        lengths = tuple(float(v) for v in self.noise_lengths_km)
        if not lengths or min(lengths) <= 0:
            raise ConfigError(f"noise_lengths_km={self.noise_lengths_km} must be positive lengths")
        object.__setattr__(self, "noise_lengths_km", lengths)
        if self.sfno.cond_dim:
            raise ConfigError("set injection='norm' instead of sfno.cond_dim in a stochastic SFNO")
        if self.injection != "input" and self.sfno.norm != "layer":
            raise ConfigError(f"injection={self.injection!r} uses conditional layer norms: set sfno norm='layer'")

    @property
    def noise_channels(self) -> int:
        return len(self.noise_lengths_km)

    @property
    def noise_phi(self) -> float:
        """Lag-one (one model step) correlation of the noise, ``exp(-dt / tau)``."""
        return ar1_factor(self.noise_decorrelation_hours)

    def describe(self) -> str:
        """One line: noise channels, injection and time correlation (``hens checkpoint``)."""
        tau = self.noise_decorrelation_hours
        memory = f"AR(1), tau {tau:g} h (phi {self.noise_phi:.3f} per step)" if tau else "white in time"
        lengths = ", ".join(f"{v:g}" for v in self.noise_lengths_km)
        return f"{self.noise_channels} channels ({lengths} km), injection {self.injection}, {memory}"

    def network_config(self) -> SFNOConfig:
        """The config of the inner SFNO (noise channels and conditioning added)."""
        extra = self.noise_channels
        return dataclasses.replace(
            self.sfno,
            in_channels=self.sfno.in_channels + (extra if self.injection != "norm" else 0),
            cond_dim=extra if self.injection != "input" else 0,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sfno": self.sfno.to_dict(),
            "noise_lengths_km": list(self.noise_lengths_km),
            "injection": self.injection,
            "noise_decorrelation_hours": self.noise_decorrelation_hours,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> StochasticSFNOConfig:
        """Inverse of :meth:`to_dict`; a dict without ``noise_decorrelation_hours`` is white noise."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown or "sfno" not in values:
            raise ConfigError(f"bad stochastic SFNO config keys: {', '.join(unknown) or 'sfno missing'}")
        # checkpoints written before the AR(1) noise drew white noise: keep their bits
        rest = {"noise_decorrelation_hours": 0.0, **{k: v for k, v in values.items() if k != "sfno"}}
        if "noise_lengths_km" in rest:
            rest["noise_lengths_km"] = tuple(rest["noise_lengths_km"])
        return cls(sfno=SFNOConfig.from_dict(values["sfno"]), **rest)


def _grid_major(coeffs: torch.Tensor) -> torch.Tensor:
    """Complex ``(B, D, L, M)`` -> real ``(L, M, B, D, 2)`` for :meth:`SphericalTransform.synthesis`."""
    return torch.view_as_real(coeffs).permute(2, 3, 0, 1, 4).contiguous()


class StochasticSFNO(nn.Module):
    """``forward(x, generator | noise=state) -> (B, C_out, H, W)``: one step.

    Parameters of ``forward``
    -------------------------
    x
        ``(B, C_in, H, W)`` normalised input.
    generator
        Generator(s) on one device: one for the batch or one per row (see
        :func:`hens.models.sfno.noise.draw_coefficients`); draws a stationary noise state.
    noise
        Instead of ``generator``: the noise state, complex coefficients
        ``(B, noise_channels, L, L)`` (from :meth:`next_noise`, negated for an antithetic
        member).
    """

    def __init__(self, cfg: StochasticSFNOConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = SFNO(cfg.network_config())
        lmax = self.net.cfg.truncation
        self.register_buffer("amplitudes", amplitude_table(lmax, cfg.noise_lengths_km), persistent=False)

    def draw(self, generator: Generators, batch: int) -> torch.Tensor:
        """Noise coefficients for ``batch`` rows, drawn on the generators' device."""
        return draw_coefficients(self.amplitudes, generator, batch)

    def next_noise(self, generator: Generators, batch: int, state: torch.Tensor | None = None) -> torch.Tensor:
        """The noise state of the next step: a stationary draw to start a rollout (``state``
        ``None``), else one AR(1) step from ``state`` (:func:`~hens.models.sfno.noise.advance_coefficients`).

        Every step draws once from each generator, so a member's states are a pure function of
        its generator's seed, and for white noise they are the draws of :meth:`draw`.
        """
        draw = self.draw(generator, batch)
        return draw if state is None else advance_coefficients(state, draw, self.cfg.noise_phi)

    def noise_fields(self, coeffs: torch.Tensor, transform: SphericalTransform) -> torch.Tensor:
        """Noise on ``transform``'s grid, ``(B, D, nlat, nlon)``."""
        fields = transform.synthesis(_grid_major(coeffs.to(self.amplitudes.device)))
        return fields.permute(2, 3, 0, 1)

    def forward(
        self, x: torch.Tensor, generator: Generators | None = None, *, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        if (generator is None) == (noise is None):
            raise ValueError("pass exactly one of generator (torch.Generator) or noise coefficients")
        if noise is None:
            noise = self.draw(generator, x.shape[0])
        expected = (x.shape[0], *self.amplitudes.shape[:-1])
        if tuple(noise.shape) != expected:
            raise DataError(f"noise coefficients {tuple(noise.shape)} should be {expected}")
        net = self.net
        on_data = self.noise_fields(noise, net.t_data).to(x.dtype)
        cond = None
        if self.cfg.injection != "input":
            on_internal = on_data if net.t_internal is net.t_data else self.noise_fields(noise, net.t_internal)
            cond = (on_data, on_internal.to(x.dtype))
        if self.cfg.injection != "norm":
            x = torch.cat([x, on_data], dim=1)
        return net(x, cond)
