"""The world: a forced-dissipative shallow-water atmosphere on the sphere.

Built on :class:`torch_harmonics.examples.ShallowWaterSolver` (transforms, Laplacian,
Coriolis) with hens' own third-order Adams-Bashforth loop that carries the past tendencies,
so that ``advance(advance(s, a), b)`` is bit-identical to ``advance(s, a + b)`` (the
solver's ``timestep()`` restarts its history on every call). Prognostic spectral fields:
geopotential Phi (m2 s-2), relative vorticity zeta and divergence delta (s-1) and a
temperature-like tracer T (K). Tendencies per field:

    Phi:   -div(Phi u)                          - [m = 0] (Phi - Phi_eq) / tau_relax
    zeta:  -div((zeta + f) u) + F               - [m = 0] (zeta - zeta_eq) / tau_relax - [m >= 1] zeta / tau_drag
    delta:  curl((zeta + f) u) - lap(Phi + |u|^2/2) - [m = 0] delta / tau_relax - [m >= 1] delta / tau_drag
    T:     -u . grad T                          - (T - T_eq) / tau_tracer

then an exact implicit del^8 hyperdiffusion on all four. F is AR(1) band-limited noise
(:mod:`hens.models.shallow_water.forcing`); the equilibria migrate with the seasons. Float64
throughout. Reference: docs/design.md, the world (the T21 recipe).

Time is counted in solver steps since 1970-01-01T00, so a state's valid time, season and
forcing noise follow from its step alone: any state is a pure function of (seed, step,
initial fields).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hens.forecast.errors import ConfigError, DataError
from hens.forecast.grids import Grid
from hens.forecast.types import STEPS_PER_DAY
from hens.models.shallow_water import forcing as wf
from hens.models.shallow_water.config import SAVE_INTERVAL_S, WorldConfig, default_dt

__all__ = ["SAVE_INTERVAL_S", "ShallowWaterWorld", "WorldConfig", "WorldState", "default_dt"]

_EPOCH = np.datetime64("1970-01-01T00:00:00", "s")


@dataclass(frozen=True)
class WorldState:
    """Everything the next step depends on.

    Attributes
    ----------
    step
        Solver steps since 1970-01-01T00.
    seed
        Seed of the stochastic forcing.
    spec
        complex128 ``(4, lmax, mmax)``: Phi (m2 s-2), zeta, delta (s-1), T (K), ortho SHT.
    tendencies
        Up to two past tendencies, newest first (the AB3 history; empty after a restart).
    noise
        complex128 ``(lmax, mmax)``: current AR(1) vorticity forcing (s-2).
    """

    step: int
    seed: int
    spec: torch.Tensor
    tendencies: tuple[torch.Tensor, ...]
    noise: torch.Tensor


class ShallowWaterWorld:
    """Integrator of the world on one grid.

    Parameters
    ----------
    config
        The settings; ``WorldConfig()`` is the chaotic T21 world on 32x64 Legendre-Gauss.
    """

    def __init__(self, config: WorldConfig | None = None) -> None:
        from torch_harmonics.examples import ShallowWaterSolver

        self.config = config = config or WorldConfig()
        grid: Grid = config.grid  # type: ignore[assignment]
        self.grid = grid
        self.dt = float(config.dt_s)
        self.solver = s = ShallowWaterSolver(
            grid.nlat, grid.nlon, self.dt, lmax=grid.lmax, mmax=grid.lmax, grid=grid.sht_grid,
            havg=config.mean_depth_m,
        )
        self.lats = s.lats.to(torch.float64)
        self.radius = float(s.radius)
        shape = (grid.lmax, grid.lmax)
        l = torch.arange(grid.lmax, dtype=torch.float64).unsqueeze(1).expand(shape)
        m = torch.arange(grid.lmax).unsqueeze(0).expand(shape)
        self._lap = s.lap.to(torch.float64)
        self._lap_a = self._lap * self.radius  # turns vsht output into (vort, div)
        self._invlap_a = s.invlap.to(torch.float64) / self.radius  # (vort, div) -> ivsht input
        # ivsht input of grad T: invlap * lap T / a, i.e. T / a without its l = 0 mean
        self._grad_factor = torch.where(l > 0, 1.0 / self.radius, 0.0)
        # |wind| per unit vorticity or divergence: a / sqrt(l (l + 1)), 0 for l = 0
        self._wind_factor = (-s.invlap.to(torch.float64)).sqrt()
        day = wf.SECONDS_PER_DAY
        zonal = m == 0
        self._rate = torch.stack((
            torch.where(zonal, 1.0 / (config.relax_days * day), 0.0),
            torch.where(zonal, 1.0 / (config.relax_days * day), 1.0 / (config.eddy_drag_days * day)),
            torch.where(zonal, 1.0 / (config.relax_days * day), 1.0 / (config.eddy_drag_days * day)),
            torch.full(shape, 1.0 / (config.tracer_relax_days * day), dtype=torch.float64),
        ))
        # exact del^8 damping, e-folding time hyperdiffusion_hours at the truncation degree
        top = (grid.lmax - 1) * grid.lmax
        self._hyperdiff = torch.exp(-(self.dt / (3600.0 * config.hyperdiffusion_hours)) * (l * (l + 1) / top) ** 4)
        self._coriolis = s.coriolis.to(torch.float64)
        self._phi = math.exp(-self.dt / (config.noise_memory_days * day))
        self._eq_cache: dict[int, torch.Tensor] = {}

    # ------------------------------------------------------------------ time
    def time_of(self, step: int) -> np.datetime64:
        """Valid time (``datetime64[s]``) of a step."""
        return _EPOCH + np.timedelta64(int(step) * int(self.dt), "s")

    def step_of(self, time: np.datetime64 | str) -> int:
        """The step valid at ``time``; raises :class:`ConfigError` off the 6-hour grid."""
        seconds = int((np.datetime64(time, "s") - _EPOCH) / np.timedelta64(1, "s"))
        if seconds % SAVE_INTERVAL_S:
            raise ConfigError(f"time {time} is not on the 6-hourly grid (00, 06, 12 or 18 UTC)")
        return seconds // int(self.dt)

    # ------------------------------------------------------------ equilibrium
    def _equilibrium_at(self, node: int) -> torch.Tensor:
        """Spectral equilibrium ``(4, L, M)`` (Phi, zeta, 0, T_eq) at 6-hour node ``node``."""
        if node not in self._eq_cache:
            if len(self._eq_cache) > 8:
                self._eq_cache.clear()
            c = self.config
            phase = wf.season(node * SAVE_INTERVAL_S, coldest_day=c.coldest_day)
            u = wf.jet_wind(self.lats, speed=c.jet_speed, amplitude=c.jet_seasonal_amplitude,
                            shift_deg=c.seasonal_shift_deg, phase=phase)
            uv = torch.stack((u.unsqueeze(1).expand(self.grid.shape), torch.zeros(self.grid.shape, dtype=torch.float64)))
            vrtdiv = self.solver.vrtdivspec(uv)
            temp = wf.tracer_equilibrium(self.lats, base=c.tracer_base_k, amplitude=c.tracer_amplitude_k,
                                         shift_deg=c.seasonal_shift_deg, phase=phase)
            temp_spec = self.solver.grid2spec(temp.unsqueeze(1).expand(self.grid.shape).contiguous())
            self._eq_cache[node] = torch.stack((self.balanced_phi(vrtdiv[0]), vrtdiv[0],
                                                torch.zeros_like(vrtdiv[0]), temp_spec))
        return self._eq_cache[node]

    def equilibrium(self, step: int) -> torch.Tensor:
        """Spectral equilibrium at ``step``, linear in time between 6-hour nodes."""
        node, rest = divmod(step, self.config.steps_per_save)
        eq0 = self._equilibrium_at(node)
        if rest == 0:
            return eq0
        w = rest / self.config.steps_per_save
        return (1.0 - w) * eq0 + w * self._equilibrium_at(node + 1)

    def balanced_phi(self, zeta: torch.Tensor) -> torch.Tensor:
        """Phi spectrum in nonlinear balance with non-divergent vorticity ``zeta`` (L, M).

        Solves d delta / dt = 0: ``lap(Phi + |u|^2/2) = curl((zeta + f) u)``; mean ``g H``.
        """
        s = self.solver
        uv = s.getuv(torch.stack((zeta, torch.zeros_like(zeta))))
        curl = s.vrtdivspec(uv * (s.spec2grid(zeta) + self._coriolis))[0]
        phi = s.invlap * curl - s.grid2spec(0.5 * (uv**2).sum(0))
        phi[0, 0] = math.sqrt(4.0 * math.pi) * float(s.gravity * s.havg)
        return phi

    # ------------------------------------------------------------ dynamics
    def tendency(self, spec: torch.Tensor, step: int, noise: torch.Tensor) -> torch.Tensor:
        """Spectral tendency ``(4, L, M)`` of ``spec`` at ``step`` with vorticity forcing ``noise``."""
        s = self.solver
        phi, zeta = s.spec2grid(spec[:2])
        coeffs = torch.stack((self._invlap_a * spec[1:3],
                              torch.stack((torch.zeros_like(spec[3]), self._grad_factor * spec[3]))))
        uv, grad_t = s.ivsht(coeffs)
        fluxes = s.vsht(torch.stack((uv * (zeta + self._coriolis), uv * phi))) * self._lap_a
        scalars = s.grid2spec(torch.stack((phi + 0.5 * (uv**2).sum(0), -(uv * grad_t).sum(0))))
        dyn = torch.stack((-fluxes[1, 1], -fluxes[0, 1] + noise,
                           fluxes[0, 0] - self._lap * scalars[0], scalars[1]))
        return dyn - self._rate * (spec - self.equilibrium(step))

    def _noise(self, seed: int, step: int) -> torch.Tensor:
        c = self.config
        return wf.band_noise(seed, step, lmax=self.grid.lmax, mmax=self.grid.lmax, band=c.noise_band)

    def advance(self, state: WorldState, n_steps: int) -> WorldState:
        """Integrate ``n_steps`` AB3 steps; raises :class:`DataError` if the state blows up."""
        spec, hist, noise = state.spec.clone(), state.tendencies, state.noise
        c, dt = self.config, self.dt
        sigma = c.noise_rms * math.sqrt(1.0 - self._phi**2)
        for step in range(state.step, state.step + n_steps):
            now = self.tendency(spec, step, noise)
            if len(hist) == 0:  # restart: forward Euler, then AB2, then AB3
                incr = now
            elif len(hist) == 1:
                incr = 1.5 * now - 0.5 * hist[0]
            else:
                incr = (23.0 / 12.0) * now - (16.0 / 12.0) * hist[0] + (5.0 / 12.0) * hist[1]
            spec = (spec + dt * incr) * self._hyperdiff
            hist = (now, *hist[:1])
            noise = self._phi * noise + sigma * self._noise(state.seed, step + 1)
        if not bool(torch.isfinite(torch.view_as_real(spec)).all()):
            raise DataError(
                f"the world blew up before {self.time_of(state.step + n_steps)} (non-finite state "
                f"after {n_steps} steps of {dt:.0f} s on {self.grid.spec}); use a smaller dt_s"
            )
        return WorldState(state.step + n_steps, state.seed, spec, hist, noise)

    def spin_up(self, state: WorldState, days: float) -> WorldState:
        """Advance by ``days`` (rounded to whole 6-hour intervals)."""
        return self.advance(state, round(days * STEPS_PER_DAY) * self.config.steps_per_save)

    # ------------------------------------------------------------ states <-> fields
    def _restart(self, spec: torch.Tensor, step: int, seed: int) -> WorldState:
        noise = self.config.noise_rms * self._noise(seed, step)
        return WorldState(step, seed, torch.tril(spec), (), noise)

    def initial_state(self, seed: int, time: np.datetime64 | str = "2000-01-01T00") -> WorldState:
        """Equilibrium jets at ``time`` plus balanced random eddies (red spectrum, l^-3 in psi).

        Spin it up (:meth:`spin_up`, ~30-60 days) before using it as weather.
        """
        step = self.step_of(time)
        eq = self.equilibrium(step)
        lmax = self.grid.lmax
        l = torch.arange(lmax, dtype=torch.float64).unsqueeze(1)
        gen = torch.Generator().manual_seed(wf.step_seed(seed, "initial"))
        psi = torch.complex(*torch.randn(2, lmax, lmax, generator=gen, dtype=torch.float64))
        psi = torch.tril(torch.where(l >= 2, psi * l.clamp(min=1) ** -3.0, 0.0))
        psi[:, 0] = psi[:, 0].real
        eddies = self._lap * psi
        wind2 = wf.spectral_mean_square(eddies * self._wind_factor)
        zeta = eq[1] + eddies * (self.config.initial_eddy_wind / wind2.sqrt())
        spec = torch.stack((self.balanced_phi(zeta), zeta, torch.zeros_like(zeta), eq[3]))
        return self._restart(spec, step, seed)

    def from_fields(self, fields: np.ndarray | torch.Tensor, *, time: np.datetime64 | str, seed: int) -> WorldState:
        """A state from grid fields ``(4, nlat, nlon)`` in :data:`WORLD_CHANNELS` order.

        Fields: Phi (m2 s-2), u, v (m s-1), T (K); latitude north first. The AB3 history
        restarts and the noise starts from a stationary draw at that step.
        """
        x = torch.as_tensor(np.asarray(fields), dtype=torch.float64)
        if x.shape != (4, *self.grid.shape):
            raise DataError(f"world fields have shape {tuple(x.shape)}, expected (4, {self.grid.nlat}, {self.grid.nlon})")
        s = self.solver
        vrtdiv = s.vrtdivspec(x[1:3].contiguous())
        scalars = s.grid2spec(x[[0, 3]].contiguous())
        spec = torch.stack((scalars[0], vrtdiv[0], vrtdiv[1], scalars[1]))
        return self._restart(spec, self.step_of(time), seed)

    def fields(self, state: WorldState) -> np.ndarray:
        """Grid fields ``(4, nlat, nlon)`` float64 in :data:`WORLD_CHANNELS` order (north first)."""
        s = self.solver
        scalars = s.spec2grid(state.spec[[0, 3]])
        uv = s.getuv(state.spec[1:3])
        return torch.stack((scalars[0], uv[0], uv[1], scalars[1])).numpy()

    def diagnostics(self, state: WorldState) -> dict[str, float]:
        """Area means: kinetic energy (J kg-1), enstrophy (s-2), tracer variance (K2), Phi (m2 s-2)."""
        ke = wf.spectral_mean_square(state.spec[1:3] * self._wind_factor).sum() / 2.0
        return {
            "kinetic_energy": float(ke),
            "enstrophy": float(wf.spectral_mean_square(state.spec[1]) / 2.0),
            "tracer_variance": float(wf.spectral_mean_square(state.spec[3, 1:])),
            "mean_phi": float(state.spec[0, 0, 0].real / math.sqrt(4.0 * math.pi)),
        }
