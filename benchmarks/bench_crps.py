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

``--scorecard`` times the whole scorecard of ``hens score`` per cell (spectra aside: they are
per field, not per cell) at each ``--members`` value, in the same run: today's composition of
the public metric functions on dask (``hens.scoring.evaluate.scorecard``: moments, CRPS x2, ranks,
outliers, Brier/reliability/ROC at 2 thresholds, EFI, SOT x2, nested sub-ensembles) against
the fused one-sort kernel (``hens.scoring.evaluate.partials``), on one init and lead of the 32 x 64
grid with a 101-quantile climate. Rows go to ``benchmarks/results/scorecard.csv``.
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


def scorecard_case(m: int, repeat: int) -> dict[str, float]:
    """Seconds per cell of the whole scorecard, today's lazy composition vs the fused kernel."""
    import dask

    from hens.forecast.members import MemberLayout
    from hens.scoring import area_weights
    from hens.scoring.evaluate import scorecard as sc
    from hens.scoring.evaluate.store import member_subsets
    from hens.scoring.evaluate.partials import PieceOptions, combine, finish_scores, piece_sums
    from hens.scoring.evaluate.subsets import subset_plan
    from hens.scoring.evaluate.truth import thresholds_of

    grid, rng = Grid(32, 64), np.random.default_rng(0)
    layout = MemberLayout(checkpoints=29 if m % 29 == 0 else 4, pairs=m // (2 * (29 if m % 29 == 0 else 4)), seeds=1)
    assert layout.size == m, (layout.size, m)
    x = rng.standard_normal((1, m, 1, *grid.shape), dtype=np.float32)
    y = rng.standard_normal((1, 1, *grid.shape), dtype=np.float32)
    pers = rng.standard_normal((1, *grid.shape), dtype=np.float32)
    p = np.linspace(0.0, 1.0, 101)
    clim = np.sort(rng.standard_normal((1, 1, 101, *grid.shape)) * 1.1, axis=2)
    co = {"init_time": [0], "lead_time": [0], "lat": grid.lat, "lon": grid.lon}
    band = {"init_time": 1, "member": -1, "lead_time": 1, "lat": max(1, min(32, (16 << 20) // (m * 64 * 4))), "lon": -1}
    fc = xr.DataArray(x, dims=("init_time", "member", "lead_time", "lat", "lon"),
                      coords={**co, **{k: ("member", v) for k, v in layout.coords().items()}}).chunk(band)
    truth = xr.DataArray(y, dims=("init_time", "lead_time", "lat", "lon"), coords=co)
    persistence = xr.DataArray(pers, dims=("init_time", "lat", "lon"), coords={k: co[k] for k in ("init_time", "lat", "lon")})
    climate = xr.DataArray(clim, dims=("init_time", "lead_time", "quantile", "lat", "lon"), coords={**co, "quantile": p})
    levels = (0.9, 0.99)

    def today() -> None:
        lazy = sc.core_scores(fc, truth, persistence)
        lazy.update(sc.subset_scores(fc, truth, member_subsets(fc)))
        lazy.update(sc.threshold_scores(fc, truth, thresholds_of(climate, levels)))
        lazy.update(sc.extreme_scores(fc, climate))
        dask.compute(lazy, scheduler="threads")

    plan = subset_plan(fc["checkpoint"].values, fc["pair"].values)
    options = PieceOptions(members=m, levels=levels, threshold_index=(90, 99), quantile_p=p,
                           units=plan.units, orders=plan.orders, counts=plan.counts)
    w = np.repeat(area_weights(fc["lat"], fc["lon"]).values, grid.nlon)
    q = np.moveaxis(clim[0, 0], 0, -1).reshape(-1, 101)

    def fused() -> None:
        part = piece_sums(x[0, :, 0].reshape(m, -1), y[0, 0].ravel(), pers[0].ravel(), w, options,
                          climate=q, efi_map=True)
        finish_scores(combine([part]), options)

    cells = grid.nlat * grid.nlon
    return {"today": best_time(today, 1 if m > 2048 else repeat) / cells, "fused": best_time(fused, repeat) / cells}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1024)
    parser.add_argument("--lead-times", type=int, default=4)
    parser.add_argument("--subset", type=int, default=64, help="cells for the O(M^2) libraries")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--csv", type=Path, default=RESULTS / "crps.csv")
    parser.add_argument("--scorecard", type=int, nargs="*", metavar="M",
                        help="time the whole scorecard per cell at these sizes (e.g. 1024 7424) and stop")
    args = parser.parse_args()
    if args.scorecard:
        run_scorecard(args.scorecard, args.repeat)
        return

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


def run_scorecard(sizes: list[int], repeat: int) -> None:
    device = device_name()
    print(f"whole scorecard per cell (32 x 64, 1 init x 1 lead, 2 thresholds, 101 climate quantiles)\ndevice: {device}")
    print(f"{'members':>8s} {'today us/cell':>14s} {'fused us/cell':>14s} {'fused / today':>14s}")
    rows = []
    for m in sizes:
        t = scorecard_case(m, repeat)
        ratio = t["fused"] / t["today"]
        print(f"{m:8d} {1e6 * t['today']:14.1f} {1e6 * t['fused']:14.1f} {ratio:14.3f}")
        rows.append({"device": device, "members": m, "today_s_per_cell": f"{t['today']:.4g}",
                     "fused_s_per_cell": f"{t['fused']:.4g}", "ratio": f"{ratio:.3g}",
                     "load": os.getloadavg()[0]})
    path = RESULTS / "scorecard.csv"
    old = []
    if path.exists():
        with path.open() as f:
            old = [r for r in csv.DictReader(f) if r["device"] != device or int(r["members"]) not in sizes]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(old + rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
