"""Static input fields of NVIDIA's published SFNO packages (docs/packages.md).

A package's network sees, after the state and the cosine of the solar zenith angle, fields
that do not change in time, in this order:

* ``grid``: for ``k = 1 .. n`` the sines ``sin(k * s_lat)`` and ``sin(k * s_lon)``,
  interleaved (lat, lon, lat, lon, ...), where ``s`` runs over ``[0, 1)`` in equal steps along
  each axis (row/column index / count; the angle is in radians, so a field is not periodic),
  or is the latitude and longitude in radians for packages whose ``config.json`` lists them;
* ``orography``: surface geopotential, min-max scaled to [0, 1], then standardised with its
  mean and unbiased standard deviation (+ 1e-6);
* ``land_mask``: one-hot of ``floor(lsm)``, one channel per class 0 .. max (two for a land
  fraction with some grid points exactly 1).

Everything is float32, computed as the packages were trained, so that a package's output is
reproduced to float32 rounding.
"""

from __future__ import annotations

import numpy as np
import torch

from hens.forecast.errors import DataError

#: standardisation guard of the orography, as in training
_OROGRAPHY_EPS = 1e-6


def grid_fields(
    nlat: int, nlon: int, frequencies: int, *, lat: np.ndarray | None = None, lon: np.ndarray | None = None
) -> torch.Tensor:
    """The ``2 * frequencies`` sinusoidal position fields ``(2 n, nlat, nlon)``, float32.

    ``lat``, ``lon`` (degrees): use these angles instead of the ``[0, 1)`` ramps.
    """
    if lat is not None and lon is not None:
        s_lat = torch.deg2rad(torch.as_tensor(np.asarray(lat), dtype=torch.float32))
        s_lon = torch.deg2rad(torch.as_tensor(np.asarray(lon), dtype=torch.float32))
    else:
        s_lat = torch.linspace(0.0, 1.0, nlat + 1, dtype=torch.float32)[:-1]
        s_lon = torch.linspace(0.0, 1.0, nlon + 1, dtype=torch.float32)[:-1]
    lat, lon = torch.meshgrid(s_lat, s_lon, indexing="ij")
    pair = torch.stack([lat, lon])  # (2, nlat, nlon)
    return torch.cat([torch.sin(pair if k == 1 else k * pair) for k in range(1, frequencies + 1)])


def orography_field(geopotential: np.ndarray) -> torch.Tensor:
    """Standardised orography ``(1, nlat, nlon)`` from surface geopotential (m2 s-2, as stored)."""
    z = np.asarray(geopotential)
    span = z.max() - z.min()
    if not np.isfinite(z).all() or span <= 0:
        raise DataError("orography must be finite and not constant")
    scaled = torch.as_tensor((z - z.min()) / span, dtype=torch.float32)
    return ((scaled - scaled.mean()) / (scaled.std() + _OROGRAPHY_EPS))[None]


def land_mask_fields(land_fraction: np.ndarray) -> torch.Tensor:
    """One-hot ``floor`` classes of a land fraction in [0, 1]: ``(classes, nlat, nlon)``."""
    lsm = np.asarray(land_fraction)
    if not np.isfinite(lsm).all() or lsm.min() < 0:
        raise DataError("land mask must be finite and >= 0")
    classes = torch.as_tensor(lsm).to(torch.long)  # truncation: floor for values >= 0
    return torch.nn.functional.one_hot(classes).permute(2, 0, 1).to(torch.float32)


def static_fields(
    nlat: int, nlon: int, *, grid_frequencies: int = 0, orography: np.ndarray | None = None,
    land_mask: np.ndarray | None = None, lat: np.ndarray | None = None, lon: np.ndarray | None = None,
) -> torch.Tensor:
    """All static inputs of a package in input order, ``(S, nlat, nlon)`` float32.

    Parameters
    ----------
    nlat, nlon
        Grid shape (the arrays' rows and columns, as stored).
    grid_frequencies
        ``n`` sinusoidal frequencies per axis (0: no grid fields).
    orography
        Surface geopotential (m2 s-2), or ``None``.
    land_mask
        Land fraction (1), or ``None``.
    lat, lon
        Degrees, for grid fields of angles (:func:`grid_fields`).
    """
    parts = []
    if grid_frequencies > 0:
        parts.append(grid_fields(nlat, nlon, grid_frequencies, lat=lat, lon=lon))
    for name, values, build in (("orography", orography, orography_field), ("land mask", land_mask, land_mask_fields)):
        if values is None:
            continue
        if np.shape(values) != (nlat, nlon):
            raise DataError(f"{name} has shape {np.shape(values)}, the grid is {nlat}x{nlon}")
        parts.append(build(values))
    return torch.cat(parts) if parts else torch.zeros(0, nlat, nlon)
