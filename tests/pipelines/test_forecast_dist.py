"""`hens forecast` under torchrun with 2 ranks: equal to 1 rank, SIGKILL + --resume, failing input.

Every store is compared with a one-process reference array by array (``np.array_equal``,
NaN == NaN), the ``completed`` flags and coordinates included.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import xarray as xr

from hens.forecast.store_reader import open_store
from hens.pipelines.forecast import run_forecast

pytestmark = pytest.mark.dist
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "hens.pipelines.cli", "forecast"]
# 2 times x 16 members in batches of 2 = 16 batches per rank, 17 leads each: long enough to be
# killed after the first batch completes and well before the last
KILL_CASE = {"lead_hours": 96, "batch_size": 2}


@pytest.fixture(scope="module")
def reference(ensemble_yaml, tmp_path_factory):
    folder = tmp_path_factory.mktemp("one-rank")
    run_forecast(ensemble_yaml(folder, **KILL_CASE), progress=False)
    return folder / "ens.zarr"


def _assert_same_arrays(a, b):
    da, db = open_store(a), open_store(b)
    assert set(da.variables) == set(db.variables)
    for name in da.variables:
        assert np.array_equal(da[name].values, db[name].values, equal_nan=True), name


def _torchrun(*args, timeout=300):
    return subprocess.run([*TORCHRUN, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_two_ranks_write_the_one_rank_store(reference, ensemble_yaml, tmp_path):
    res = _torchrun(ensemble_yaml(tmp_path, **KILL_CASE), "--no-progress")
    assert res.returncode == 0, res.stderr[-3000:]
    _assert_same_arrays(tmp_path / "ens.zarr", reference)
    assert xr.open_zarr(tmp_path / "ens.zarr").attrs["world_size"] == 2


def _kill_after_first_completion(cmd, store, timeout=240):
    """Start ``cmd``; SIGKILL it and its ranks as soon as a completion flag is on disk."""
    # torchrun puts each rank in its own session: kill the whole process tree by pid
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    flags = store / "completed" / "c"  # chunk files of the flags (temporary files start with ".")
    deadline = time.monotonic() + timeout
    while not (flags.is_dir() and any(f.is_file() and not f.name.startswith(".") for f in flags.rglob("*"))):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no batch completed in time"
        time.sleep(0.005)
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for p in tree:
        p.send_signal(signal.SIGKILL)
    psutil.wait_procs(tree, timeout=30)
    proc.wait()


def test_sigkill_midway_then_resume_equals_the_uninterrupted_run(reference, ensemble_yaml, tmp_path):
    config = ensemble_yaml(tmp_path, **KILL_CASE)
    store = tmp_path / "ens.zarr"
    _kill_after_first_completion([*TORCHRUN, str(config), "--no-progress"], store)
    done = open_store(store)["completed"].values
    assert 0 < done.sum() < done.size, "the kill should leave a partial store"
    res = _torchrun(config, "--resume", "--no-progress")
    assert res.returncode == 0, res.stderr[-3000:]
    _assert_same_arrays(store, reference)


@pytest.mark.slow
def test_bad_input_under_torchrun_fails_every_rank_quickly(ensemble_yaml, world_store, tmp_path):
    config = ensemble_yaml(tmp_path, init_times=["2000-01-01T06"])  # bred vectors need 2000-01-01T00 - 6 h
    start = time.monotonic()
    res = _torchrun(config, "--no-progress", timeout=180)
    assert res.returncode != 0 and time.monotonic() - start < 120
    errors = [line for line in res.stderr.splitlines() if line.startswith("hens: error: ")]
    assert len(errors) == 2 and "needs analyses 1999-12-31T18" in errors[0], res.stderr[-3000:]
    assert not (tmp_path / "ens.zarr").exists()
