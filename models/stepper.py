"""One 6-hour model step in physical units: normalise, predict the increment, de-normalise.

    z      = (x - mean) / std                        per-channel z-score
    dz     = model([z, forcings(t)])                 the network's output
    x_next = x + tendency_std * dz                   increment in units of the 6 h tendency std

The network thus predicts the residual increment scaled by the per-channel standard deviation
of 6-hour tendencies, so every output channel has unit scale. ``forcings(t)`` are the fields of
:mod:`hens.models.forcings` at the state's valid time ``t`` (none for a model trained without).
Training (``hens train``) and the ensemble engine use the same :class:`Stepper`; a stochastic
model takes its noise generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from hens.forecast.errors import DataError
from hens.models.forcings import check_forcings, forcing_fields
from hens.models.noise import Generators


def _stat(values: Sequence[float] | torch.Tensor, name: str, channels: int | None) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=torch.float32).flatten()
    if channels is not None and t.numel() != channels:
        raise DataError(f"normalisation {name} has {t.numel()} values for {channels} channels")
    if not torch.isfinite(t).all() or (name != "mean" and (t <= 0).any()):
        raise DataError(f"normalisation {name} must be finite{'' if name == 'mean' else ' and > 0'}")
    return t.view(1, -1, 1, 1)


class Stepper(nn.Module):
    """Physical state ``(B, C, H, W)`` -> next physical state, 6 hours later.

    Parameters
    ----------
    model
        An :class:`~hens.models.sfno.SFNO` or :class:`~hens.models.stochastic_sfno.StochasticSFNO`
        with ``C`` input and output channels.
    mean, std, tendency_std
        Per-channel statistics, ``C`` values each (physical units).
    forcings
        Forcing names (:data:`hens.models.forcings.FORCINGS`) appended to the model's input;
        then every call needs the valid ``time`` of the states.
    """

    def __init__(
        self,
        model: nn.Module,
        mean: Sequence[float] | torch.Tensor,
        std: Sequence[float] | torch.Tensor,
        tendency_std: Sequence[float] | torch.Tensor,
        forcings: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.model = model
        self.forcings = check_forcings(forcings)
        channels = len(torch.as_tensor(mean).flatten())
        self.register_buffer("mean", _stat(mean, "mean", None))
        self.register_buffer("std", _stat(std, "std", channels))
        self.register_buffer("tendency_std", _stat(tendency_std, "tendency_std", channels))

    @property
    def stochastic(self) -> bool:
        """Whether :meth:`forward` needs a noise generator."""
        return hasattr(self.model, "draw")

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inputs(self, x: torch.Tensor, time: np.ndarray | np.datetime64 | None) -> torch.Tensor:
        """The network's input: z-scored ``x`` and the forcing fields at ``time``."""
        z = self.normalise(x)
        if not self.forcings:
            return z
        if time is None:
            raise ValueError(f"this model takes forcings ({', '.join(self.forcings)}): pass the valid time")
        fields = forcing_fields(self.forcings, time, *x.shape[-2:]).to(device=z.device, dtype=z.dtype)
        if fields.shape[0] not in (1, x.shape[0]):
            raise DataError(f"{fields.shape[0]} valid times for {x.shape[0]} states")
        return torch.cat([z, fields.expand(x.shape[0], -1, -1, -1)], dim=1)

    def increment(
        self, x: torch.Tensor, generator: Generators | None = None, *, noise: torch.Tensor | None = None,
        time: np.ndarray | np.datetime64 | None = None,
    ) -> torch.Tensor:
        """The network's output ``dz`` for the physical state ``x`` valid at ``time`` (units of tendency std)."""
        z = self.inputs(x, time)
        if self.stochastic:
            return self.model(z, generator, noise=noise)
        if generator is not None or noise is not None:
            raise ValueError("a deterministic model takes no generator or noise")
        return self.model(z)

    def forward(
        self, x: torch.Tensor, generator: Generators | None = None, *, noise: torch.Tensor | None = None,
        time: np.ndarray | np.datetime64 | None = None,
    ) -> torch.Tensor:
        """The state 6 hours after ``x``; ``time``: valid time of ``x`` (one, or one per row)."""
        return x + self.tendency_std * self.increment(x, generator, noise=noise, time=time)
