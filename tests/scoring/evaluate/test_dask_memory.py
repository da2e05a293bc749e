"""Scoring a Zarr ensemble larger than a memory budget: chunk by chunk, bounded memory.

A 640 MiB float32 ensemble (64 members, 320 times, 64 x 128 Legendre-Gauss grid) is written
to a temporary Zarr store; a fresh Python process opens it lazily and computes
area-weighted CRPS, the spread-skill ratio and a rank histogram with dask's threaded
scheduler. Its peak resident memory may grow by at most 300 MB (under half the store) over its
footprint after imports, and its address space is limited to that footprint + 300 MB, so an
implementation that loads the store fails to allocate instead of passing on a large machine.
A second test runs the same scores on a dask.distributed cluster.

The peak is the kernel's high-water mark of the child's own memory (``VmHWM``), reset after
imports. Not ``ru_maxrss``: on Linux a process started by fork/vfork + exec inherits the
pre-exec high-water mark, i.e. the peak of the pytest process that started it, so inside a
long suite ``ru_maxrss`` reports pytest's memory, not the scoring's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

from hens.forecast.grids import Grid

BUDGET_MB = 300
MEMBERS, TIMES, TIME_CHUNK = 64, 320, 4
GRID = Grid(64, 128)


def write_store(path: Path, times: int = TIMES) -> int:
    """Write the ensemble; return its size in bytes (uncompressed float32)."""
    coords = {"time": np.arange(times), "lat": GRID.lat, "lon": GRID.lon}
    rng = dsa.random.default_rng(0)
    shape = (MEMBERS, times, *GRID.shape)
    forecast = rng.standard_normal(
        shape, chunks=(MEMBERS, TIME_CHUNK, *GRID.shape), dtype=np.float32
    )
    truth = rng.standard_normal(shape[1:], chunks=(TIME_CHUNK, *GRID.shape), dtype=np.float32)
    ds = xr.Dataset(
        {
            "forecast": (("member", "time", "lat", "lon"), forecast),
            "truth": (("time", "lat", "lon"), truth),
        },
        coords=coords,
    )
    encoding = {name: {"compressors": None} for name in ds.data_vars}
    ds.to_zarr(path, mode="w", encoding=encoding, consolidated=False)
    return forecast.nbytes


SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import dask, xarray as xr
    import hens.scoring as hs

    def status(key):  # bytes, the kernel's accounting of this process (/proc/self/status)
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) * 1024

    store, scheduler, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ds = xr.open_zarr(store, consolidated=False)
    fc, truth = ds["forecast"], ds["truth"]
    hs.area_weights(fc["lat"], fc["lon"])  # imports torch-harmonics before the baseline
    scores = {
        "crps": hs.crps(fc, truth, fair=True, dim=["lat", "lon"]),
        "ssr": hs.spread_skill_ratio(fc, truth, dim=["time", "lat", "lon"]),
        "ranks": hs.rank_histogram(fc, truth, dim=["time", "lat", "lon"]),
    }
    assert all(dask.is_dask_collection(s.data) for s in scores.values()), "scores must stay lazy"
    if scheduler == "distributed":
        from distributed import Client, LocalCluster
        cluster = LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None
        )
        client = Client(cluster)
        config = {}
    else:
        config = {"scheduler": "threads", "num_workers": 1}  # one chunk in flight: a deterministic peak
        # a real limit: allocations beyond the budget over the current address space fail
        # (set here only: the distributed workers are processes that inherit it)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = status("VmSize") + budget
        resource.setrlimit(resource.RLIMIT_AS, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS (VmHWM) to the current RSS: the baseline
    baseline = status("VmRSS")
    with dask.config.set(config):
        values = dask.compute(*scores.values())
    crps, ssr, ranks = values
    print(json.dumps({"growth": status("VmHWM") - baseline, "baseline": baseline,
                      "crps0": float(crps[0]), "ssr": float(ssr), "ranks": ranks.values.tolist()}))
    """
)


def run_scores(store: Path, scheduler: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(store), scheduler, str(BUDGET_MB * 2**20)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        # one compute thread whatever the caller's environment: the budget is for one chunk
        # in flight, not for per-thread BLAS buffers
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_scores_a_store_twice_the_budget_in_bounded_memory(tmp_path):
    store = tmp_path / "ensemble.zarr"
    nbytes = write_store(store)
    assert nbytes >= 2 * BUDGET_MB * 2**20
    result = run_scores(store, "threads")
    print(f"scoring {nbytes / 2**20:.0f} MiB: peak RSS grew by {result['growth'] / 2**20:.0f} MiB "
          f"over {result['baseline'] / 2**20:.0f} MiB after imports")
    assert result["growth"] < BUDGET_MB * 2**20, (
        f"peak RSS grew by {result['growth'] / 2**20:.0f} MB"
    )
    # the numbers are right: time 0 against the eager computation, calibration ~1
    ds = xr.open_zarr(store, consolidated=False).isel(time=[0]).load()
    from hens.scoring import crps

    eager = crps(ds["forecast"], ds["truth"], fair=True, dim=["lat", "lon"])
    assert result["crps0"] == pytest.approx(float(eager[0]), rel=1e-5)
    assert result["ssr"] == pytest.approx(1.0, abs=0.01)
    assert sum(result["ranks"]) == pytest.approx(TIMES * GRID.nlat * GRID.nlon)


def test_distributed_cluster_gives_the_same_scores(tmp_path):
    from hens.scoring import crps, rank_histogram, spread_skill_ratio

    store = tmp_path / "small.zarr"
    write_store(store, times=8)
    result = run_scores(store, "distributed")
    ds = xr.open_zarr(store, consolidated=False).load()
    fc, truth = ds["forecast"], ds["truth"]
    assert result["crps0"] == pytest.approx(
        float(crps(fc, truth, fair=True, dim=["lat", "lon"])[0]), rel=1e-6
    )
    assert result["ssr"] == pytest.approx(
        float(spread_skill_ratio(fc, truth, dim=["time", "lat", "lon"])), rel=1e-6
    )
    expected = rank_histogram(fc, truth, dim=["time", "lat", "lon"]).values
    np.testing.assert_allclose(result["ranks"], expected, rtol=1e-12)
