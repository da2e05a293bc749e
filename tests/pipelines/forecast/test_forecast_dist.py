"""`hens forecast` under torchrun with 2 ranks: equal to 1 rank, SIGKILL + --resume, failing input.

Every store is compared with a one-process reference array by array (``np.array_equal``,
NaN == NaN), the ``completed`` flags and coordinates included.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import xarray as xr

from hens.forecast.store_reader import open_store
from hens.pipelines.forecast.run import run_forecast

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


def _wait_for_a_flag(proc, store, timeout=240):
    """Return once a completion flag file of ``store`` is on disk (``proc`` must keep running)."""
    flags = store / "completed" / "c"  # chunk files only (completed/zarr.json is written with the template)
    deadline = time.monotonic() + timeout
    while not (flags.is_dir() and any(not f.name.startswith(".") for f in flags.rglob("*") if f.is_file())):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no batch completed in time"
        time.sleep(0.005)


def _kill_after_first_completion(cmd, store, timeout=240):
    """Start ``cmd``; SIGKILL it and its ranks as soon as a completion flag is on disk."""
    # torchrun puts each rank in its own session: kill the whole process tree by pid
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    _wait_for_a_flag(proc, store, timeout)
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


def _shards(store, done):
    """Content hash and mtime of every data shard of the completed batches ``done`` (init, batch)."""
    return {str(p.relative_to(store)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for i, b in done for p in (store / "fields" / "c" / str(i) / str(b)).rglob("*") if p.is_file()}


def test_one_rank_sigkilled_ends_the_job_and_one_rank_resumes_it_bit_identically(reference, ensemble_yaml, tmp_path):
    """SIGKILL only rank 1 of 2 after the first completion flag: the job exits non-zero long before
    the collective timeout (torchrun stops the other rank), completed batches stay completed and
    untouched, and ``--resume`` on one rank finishes the uninterrupted one-rank store."""
    config = ensemble_yaml(tmp_path, **KILL_CASE)
    store = tmp_path / "ens.zarr"
    proc = subprocess.Popen([*TORCHRUN, str(config), "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for_a_flag(proc, store)
        rank1 = [p for p in psutil.Process(proc.pid).children(recursive=True)
                 if p.environ().get("RANK") == "1" and p.parent().environ().get("RANK") != "1"]
        assert len(rank1) == 1, rank1
        rank1[0].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _, err = proc.communicate(timeout=120)
        ended = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            for p in [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]:
                p.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0 and ended < 60, (proc.returncode, ended, err.decode()[-3000:])
    flags = open_store(store)["completed"].values
    assert 0 < flags.sum() < flags.size, "the kill should leave a partial store"
    batch = KILL_CASE["batch_size"]
    done = {(i, m // batch) for i, m in zip(*np.nonzero(flags))}
    kept = _shards(store, done)
    res = subprocess.run([sys.executable, "-m", "hens.pipelines.cli", "forecast", str(config), "--resume",
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert _shards(store, done) == kept  # completed batches were kept, not recomputed
    _assert_same_arrays(store, reference)
    assert xr.open_zarr(store).attrs["world_size"] == 1


@pytest.mark.slow
def test_bad_input_under_torchrun_fails_every_rank_quickly(ensemble_yaml, world_store, tmp_path):
    config = ensemble_yaml(tmp_path, init_times=["2000-01-01T06"])  # bred vectors need 2000-01-01T00 - 6 h
    start = time.monotonic()
    res = _torchrun(config, "--no-progress", timeout=180)
    assert res.returncode != 0 and time.monotonic() - start < 120
    errors = [line for line in res.stderr.splitlines() if line.startswith("hens: error: ")]
    assert len(errors) == 2 and "needs analyses 1999-12-31T18" in errors[0], res.stderr[-3000:]
    assert not (tmp_path / "ens.zarr").exists()
