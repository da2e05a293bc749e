"""Speed of the shallow-water world: simulated days per wall second at T21 and T42.

Standalone (not pytest): ``python benchmarks/bench_world.py [--days-t21 20] [--days-t42 5]``.
One intra-op thread, float64, forcing and tracer included, no output written. Reference
check: mass (the mean of Phi) is conserved to 1e-9 relative over the timed run.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from hens.models.shallow_water.solver import ShallowWaterWorld, WorldConfig  # noqa: E402


def bench(grid: str, days: float, *, repeats: int = 3) -> float:
    """Best-of-``repeats`` wall seconds per simulated day on ``grid``."""
    world = ShallowWaterWorld(WorldConfig(grid=grid))
    state = world.spin_up(world.initial_state(0, "2000-01-01T00"), 1)  # warm-up, caches
    mass = world.diagnostics(state)["mean_phi"]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        end = world.spin_up(state, days)
        best = min(best, (time.perf_counter() - t0) / days)
    drift = abs(world.diagnostics(end)["mean_phi"] / mass - 1)
    if drift > 1e-9:
        raise SystemExit(f"{grid}: mean Phi drifted by {drift:.2e}")
    cfg = world.config
    print(f"{grid:>8} lmax {cfg.lmax:3d} dt {cfg.dt_s:4d} s: {best:.3f} s per simulated day, "
          f"{1 / best:6.2f} days per second, {best * 365.25 / 60:.1f} min per year")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days-t21", type=float, default=20.0)
    parser.add_argument("--days-t42", type=float, default=5.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    t21 = bench("32x64", args.days_t21)
    t42 = bench("64x128", args.days_t42)
    print(f"64x128 / 32x64 cost ratio: {t42 / t21:.1f}x per simulated day")


if __name__ == "__main__":
    main()
