"""One 6-hour model step in physical units: normalise, run the network, de-normalise.

    z      = (x - mean) / std                        per-channel z-score
    out    = model([z, forcings(t), static])         the network's output
    x_next = x + tendency_std * out                  output="increment" (hens checkpoints)
    x_next = mean + std * out                        output="state" (published SFNO packages)

hens' own networks predict the residual increment scaled by the per-channel standard
deviation of 6-hour tendencies, so every output channel has unit scale; NVIDIA's packages
predict the whole normalised next state (docs/packages.md). ``forcings(t)`` are the fields of
:mod:`hens.models.forcings` at the state's valid time ``t`` (none for a model trained
without), ``static`` fixed fields such as :mod:`hens.models.makani.static_fields`. Training (``hens
train``) and the ensemble engine use the same :class:`ModelStep`. A stochastic model takes its
noise: a rollout holds each member's noise state and advances it once per step,

    noise = stepper.next_noise(generators, batch, noise)   # None at the first step
    x = stepper(x, noise=noise, time=t)

(an AR(1) process in time, :mod:`hens.models.sfno.noise`); ``stepper(x, generator)`` draws a
stationary state for a single step.
"""

from __future__ import annotations

from collections.abc import Sequence
import numpy as np
import torch
from torch import nn

from hens.forecast.errors import DataError
from hens.models.forcings import check_forcings, forcing_fields
from hens.models.sfno.noise import Generators
from hens.models.types import StepOutput


def _stat(values: Sequence[float] | torch.Tensor, name: str, channels: int | None) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=torch.float32).flatten()
    if channels is not None and t.numel() != channels:
        raise DataError(f"normalisation {name} has {t.numel()} values for {channels} channels")
    if not torch.isfinite(t).all() or (name != "mean" and (t <= 0).any()):
        raise DataError(f"normalisation {name} must be finite{'' if name == 'mean' else ' and > 0'}")
    return t.view(1, -1, 1, 1)


class ModelStep(nn.Module):
    """Physical state ``(B, C, H, W)`` -> next physical state, 6 hours later.

    Parameters
    ----------
    model
        An :class:`~hens.models.sfno.network.SFNO` or :class:`~hens.models.sfno.stochastic.StochasticSFNO`
        with ``C`` input and output channels.
    mean, std, tendency_std
        Per-channel statistics, ``C`` values each (physical units); ``tendency_std`` only
        for ``output="increment"``.
    forcings
        Forcing names (:data:`hens.models.forcings.FORCINGS`) appended to the model's input;
        then every call needs the valid ``time`` of the states.
    output
        What the network predicts: ``"increment"`` or ``"state"`` (module docstring).
    static
        ``(S, H, W)`` fixed fields appended after the forcings, or ``None``.
    lat
        Latitudes of the grid rows (degrees north), for the ``cos_zenith`` forcing.
    """

    def __init__(
        self,
        model: nn.Module,
        mean: Sequence[float] | torch.Tensor,
        std: Sequence[float] | torch.Tensor,
        tendency_std: Sequence[float] | torch.Tensor | None = None,
        forcings: Sequence[str] = (),
        *,
        output: StepOutput = "increment",
        static: torch.Tensor | None = None,
        lat: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.forcings = check_forcings(forcings)
        self.output = output
        self.lat = None if lat is None else np.asarray(lat, dtype=np.float64)
        channels = len(torch.as_tensor(mean).flatten())
        self.register_buffer("mean", _stat(mean, "mean", None))
        self.register_buffer("std", _stat(std, "std", channels))
        if output == "increment":
            if tendency_std is None:
                raise DataError("a model that predicts increments needs the tendency std")
            self.register_buffer("tendency_std", _stat(tendency_std, "tendency_std", channels))
        elif output != "state":
            raise DataError(f"unknown model output {output!r}; use increment or state")
        self.register_buffer("static", None if static is None else static.to(torch.float32)[None])

    @property
    def stochastic(self) -> bool:
        """Whether :meth:`forward` needs a noise generator or state."""
        return hasattr(self.model, "next_noise")

    def next_noise(self, generator: Generators, batch: int, state: torch.Tensor | None = None) -> torch.Tensor:
        """The next noise state of ``batch`` members (see
        :meth:`~hens.models.sfno.stochastic.StochasticSFNO.next_noise`); ``state=None`` starts."""
        if not self.stochastic:
            raise ValueError("a deterministic model has no noise")
        return self.model.next_noise(generator, batch, state)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inputs(self, x: torch.Tensor, time: np.ndarray | np.datetime64 | None) -> torch.Tensor:
        """The network's input: z-scored ``x``, the forcing fields at ``time``, the static fields."""
        z = self.normalise(x)
        parts = [z]
        if self.forcings:
            if time is None:
                raise ValueError(f"this model takes forcings ({', '.join(self.forcings)}): pass the valid time")
            fields = forcing_fields(self.forcings, time, *x.shape[-2:], lat=self.lat).to(device=z.device, dtype=z.dtype)
            if fields.shape[0] not in (1, x.shape[0]):
                raise DataError(f"{fields.shape[0]} valid times for {x.shape[0]} states")
            parts.append(fields.expand(x.shape[0], -1, -1, -1))
        if self.static is not None:
            parts.append(self.static.to(z.dtype).expand(x.shape[0], -1, -1, -1))
        return torch.cat(parts, dim=1) if len(parts) > 1 else z

    def increment(
        self, x: torch.Tensor, generator: Generators | None = None, *, noise: torch.Tensor | None = None,
        time: np.ndarray | np.datetime64 | None = None,
    ) -> torch.Tensor:
        """The network's output for the physical state ``x`` valid at ``time`` (normalised units)."""
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
        out = self.increment(x, generator, noise=noise, time=time)
        if self.output == "state":
            return out * self.std + self.mean
        return x + self.tendency_std * out


#: the name of :class:`ModelStep` before it was told apart from the engine's
#: :class:`hens.forecast.protocols.Stepper`; kept for code that imports it
Stepper = ModelStep
