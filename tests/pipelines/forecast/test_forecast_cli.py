"""`hens forecast` with bad input: one `hens: error:` line, exit status 2, existing store untouched."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import zarr

from hens.forecast.store_reader import open_store
from hens.pipelines.forecast.run import run_forecast

HENS = [sys.executable, "-m", "hens.pipelines.cli"]


def _snapshot(path):
    """Every file of a store: size, modification time and content hash."""
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in files}


@pytest.fixture(scope="module")
def existing(ensemble_yaml, tmp_path_factory):
    """A finished small store that every bad run below aims at."""
    folder = tmp_path_factory.mktemp("existing")
    config = ensemble_yaml(folder, init_times=["2000-01-10T00"], lead_hours=6, batch_size=8)
    run_forecast(config, progress=False)
    return folder, config


@pytest.fixture(scope="module")
def nan_world(world_store, tmp_path_factory):
    """A copy of the world with one NaN in z500 at 2000-01-10T00."""
    path = tmp_path_factory.mktemp("nan") / "world.zarr"
    shutil.copytree(world_store, path)
    group = zarr.open_group(path, mode="r+")
    index = int((np.datetime64("2000-01-10T00") - np.datetime64("2000-01-01T00")) / np.timedelta64(6, "h"))
    field = group["geopotential"][index]
    field[0, 3, 5] = np.nan
    group["geopotential"][index] = field
    return path


def _run(*args):
    return subprocess.run([*HENS, "forecast", *map(str, args)], capture_output=True, text=True, timeout=300)


def _bad_config(case, folder, ensemble_yaml, ckpts, nan_world):
    if case == "bad yaml":
        path = folder / "bad.yaml"
        path.write_text("data: [unclosed\noutput: ens.zarr\n")
        return path
    overrides = {"init_times": ["2000-01-10T00"], "lead_hours": 6, "batch_size": 8}
    if case == "unknown key":
        overrides["colour"] = "red"
    elif case == "nan":
        overrides["data"] = str(nan_world)
    elif case == "channels":
        overrides["models"] = [str(ckpts["stoch0"]), str(ckpts["three"])]
    elif case == "grid":
        overrides["models"] = [str(ckpts["stoch0"]), str(ckpts["grid16"])]
    return ensemble_yaml(folder, name=f"{case.replace(' ', '_')}.yaml", **overrides)


@pytest.mark.parametrize("case, flags, message", [
    ("existing", (), "exists; pass --resume to continue it or --overwrite"),
    ("bad yaml", ("--overwrite",), "bad YAML in .*bad.yaml line"),
    ("unknown key", ("--overwrite",), "unknown key 'colour'"),
    ("nan", ("--overwrite",), "NaN/Inf in z500 at 2000-01-10T00:00"),
    ("channels", ("--overwrite",), "has other channels than stoch0.pt: lacks t2m"),
    ("grid", ("--overwrite",), "grid16.pt is for grid 16x32, stoch0.pt for 32x64"),
    ("resume other config", ("--resume",), "cannot resume: .* another configuration"),
])
def test_bad_input_is_one_line_and_leaves_the_store_alone(
    existing, ensemble_yaml, tiny_checkpoints, nan_world, case, flags, message
):
    folder, config = existing
    if case == "existing":
        path = config
    elif case == "resume other config":
        path = ensemble_yaml(folder, name="longer.yaml", init_times=["2000-01-10T00"], lead_hours=12, batch_size=8)
    else:
        path = _bad_config(case, folder, ensemble_yaml, tiny_checkpoints, nan_world)
    before = _snapshot(folder / "ens.zarr")
    res = _run(path, *flags, "--no-progress")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hens: error: "), res.stderr
    assert re.search(message, lines[0]), lines[0]
    assert _snapshot(folder / "ens.zarr") == before


def test_store_coordinates_align_exactly_with_the_truth(existing, world_store):
    """Forecast minus truth in plain xarray: the store's lat/lon are the source's, bit for bit."""
    import xarray as xr

    from hens.forecast.sources import open_source

    folder, _ = existing
    store = open_store(folder / "ens.zarr")
    truth = open_source(str(world_store))(store["init_time"].values, ["z500"]).isel(channel=0, time=0)
    analysis = store["z500"].isel(init_time=0, lead_time=0).mean("member")
    xr.align(analysis, truth, join="exact")  # raises on any coordinate mismatch
    assert float(abs(analysis - truth).max()) < 0.05 * float(truth.std())  # centred pairs: mean ~ analysis


def test_a_damaged_flag_stops_resume_with_one_line_and_its_advice_repairs_the_store(
    existing, ensemble_yaml, tmp_path
):
    folder, _ = existing
    store = shutil.copytree(folder / "ens.zarr", tmp_path / "ens.zarr")
    config = ensemble_yaml(tmp_path, init_times=["2000-01-10T00"], lead_hours=6, batch_size=8)
    flag = store / "completed" / "c" / "0" / "1"
    flag.write_bytes(b"not a flag")
    before = _snapshot(store)
    res = _run(config, "--resume", "--no-progress")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hens: error: "), res.stderr
    assert re.search(r"ens\.zarr: array completed, chunk completed/c/0/1 is unreadable \(RuntimeError: .*\); "
                     r"delete that file \(its batch is then recomputed\)", lines[0]), lines[0]
    assert _snapshot(store) == before
    flag.unlink()  # as the line says: batch 1 is recomputed, batch 0 kept
    shard0 = before["fields/c/0/0/0/0/0/0"]
    res = _run(config, "--resume", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert _snapshot(store)["fields/c/0/0/0/0/0/0"] == shard0
    repaired, original = open_store(store), open_store(folder / "ens.zarr")
    for name in original.variables:
        assert np.array_equal(repaired[name].values, original[name].values, equal_nan=True), name
