"""Published SFNO packages in an ensemble: two Huge-Ensembles-style packages (74 channels, scale
factor 2, the HENS conversion's checkpoint style) on a WeatherBench2-layout ERA5 store with the 74
variables, hemispheric bred vectors, ``torchrun`` with 2 ranks.

The packages are tiny (embed 8, 2 blocks, 9x16 grid; ``tests/models/makani/package_builders.py``); the
perturbation scale is each package's 48-hour RMSE, which hens measures on the store and caches
beside the output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hens_packages import era5_and_packages, write_era5
from sample_layouts import ERA5_74

from hens.forecast.store_reader import open_store
from hens.pipelines.forecast.run import compute_member, run_forecast

pytestmark = pytest.mark.dist


@pytest.fixture(scope="module")
def hens_packages(tmp_path_factory):
    return era5_and_packages(tmp_path_factory.mktemp("packages"))


def _config(folder: Path, era5: Path, packages: list[Path], **overrides) -> Path:
    values = {"data": str(era5), "output": "ens.zarr", "init_times": ["2021-03-13T00"], "lead_hours": 24,
              "models": [str(p) for p in packages],
              "perturbation": {"kind": "hemispheric_bred_vector", "pairs": 2, "cycles": 2, "amplitude": 0.35},
              "batch_size": 4, "seed": 0, **overrides}
    path = folder / "ens.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_two_hens_packages_on_era5_with_bred_vectors_on_two_ranks(hens_packages, tmp_path):
    era5, packages = hens_packages
    config = _config(tmp_path, era5, packages)
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "hens.pipelines.cli", "forecast", str(config), "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    ds = open_store(tmp_path / "ens.zarr")
    assert ds.sizes["member"] == 8 and ds["completed"].values.all() and ds.attrs["world_size"] == 2
    assert "d2m" in ds and "q1000" in ds and len([v for v in ds.data_vars if ds[v].dims[-2:] == ("lat", "lon")]) == 74
    values = np.stack([ds[c].values for c in ("z500", "t2m", "d2m", "q850")])
    assert np.isfinite(values).all()
    for c in ("z500", "t2m", "u10m"):
        field = ds[c].isel(init_time=0)
        # members differ from each other at every lead, also those of one package at lead 0
        assert all(field.isel(lead_time=k).std("member").min() > 0 for k in range(field.sizes["lead_time"]))
    records = json.loads(ds.attrs["checkpoints"])
    assert [r["name"] for r in records] == ["sfno_seed1", "sfno_seed2"] and records[0]["sha256"] != records[1]["sha256"]
    source = ds.attrs["perturbation_scale_source"]
    cache = tmp_path / "ens.rmse_48h.json"
    assert "measured by hens" in source and str(cache) in source and cache.is_file()
    entries = json.loads(cache.read_text())["entries"]
    assert len(entries) == 2 and all(len(e["rmse"]) == 74 and min(e["rmse"]) > 0 for e in entries.values())
    # the recorded members are pure functions of their ids: one recomputed in one process is bit-identical
    member = compute_member(config, "2021-03-13T00", 5)
    assert np.array_equal(member["z500"].values, ds["z500"].isel(init_time=0, member=5).values)


def test_a_rerun_reads_the_cached_rmse(hens_packages, tmp_path):
    era5, packages = hens_packages
    cache = tmp_path / "rmse.json"
    run_forecast(_config(tmp_path, era5, packages[:1], output="a.zarr",
                         perturbation={"kind": "hemispheric_bred_vector", "pairs": 1, "cycles": 1,
                                       "rmse_file": "rmse.json"}), progress=False)
    stamp = cache.stat().st_mtime_ns
    run_forecast(_config(tmp_path, era5, packages[:1], output="b.zarr",
                         perturbation={"kind": "hemispheric_bred_vector", "pairs": 1, "cycles": 1,
                                       "rmse_file": "rmse.json"}), progress=False)
    assert cache.stat().st_mtime_ns == stamp
    a, b = open_store(tmp_path / "a.zarr"), open_store(tmp_path / "b.zarr")
    assert a.attrs["perturbation_amplitudes"] == b.attrs["perturbation_amplitudes"]
    assert np.array_equal(a["t850"].values, b["t850"].values)


def test_a_store_without_a_variable_the_package_needs_is_one_line(hens_packages, tmp_path):
    _, packages = hens_packages
    era5 = write_era5(tmp_path, tuple(c for c in ERA5_74 if not c.startswith("q")), "no_q.zarr")
    res = subprocess.run([sys.executable, "-m", "hens.pipelines.cli", "forecast", str(_config(tmp_path, era5, packages)),
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hens: error:") and "q50" in lines[0] and "sfno_seed1" in lines[0]
