"""The hemispheric per-channel norm of Huge Ensembles (docs/architecture.md, perturbations).

For each member and channel, an area-weighted RMS over the northern extratropics (the first
``n = int(70/180 nlat)`` rows, 90N to ~20N) and, separately, over the southern extratropics
(the last ``n`` rows); in the tropical rows between them the norm goes linearly (per row,
endpoints included, as earth2studio's ``HemisphericCentredBredVector``) from the northern to
the southern value. Unlike earth2studio, each band's RMS is a proper weighted mean (weights
divided by their sum within the band), so a field of constant magnitude ``a`` has norm ``a``.
Rescaling with this norm gives every channel the same size in both hemispheres, whatever its
units, so geopotential cannot swamp winds.
"""

from __future__ import annotations

import torch

from hens.forecast.errors import DataError
from hens.forecast.grids import Grid

#: latitude span of each extratropical band: 70 of 180 degrees (90N-20N and 20S-90S)
EXTRATROPICAL_FRACTION = 70.0 / 180.0


def band_rows(nlat: int) -> int:
    """Rows in each extratropical band, ``int(70/180 nlat)`` (12 of 32, 280 of 721)."""
    n = int(EXTRATROPICAL_FRACTION * nlat)
    if n < 1:
        raise DataError(f"a {nlat}-row grid has no extratropical band for the hemispheric norm (need nlat >= 3)")
    return n


def hemispheric_norm(d: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Per-row norm of fields ``d`` ``(..., C, nlat, nlon)``, latitude north first.

    Returns
    -------
    torch.Tensor
        float64 ``(..., C, nlat, 1)``, in the units of ``d``; zeros are replaced by 1 so that
        dividing by it never produces NaN (a zero field stays zero).
    """
    nlat = grid.nlat
    if d.shape[-2:] != grid.shape:
        raise DataError(f"fields of shape {tuple(d.shape[-2:])} are not on grid {grid.spec}")
    n = band_rows(nlat)
    w = torch.as_tensor(grid.area_weights, dtype=torch.float64)
    zonal = d.to(torch.float64).square().mean(dim=-1)  # (..., C, nlat)
    north = ((zonal[..., :n] * w[:n]).sum(-1) / w[:n].sum()).sqrt()
    south = ((zonal[..., -n:] * w[-n:]).sum(-1) / w[-n:].sum()).sqrt()
    frac = torch.linspace(0.0, 1.0, nlat - 2 * n, dtype=torch.float64)
    tropics = north[..., None] + (south - north)[..., None] * frac
    rows = torch.cat([north[..., None].expand(*north.shape, n), tropics,
                      south[..., None].expand(*south.shape, n)], dim=-1)
    return torch.where(rows == 0, 1.0, rows)[..., None]


def rescale(d: torch.Tensor, physical_amplitude: torch.Tensor, grid: Grid) -> torch.Tensor:
    """``physical_amplitude_c * d / norm(c, lat)`` (float32): ``d`` gets hemispheric norm
    ``physical_amplitude`` per channel.

    Parameters
    ----------
    d
        Fields ``(..., C, nlat, nlon)``.
    physical_amplitude
        ``(C,)`` target norm per channel, in the units of the channel.
    """
    a = torch.as_tensor(physical_amplitude, dtype=torch.float64).view(-1, 1, 1)
    return (d.to(torch.float64) * (a / hemispheric_norm(d, grid))).to(torch.float32)
