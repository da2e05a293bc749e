"""CRPS throughput at 1024 members: hens vs properscoring, scoringrules and xskillscore.

Standalone script (never run by pytest): ``python benchmarks/bench_crps.py [--members 1024]``.

Case: the demo grid (32 x 64 Legendre-Gauss), 4 lead times, float32 members and truth
drawn from N(0, 1). Every library gets members on its preferred (last, contiguous) axis;
hens is also timed through its xarray API on the member-first layout a Zarr store gives.
Libraries whose algorithm builds an M x M array per cell (properscoring without numba,
xskillscore, which calls properscoring, and scoringrules' ``"fair"``) are timed on a
subset of cells in slices that fit in memory; the throughput is per cell, so the numbers
compare directly. Each result is checked against hens in float64 before it is timed.
Results are printed and written to ``benchmarks/results/crps.csv`` (one row per device
and case, replaced on each run).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr
from _results import RESULTS

from hens.forecast.grids import Grid
from hens.scoring import crps, crps_kernel


def best_time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def sliced(
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray], step: int
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Apply an O(M^2)-memory CRPS function ``fn(y, x)`` over slices of ``step`` cells."""

    def run(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [fn(y[i : i + step], x[i : i + step]) for i in range(0, y.shape[0], step)]
        )

    return run


def device_name() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    return f"{cpu} (OMP_NUM_THREADS={threads})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1024)
    parser.add_argument("--lead-times", type=int, default=4)
    parser.add_argument("--subset", type=int, default=64, help="cells for the O(M^2) libraries")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--csv", type=Path, default=RESULTS / "crps.csv")
    args = parser.parse_args()

    grid, m = Grid(32, 64), args.members
    rng = np.random.default_rng(0)
    member_first = rng.standard_normal((m, args.lead_times, *grid.shape), dtype=np.float32)
    truth = rng.standard_normal((args.lead_times, *grid.shape), dtype=np.float32)
    cells = truth.size
    x_last = np.ascontiguousarray(member_first.reshape(m, cells).T)  # (cells, M)
    y = truth.reshape(cells)
    coords = {"lead_time": np.arange(args.lead_times), "lat": grid.lat, "lon": grid.lon}
    fc_da = xr.DataArray(member_first, dims=("member", "lead_time", "lat", "lon"), coords=coords)
    truth_da = xr.DataArray(truth, dims=("lead_time", "lat", "lon"), coords=coords)
    sub = slice(0, args.subset)
    ref = {
        fair: crps_kernel(x_last[sub].astype(np.float64), y[sub].astype(np.float64), fair=fair)
        for fair in (False, True)
    }

    cases: list[tuple[str, bool, Callable[[np.ndarray, np.ndarray], np.ndarray], bool]] = [
        # (name, fair, fn(y, x_last) -> crps per cell, needs a subset)
        ("hens crps_kernel", False, lambda yy, xx: crps_kernel(xx, yy), False),
        ("hens crps_kernel", True, lambda yy, xx: crps_kernel(xx, yy, fair=True), False),
    ]
    if importlib.util.find_spec("properscoring"):
        import properscoring

        cases.append(
            ("properscoring crps_ensemble", False, sliced(properscoring.crps_ensemble, 4), True)
        )
    if importlib.util.find_spec("scoringrules"):
        import scoringrules as sr

        def sr_fn(estimator: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
            return lambda yy, xx: sr.crps_ensemble(
                yy, xx, m_axis=-1, estimator=estimator, backend="numpy"
            )

        cases += [
            ("scoringrules qd", False, sr_fn("qd"), False),
            ("scoringrules pwm", True, sr_fn("pwm"), False),
            ("scoringrules fair", True, sliced(sr_fn("fair"), 4), True),
        ]
    if importlib.util.find_spec("xskillscore"):
        import xskillscore as xs

        def xs_fn(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
            obs = xr.DataArray(yy, dims="cell")
            fct = xr.DataArray(xx, dims=("cell", "member"))
            return xs.crps_ensemble(obs, fct, member_dim="member", dim=[]).values

        cases.append(("xskillscore crps_ensemble", False, sliced(xs_fn, 4), True))

    print(
        f"CRPS, {m} members, grid {grid.spec}, {args.lead_times} lead times = {cells} cells, "
        "float32"
    )
    print(f"device: {device_name()}; numba: {bool(importlib.util.find_spec('numba'))}")
    rows = []
    hens_rate: dict[bool, float] = {}
    for name, fair, fn, subset in cases:
        got = np.asarray(fn(y[sub].astype(np.float64), x_last[sub].astype(np.float64)))
        np.testing.assert_allclose(got, ref[fair], rtol=1e-6, atol=1e-9, err_msg=name)
        yy, xx = (y[sub], x_last[sub]) if subset else (y, x_last)
        seconds = best_time(lambda f=fn, a=yy, b=xx: f(a, b), args.repeat if not subset else 1)
        rate = yy.shape[0] / seconds
        if name.startswith("hens"):
            hens_rate[fair] = rate
        rows.append((name, fair, subset, rate))

    xr_sec = {
        fair: best_time(lambda f=fair: crps(fc_da, truth_da, fair=f).values, args.repeat)
        for fair in (False, True)
    }
    for fair in (False, True):
        rows.insert(
            2 + fair, ("hens crps (xarray, member-first)", fair, False, cells / xr_sec[fair])
        )

    print(
        f"{'implementation':36s} {'estimator':9s} {'cells/s':>12s} {'members/s':>12s} "
        f"{'hens kernel / it':>17s}"
    )
    for name, fair, subset, rate in rows:
        ratio = hens_rate[fair] / rate
        note = f"  (on {args.subset} cells)" if subset else ""
        print(
            f"{name:36s} {'fair' if fair else 'standard':9s} {rate:12.4g} {rate * m:12.4g} "
            f"{ratio:16.1f}x{note}"
        )

    device = device_name()
    old = []
    if args.csv.exists():
        with args.csv.open() as f:
            old = [r for r in csv.DictReader(f) if r["device"] != device or int(r["members"]) != m]
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    fields = [
        "device",
        "members",
        "cells",
        "implementation",
        "estimator",
        "cells_per_s",
        "hens_speedup",
    ]
    with args.csv.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(old)
        for name, fair, subset, rate in rows:
            writer.writerow(
                {
                    "device": device,
                    "members": m,
                    "cells": args.subset if subset else cells,
                    "implementation": name,
                    "estimator": "fair" if fair else "standard",
                    "cells_per_s": f"{rate:.6g}",
                    "hens_speedup": f"{hens_rate[fair] / rate:.3g}",
                }
            )
    print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
