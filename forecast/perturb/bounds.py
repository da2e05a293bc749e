"""Physical bounds of perturbed states: humidity-like channels cannot be negative.

The channels clipped at 0 are those earth2studio's HENS recipe clips (names starting with
``q`` or ``r``, ``tcwv``, names starting with ``tp``). Clipping is applied to every member
the same way, after the perturbation is added, so it breaks the exact symmetry of a +/- pair
where it acts and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def nonnegative_channels(channels: Sequence[str]) -> list[int]:
    """Indices of the channels that must stay >= 0."""
    return [i for i, c in enumerate(channels) if c[0] in "qr" or c == "tcwv" or c.startswith("tp")]


def clip_physical(x: torch.Tensor, channels: Sequence[str]) -> torch.Tensor:
    """``x`` ``(B, C, nlat, nlon)`` with humidity-like channels clipped at 0 (a new tensor)."""
    idx = nonnegative_channels(channels)
    if not idx:
        return x
    out = x.clone()
    out[:, idx] = out[:, idx].clamp(min=0.0)
    return out
