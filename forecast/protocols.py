"""Protocols at the seams of hens. Implementations do not inherit from them.

The ensemble engine (:mod:`hens.forecast.engine`) meets its components only through
:class:`DataSource`, :class:`Stepper`, :class:`Perturbation` and :class:`Sink`; the
perturbations draw their random fields through :class:`NoiseField`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch
    import xarray as xr

    from hens.forecast.grids import Grid
    from hens.forecast.members import MemberId, Stream


@runtime_checkable
class DataSource(Protocol):
    """Gridded analyses (reanalysis, the world's trajectory) on one grid.

    Attributes
    ----------
    grid
        The grid of the returned data (latitude north first, longitude in [0, 360)).
    channels
        hens channel names the source can deliver.
    times
        Valid times available, ``datetime64[ns]``, ascending.
    """

    grid: Grid
    channels: tuple[str, ...]
    times: np.ndarray

    def __call__(self, times: Sequence | np.ndarray, channels: Sequence[str]) -> xr.DataArray:
        """Return float32 data with dims ``(time, channel, lat, lon)``.

        Raises :class:`~hens.forecast.errors.DataError` naming a missing channel or time, and
        for NaN/Inf values in the requested data.
        """
        ...


class Rollout(Protocol):
    """A batch of members being integrated; holds their model and noise state."""

    def step(self) -> torch.Tensor:
        """Advance 6 hours; return the new physical states ``(B, C, nlat, nlon)`` float32."""
        ...


@runtime_checkable
class Stepper(Protocol):
    """A forecast model as the engine sees it: batches of physical states, 6-hour steps.

    Attributes
    ----------
    name
        Label recorded in the store (checkpoint file name, or ``"physics"``).
    grid, channels
        Grid and channel order of the states.
    noise_stream
        The :func:`~hens.forecast.members.stream_seed` stream of its per-member noise, or
        ``None`` for a deterministic model (which then ignores ``seeds``).

    A stepper may also have ``release()``: the engine calls it after a rank's last batch of
    that model, so that weights loaded on demand do not stay resident.
    """

    name: str
    grid: Grid
    channels: tuple[str, ...]
    noise_stream: Stream | None

    def start(self, x: torch.Tensor, *, init_time: np.datetime64, seeds: Sequence[int]) -> Rollout:
        """Begin integrating states ``x`` ``(B, C, nlat, nlon)`` valid at ``init_time``.

        Row ``i`` draws its noise only from ``seeds[i]``, so it does not depend on the other
        rows; two rows with equal seeds get equal noise.
        """
        ...


@runtime_checkable
class NoiseField(Protocol):
    """Seeded random fields on the sphere, e.g. :class:`hens.models.sfno.noise.SphericalNoise`."""

    def __call__(self, generators: Sequence[torch.Generator], batch: int) -> torch.Tensor:
        """``(batch, C, nlat, nlon)`` fields, row ``i`` drawn from ``generators[i]`` only."""
        ...


@runtime_checkable
class Perturbation(Protocol):
    """Initial-condition perturbations of ensemble members.

    Attributes
    ----------
    kind
        Registry name (``"none"``, ``"gaussian"``, ``"bred_vector"``, ``"hemispheric_bred_vector"``).
    """

    kind: str

    def __call__(
        self, init_time: np.datetime64, members: Sequence[MemberId], *, checkpoint: int, stepper: Stepper
    ) -> torch.Tensor:
        """Perturbations ``(B, C, nlat, nlon)`` (physical units, before clipping) to add to the
        analysis at ``init_time`` for ``members`` of checkpoint index ``checkpoint``;
        ``stepper`` is that checkpoint's model (the breeding model of bred vectors).
        A member's perturbation depends only on its id, never on the other members.
        """
        ...


@runtime_checkable
class Sink(Protocol):
    """Where member batches go, in blocks of leads (e.g. :class:`~hens.forecast.zarr_sink.ZarrSink`).

    Attributes
    ----------
    lead_chunk
        Leads per block handed to :meth:`write_leads` (the last block of a batch may be shorter).
    """

    lead_chunk: int

    def completed(self) -> np.ndarray:
        """Boolean ``(init_time, member)``: members already fully written."""
        ...

    def write_leads(self, init_index: int, members: slice, leads: slice, data: np.ndarray) -> None:
        """Write a block of leads of a batch: ``data`` is ``(members, leads, C, nlat, nlon)`` float32.

        ``data`` is only valid during the call (the background writer reuses its buffer)."""
        ...

    def mark_completed(self, init_index: int, members: slice) -> None:
        """Record that every lead of the batch is written."""
        ...
