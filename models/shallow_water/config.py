"""Settings of the shallow-water world (:mod:`hens.models.shallow_water.solver`), validated once.

Defaults are the recipe measured chaotic at T21 on 32x64 Legendre-Gauss (reference notes
docs/design.md, the world) plus a seasonal cycle. The time step follows the grid:
the largest divisor of the 6-hour save interval not above 10,000 s / lmax.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from hens.forecast.errors import ConfigError
from hens.forecast.grids import Grid, parse_grid
from hens.forecast.types import HOURS_PER_STEP

#: seconds between saved states; the time step must divide it
SAVE_INTERVAL_S = HOURS_PER_STEP * 3600
#: dt * lmax limit (s): below the AB3 gravity-wave CFL bound of ~14,650 s (reference section 5)
_DT_LMAX_LIMIT_S = 10_000.0


def default_dt(lmax: int) -> int:
    """Largest divisor of 21,600 s not above 10,000 s / ``lmax`` (450 s at lmax 21)."""
    limit = _DT_LMAX_LIMIT_S / lmax
    return max(d for d in range(1, SAVE_INTERVAL_S + 1) if SAVE_INTERVAL_S % d == 0 and d <= limit)


@dataclass(frozen=True)
class WorldConfig:
    """Settings of the world; defaults are the chaotic T21 recipe with a seasonal cycle.

    Times in the units their names say; winds m s-1; rates are e-folding times.
    """

    grid: Grid | str = "32x64"
    dt_s: int | None = None  # default: default_dt(grid.lmax)
    mean_depth_m: float = 1.0e4
    jet_speed: float = 80.0
    jet_seasonal_amplitude: float = 0.2
    seasonal_shift_deg: float = 10.0
    coldest_day: float = 15.0
    relax_days: float = 5.0
    eddy_drag_days: float = 20.0
    hyperdiffusion_hours: float = 12.0
    noise_band: tuple[int, int] = (6, 12)
    noise_rms: float = 1.0e-10  # s-2, grid rms of the vorticity forcing
    noise_memory_days: float = 1.0
    tracer_base_k: float = 240.0
    tracer_amplitude_k: float = 60.0
    tracer_relax_days: float = 5.0
    initial_eddy_wind: float = 5.0  # rms wind of the random eddies of initial_state
    lmax: int = field(init=False)

    def __post_init__(self) -> None:
        grid = parse_grid(self.grid)
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "lmax", grid.lmax)
        sht = grid.sht_grid  # raises for grids without a transform
        if grid.lmax < 4 or sht not in ("legendre-gauss", "equiangular"):
            raise ConfigError(f"grid {grid.spec} is too coarse for the world (need nlat >= 7)")
        if self.dt_s is None:
            object.__setattr__(self, "dt_s", default_dt(grid.lmax))
        if SAVE_INTERVAL_S % self.dt_s or self.dt_s * grid.lmax > _DT_LMAX_LIMIT_S:
            raise ConfigError(
                f"dt_s={self.dt_s} must divide {SAVE_INTERVAL_S} s and be <= "
                f"{_DT_LMAX_LIMIT_S:.0f} s / lmax = {_DT_LMAX_LIMIT_S / grid.lmax:.0f} s on {grid.spec}"
            )
        lo, hi = self.noise_band
        if not 1 <= lo <= hi:
            raise ConfigError(f"noise_band {self.noise_band} must satisfy 1 <= lo <= hi")
        if hi >= grid.lmax:
            need = (3 * (hi + 1) + 2) // 2  # smallest nlat whose alias-free lmax exceeds hi
            raise ConfigError(
                f"grid {grid.spec} resolves degrees below {grid.lmax}, too few for the forcing band "
                f"{lo}..{hi}; use at least {need} latitudes"
            )
        for name in ("mean_depth_m", "relax_days", "eddy_drag_days", "hyperdiffusion_hours",
                     "noise_memory_days", "tracer_relax_days"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def steps_per_save(self) -> int:
        """Solver steps per 6-hour saved interval."""
        return SAVE_INTERVAL_S // self.dt_s

    def attrs(self) -> dict[str, str | int | float]:
        """Flat attributes recording every setting, prefixed ``world_``."""
        out = {f"world_{k}": v for k, v in asdict(self).items() if k != "grid"}
        out["world_noise_band"] = f"{self.noise_band[0]}..{self.noise_band[1]}"
        return {**out, **self.grid.attrs()}
