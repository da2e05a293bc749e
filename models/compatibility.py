"""Whether checkpoints fit their data and each other: same grid, the channels they need.

Both checks take loaded :class:`~hens.models.checkpoint.Checkpoint` s or weight-less
:class:`~hens.models.checkpoint.CheckpointHeader` s, so a run is checked before it loads a model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from hens.forecast.errors import CheckpointError, GridMismatch
from hens.forecast.grids import Grid, parse_grid

if TYPE_CHECKING:
    from hens.models.checkpoint import Checkpoint, CheckpointHeader


def check_compatible(
    ckpt: Checkpoint | CheckpointHeader,
    source: Any = None,
    *,
    grid: Grid | str | None = None,
    channels: Iterable[str] | None = None,
) -> None:
    """Check that a data source (or a grid and the available channels) can feed ``ckpt``.

    Raises
    ------
    GridMismatch
        The data are on another grid; the message names both.
    CheckpointError
        The data lack channels the checkpoint needs; the message names them.
    """
    if source is not None:
        grid = source.grid if grid is None else grid
        channels = source.channels if channels is None else channels
    if grid is not None:
        grid = parse_grid(grid)
        if grid != ckpt.grid:
            raise GridMismatch(
                f"checkpoint {ckpt.path.name} is for grid {ckpt.grid.spec}, the data are on {grid.spec}"
            )
    if channels is not None:
        available = list(channels)
        missing = [c for c in ckpt.channels if c not in available]
        if missing:
            raise CheckpointError(
                f"checkpoint {ckpt.path.name} needs channels {', '.join(missing)} that the data lack "
                f"(they have {', '.join(available)})"
            )


def check_ensemble(ckpts: Sequence[Checkpoint | CheckpointHeader]) -> None:
    """Check that checkpoints can form one ensemble: same grid, same channels in the same order."""
    if not ckpts:
        raise CheckpointError("an ensemble needs at least one checkpoint")
    ref = ckpts[0]
    for other in ckpts[1:]:
        if other.grid != ref.grid:
            raise GridMismatch(
                f"checkpoint {other.path.name} is for grid {other.grid.spec}, "
                f"{ref.path.name} for {ref.grid.spec}"
            )
        if other.channels != ref.channels:
            extra = [c for c in other.channels if c not in ref.channels]
            lacks = [c for c in ref.channels if c not in other.channels]
            parts = ([f"has {', '.join(extra)}"] if extra else []) + ([f"lacks {', '.join(lacks)}"] if lacks else [])
            detail = "; ".join(parts) or f"orders them {', '.join(other.channels)}"
            raise CheckpointError(
                f"checkpoint {other.path.name} has other channels than {ref.path.name}: {detail} "
                f"(expected {', '.join(ref.channels)})"
            )
