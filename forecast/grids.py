"""The grid registry: coordinates and quadrature weights of every grid hens understands.

hens orders latitude **north first** (descending, row 0 on the North Pole side, as
torch-harmonics does) and longitude ascending in [0, 360). Supported kinds:

``legendre-gauss``
    Gaussian latitudes (roots of P_n), no poles; SHT exact to lmax = nlat. The world's grid.
``equiangular``
    Equally spaced with both poles (ERA5 0.25 deg 721x1440, 1.5 deg 121x240, 33x64);
    Clenshaw-Curtis quadrature.
``equiangular-nopoles``
    Equally spaced, half a cell from the poles (WeatherBench2's 64x32 grid); cell-area
    weights only -- no SHT is defined on it (regrid first).

A grid is named by a spec string ``"NLATxNLON"`` (Legendre-Gauss) or ``"NLATxNLON:KIND"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, get_args

import numpy as np

from hens.forecast.errors import GridMismatch

GridKind = Literal["legendre-gauss", "equiangular", "equiangular-nopoles"]
GRID_KINDS: tuple[str, ...] = get_args(GridKind)
DEFAULT_KIND: GridKind = "legendre-gauss"
_SPEC = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*(?::\s*([a-z-]+))?\s*$")
#: coordinates agree when within this many degrees (float64 coordinates)
LATLON_TOL_DEG = 1e-6


def _tolerance(*coords: np.ndarray) -> float:
    """Degrees within which stored coordinates match: 1e-6, or the rounding of their dtype.

    WeatherBench2 stores latitude as float32, which rounds Gaussian latitudes near 90 deg by
    up to 4e-6 deg; 180 float32 ulps (2e-5 deg) is still far below any grid spacing.
    """
    eps = max(np.finfo(c.dtype).eps if np.issubdtype(c.dtype, np.floating) else 0.0 for c in coords)
    return max(LATLON_TOL_DEG, 180.0 * float(eps))


@lru_cache(maxsize=64)
def _colatitudes(kind: str, nlat: int) -> np.ndarray:
    """Colatitude nodes in radians, 0 at the North Pole, increasing.

    Computed with numpy (the same Gauss-Legendre routine torch-harmonics calls), so that
    detecting a grid does not import torch.
    """
    if kind == "legendre-gauss":
        x, _ = np.polynomial.legendre.leggauss(nlat)
        return np.arccos(x[::-1])
    if kind == "equiangular":
        return np.linspace(0.0, np.pi, nlat)
    return (np.arange(nlat) + 0.5) * np.pi / nlat


@lru_cache(maxsize=64)
def _weights(kind: str, nlat: int) -> np.ndarray:
    """Quadrature weights in cos(colatitude), north first, summing to 2."""
    if kind == "equiangular-nopoles":
        bounds = np.linspace(0.0, np.pi, nlat + 1)
        return np.cos(bounds[:-1]) - np.cos(bounds[1:])
    if kind == "legendre-gauss":
        # the numpy rule torch-harmonics' legendre_gauss_weights returns, without importing
        # torch-harmonics (~5 s: it compiles its kernels at import) in processes that only score
        _, w = np.polynomial.legendre.leggauss(nlat)
    else:
        from torch_harmonics.quadrature import clenshaw_curtiss_weights

        _, w = clenshaw_curtiss_weights(nlat, -1.0, 1.0)
    # both order nodes by ascending cos(colatitude), i.e. south first
    return np.asarray(w, dtype=np.float64)[::-1].copy()


@dataclass(frozen=True)
class Grid:
    """A global latitude-longitude grid.

    Parameters
    ----------
    nlat, nlon
        Number of latitude rows and longitude columns.
    kind
        One of :data:`GRID_KINDS`.
    """

    nlat: int
    nlon: int
    kind: GridKind = DEFAULT_KIND

    def __post_init__(self) -> None:
        if self.kind not in GRID_KINDS:
            raise GridMismatch(f"unknown grid kind {self.kind!r}; use one of {', '.join(GRID_KINDS)}")
        if self.nlat < 2 or self.nlon < 4:
            raise GridMismatch(f"grid {self.nlat}x{self.nlon} is too small (need >= 2x4)")

    @property
    def spec(self) -> str:
        """The spec string that :func:`parse_grid` turns back into this grid."""
        base = f"{self.nlat}x{self.nlon}"
        return base if self.kind == DEFAULT_KIND else f"{base}:{self.kind}"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nlat, self.nlon)

    @property
    def lat(self) -> np.ndarray:
        """Latitudes in degrees north, descending (north first), float64."""
        return 90.0 - np.degrees(_colatitudes(self.kind, self.nlat))

    @property
    def lon(self) -> np.ndarray:
        """Longitudes in degrees east, ascending in [0, 360), float64."""
        return np.arange(self.nlon, dtype=np.float64) * (360.0 / self.nlon)

    @property
    def quadrature_weights(self) -> np.ndarray:
        """Latitude quadrature weights in cos(colatitude), north first, summing to 2."""
        return _weights(self.kind, self.nlat).copy()

    @property
    def area_weights(self) -> np.ndarray:
        """Per-row weights normalised to mean 1 (WeatherBench2 convention), north first."""
        w = self.quadrature_weights
        return w / w.mean()

    @property
    def sht_grid(self) -> str:
        """The torch-harmonics grid name; raises for grids without an SHT."""
        if self.kind == "equiangular-nopoles":
            raise GridMismatch(
                f"grid {self.spec} has no spherical harmonic transform; regrid to "
                f"{self.nlat + 1}x{self.nlon}:equiangular or {self.nlat}x{self.nlon} first"
            )
        return self.kind

    @property
    def lmax(self) -> int:
        """Largest alias-free truncation for quadratic terms: (3 L + 1) / 2 <= nlat."""
        return (2 * self.nlat - 1) // 3

    def attrs(self) -> dict[str, str | int]:
        """Attributes that record the grid in a store."""
        return {"grid": self.spec, "grid_kind": self.kind, "grid_nlat": self.nlat, "grid_nlon": self.nlon}

    def check(self, lat: np.ndarray, lon: np.ndarray, *, what: str = "data") -> None:
        """Raise :class:`GridMismatch` unless ``lat``/``lon`` (degrees, hens order) are this grid."""
        tol = _tolerance(np.asarray(lat), np.asarray(lon))
        lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
        if lat.shape != (self.nlat,) or lon.shape != (self.nlon,):
            raise GridMismatch(
                f"{what} is on a {lat.size}x{lon.size} grid, expected {self.spec}"
            )
        if np.abs(lat - self.lat).max() > tol or np.abs(lon - self.lon).max() > tol:
            raise GridMismatch(f"{what} latitudes/longitudes differ from grid {self.spec}")

    @classmethod
    def detect(cls, lat: np.ndarray, lon: np.ndarray, *, what: str = "data") -> Grid:
        """The grid whose nodes are ``lat``/``lon`` (degrees; any order, lon in [0, 360)).

        Raises
        ------
        GridMismatch
            If the coordinates match no registered kind within 1e-6 degrees (2e-5 for float32
            coordinates).
        """
        tol = _tolerance(np.asarray(lat), np.asarray(lon))
        lat = np.sort(np.asarray(lat, dtype=np.float64))[::-1]
        lon = np.sort(np.mod(np.asarray(lon, dtype=np.float64), 360.0))
        for kind in GRID_KINDS:
            grid = cls(lat.size, lon.size, kind)
            if np.allclose(lat, grid.lat, atol=tol, rtol=0) and np.allclose(
                lon, grid.lon, atol=tol, rtol=0
            ):
                return grid
        raise GridMismatch(
            f"{what} has an unknown {lat.size}x{lon.size} grid (latitudes {lat[0]:.4f}..{lat[-1]:.4f}); "
            f"hens reads {', '.join(GRID_KINDS)} grids"
        )


def parse_grid(spec: str | Grid) -> Grid:
    """Parse ``"32x64"`` (Legendre-Gauss) or ``"33x64:equiangular"`` into a :class:`Grid`."""
    if isinstance(spec, Grid):
        return spec
    match = _SPEC.match(str(spec))
    if match is None:
        raise GridMismatch(f"bad grid {spec!r}: write NLATxNLON or NLATxNLON:KIND, e.g. 32x64")
    nlat, nlon, kind = int(match[1]), int(match[2]), match[3] or DEFAULT_KIND
    return Grid(nlat, nlon, kind)  # type: ignore[arg-type]
