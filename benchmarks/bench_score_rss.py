"""Peak RSS and wall time of `hens score` against the ensemble size (issue 16's acceptance).

Standalone script (never run by pytest): ``python benchmarks/bench_score_rss.py [--members 256 7424]``.

Writes, through the real ensemble sink, a 32 x 64 Legendre-Gauss store per size (z500 and
t2m, ``--inits`` initial times, leads 0..``--leads`` x 6 h; members = signal + N(0, 1) noise of
(29 checkpoints x 128 pairs) or (4 x M/8) units) and its truth with the statistics store
beside it, then runs ``hens score`` in a fresh process and samples its resident memory
(/proc/PID/status VmRSS, every 20 ms: a fork + exec child inherits its parent's VmHWM, so the
kernel's own peak is not usable here). Prints the peaks, their ratio to the smallest size and
the wall times; rows go to ``benchmarks/results/score_rss.csv``.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from _results import RESULTS
from bench_crps import device_name

from hens.forecast.channels import get_channel
from hens.forecast.grids import Grid
from hens.forecast.members import MemberLayout
from hens.forecast.stats import compute_stats, stats_path, write_stats
from hens.forecast.zarr_sink import StoreSpec, open_sink

GRID = Grid(32, 64)
CHANNELS = ("z500", "t2m")
SCALE = {"z500": (5.4e4, 150.0), "t2m": (280.0, 2.0)}


def write_truth(path: Path, times: np.ndarray) -> xr.DataArray:
    rng = np.random.default_rng(0)
    values = np.stack([SCALE[c][0] + SCALE[c][1] * rng.standard_normal((times.size, *GRID.shape))
                       for c in CHANNELS], axis=1).astype(np.float32)
    truth = xr.DataArray(values, dims=("time", "channel", "lat", "lon"),
                         coords={"time": times, "channel": list(CHANNELS), "lat": GRID.lat, "lon": GRID.lon})
    variables = {}
    for k, name in enumerate(CHANNELS):
        ch = get_channel(name)
        dims = ("time", "latitude", "longitude") if ch.level is None else ("time", "level", "latitude", "longitude")
        variables[ch.long_name] = (dims, values[:, k] if ch.level is None else values[:, k, None])
    xr.Dataset(variables, coords={"time": times, "level": [500], "latitude": GRID.lat.astype(np.float32),
                                  "longitude": GRID.lon.astype(np.float32)}).to_zarr(path, mode="w", zarr_format=2)
    write_stats(compute_stats(truth, GRID), stats_path(path))
    return truth


def write_ensemble(path: Path, members: int, inits: tuple, leads: tuple, truth: xr.DataArray) -> None:
    layout = MemberLayout(checkpoints=29, pairs=128, seeds=1) if members == 7424 else \
        MemberLayout(checkpoints=4, pairs=members // 8, seeds=1)
    spec = StoreSpec(channels=CHANNELS, init_times=inits, lead_hours=leads, grid=GRID, layout=layout,
                     batch_size=16, attrs={"hens_config": {"kind": "bench"}, "hens_version": "bench"})
    sink = open_sink(path, spec)
    rng = np.random.default_rng(1)
    for i, init in enumerate(inits):
        valid = init + np.array(leads, dtype="timedelta64[h]")
        y = truth.sel(time=valid).transpose("time", "channel", "lat", "lon").values
        for start in range(0, layout.size, 16):
            noise = rng.standard_normal((16, *y.shape), dtype=np.float32)
            scale = np.array([SCALE[c][1] for c in CHANNELS], dtype=np.float32)[None, None, :, None, None]
            sink.write(i, slice(start, start + 16), y[None] + noise * scale)
    sink.finalize()


def score(store: Path, truth: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of one `hens score` run."""
    cmd = [sys.executable, "-m", "hens.pipelines.cli", "score", "--forecast", str(store), "--truth", str(truth),
           "--out", str(out), "--no-progress", "--overwrite", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    peak = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            rss = next(int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("VmRSS:"))
            peak = max(peak, rss)
        except (OSError, StopIteration, ValueError):
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.read()[-3000:])
    return peak / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[256, 7424])
    parser.add_argument("--inits", type=int, default=2)
    parser.add_argument("--leads", type=int, default=4, help="lead times (every 6 h from 0)")
    parser.add_argument("--folder", type=Path, default=None, help="keep the stores here (default: a temp dir)")
    parser.add_argument("--score-args", default="", help="extra `hens score` options, e.g. '--workers 2'")
    args = parser.parse_args()
    times = pd.date_range("2000-01-01", periods=200, freq="6h").values.astype("datetime64[ns]")
    inits = tuple(times[40 + 8 * i] for i in range(args.inits))
    leads = tuple(6 * k for k in range(args.leads))
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        truth_path = folder / "truth.zarr"
        truth = None if truth_path.exists() else write_truth(truth_path, times)  # a kept folder: reused
        rows = []
        for m in args.members:
            store = folder / f"ens{m}.zarr"
            if not store.exists():
                if truth is None:
                    raise SystemExit(f"{folder} has a truth but no {store.name}: use a new --folder")
                write_ensemble(store, m, inits, leads, truth)
            peak, seconds = score(store, truth_path, folder / f"ens{m}.scores.zarr", args.score_args.split())
            rows.append({"members": m, "peak_rss_mib": round(peak, 1), "seconds": round(seconds, 2)})
            print(f"M = {m:5d}: peak RSS {peak:7.1f} MiB, {seconds:6.1f} s", flush=True)
    base = rows[0]["peak_rss_mib"]
    device = f"{device_name()}; load {os.getloadavg()[0]:.1f}"
    for r in rows:
        r.update(ratio=round(r["peak_rss_mib"] / base, 3), device=device,
                 case=f"32x64, {len(CHANNELS)} channels, {args.inits} inits, {args.leads} leads {args.score_args}".strip())
        print(f"M = {r['members']:5d}: RSS / RSS(M = {rows[0]['members']}) = {r['ratio']:.3f}")
    path = RESULTS / "score_rss.csv"
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        if f.tell() == 0:
            writer.writeheader()
        writer.writerows(rows)
    print(f"device: {device}\nwrote {path}")


if __name__ == "__main__":
    main()
