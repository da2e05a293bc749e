"""`hens campaign` on a one-node SLURM cluster: train -> forecast -> score, and a requeue.

A tiny campaign (2 seeds x 30 training steps, 2 initial times, 2 ranks per forecast job,
16 members x 48 h) runs through the batch scripts. While the first forecast array task runs,
its ranks are frozen (SIGSTOP) as soon as a first batch is complete on disk -- so the store
is partial whatever the machine's speed -- and SLURM requeues the task (`scontrol
requeuehold`: the job is killed and held). After release the batch script restarts with
`--resume`; the finished store must equal an uninterrupted one-process run bit for bit, and
the chain (afterok) goes on to the scores. ~1.5 minutes on 2 cores plus the world fixture.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import xarray as xr
import yaml
from hens_packages import era5_and_packages

from hens.forecast.store_reader import open_store
from hens.pipelines.forecast.run import run_forecast

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(600)]
INITS = ["2000-01-20T00", "2000-01-27T00"]


def _campaign_yaml(folder: Path, data: Path) -> Path:
    values = {
        "data": str(data), "output": "campaign", "seeds": 2,
        "train": {"steps": 30, "stochastic": True, "members": 2, "embed_dim": 8, "layers": 2, "batch": 2},
        "init_times": INITS, "lead_hours": 48, "ranks": 2,
        "perturbation": {"kind": "hemispheric_bred_vector", "pairs": 4, "cycles": 2},
        "forecast": {"seeds": 1, "batch_size": 1},
        "score": {"thresholds": [0.9]},
    }
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _partial(store: Path) -> bool:
    flags = store / "completed" / "c"  # chunk files of the flags (temporary files start with ".")
    return flags.is_dir() and any(f.is_file() and not f.name.startswith(".") for f in flags.rglob("*"))


def _freeze_ranks(config: Path) -> list[psutil.Process]:
    """SIGSTOP the `hens forecast CONFIG` ranks (not srun): the store stays as it is now."""
    ranks = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if str(config) in cmd and "forecast" in cmd and not os.path.basename(cmd[0]).startswith("srun"):
            try:
                p.send_signal(signal.SIGSTOP)
                ranks.append(p)
            except psutil.NoSuchProcess:
                pass
    return ranks


def _interrupt_and_requeue(cluster, task: str, config: Path, store: Path, timeout: float = 240) -> np.ndarray:
    """Requeue ``task`` once a batch of ``store`` is complete; return its flags at the kill."""
    for _attempt in range(3):
        deadline = time.monotonic() + timeout
        while not _partial(store):
            assert time.monotonic() < deadline, f"no batch of {store.name} completed in {timeout} s"
            time.sleep(0.005)
        _freeze_ranks(config)
        cluster.run("scontrol", "requeuehold", task)
        while "JobState=PENDING" not in cluster.run("scontrol", "show", "job", task).stdout:
            time.sleep(0.1)  # killed and held
        done = open_store(store)["completed"].values
        # a requeued job waits ~2 min before it may start again (SLURM); start it now
        cluster.run("scontrol", "update", f"JobId={task}", "StartTime=now")
        if 0 < done.sum() < done.size:
            cluster.run("scontrol", "release", task)
            return done
        shutil.rmtree(store)  # it finished before the kill: run it again from scratch
        cluster.run("scontrol", "release", task)
    pytest.fail("could not interrupt the forecast midway in 3 attempts")


def _assert_same_arrays(a: Path, b: Path) -> None:
    da, db = open_store(a), open_store(b)
    assert set(da.variables) == set(db.variables)
    for name in da.variables:
        assert np.array_equal(da[name].values, db[name].values, equal_nan=True), name


def test_campaign_trains_forecasts_scores_and_survives_a_requeue(slurm_cluster, world_store, tmp_path):
    cluster = slurm_cluster
    config = _campaign_yaml(tmp_path, world_store)
    start = time.monotonic()
    res = cluster.run("hens", "campaign", str(config))
    jobs = dict(line.split()[:2] for line in res.stdout.splitlines())
    assert set(jobs) == {"train", "forecast", "score"}, res.stdout
    cluster.submitted += list(jobs.values())
    out = tmp_path / "campaign"
    fc = out / "forecasts"
    assert (out / "forecasts.txt").read_text().split() == [str(fc / f"{t}.yaml") for t in INITS]

    # interrupt the first forecast array task midway; SLURM requeues it, the script resumes
    first_config, first_store = fc / f"{INITS[0]}.yaml", fc / f"{INITS[0]}.zarr"
    task = f"{jobs['forecast']}_0"
    at_kill = _interrupt_and_requeue(cluster, task, first_config, first_store)

    cluster.wait(list(jobs.values()), timeout=400, logs=out / "logs")
    elapsed = time.monotonic() - start
    for step, job in jobs.items():
        states = cluster.states(job)
        assert states and set(states.values()) == {"COMPLETED"}, (step, states)
    log = (out / "logs" / f"forecast-{jobs['forecast']}_0.out").read_text()
    assert "restart 1" in log and "--resume" in log, log

    # checkpoints, complete forecast stores written by 2 ranks, scores
    assert sorted(p.name for p in (out / "checkpoints").glob("*.pt")) == ["sfno-seed0.pt", "sfno-seed1.pt"]
    for t in INITS:
        ds = open_store(fc / f"{t}.zarr")
        assert ds.sizes["member"] == 16 and ds.sizes["lead_time"] == 9
        assert ds["completed"].values.all() and ds.attrs["world_size"] == 2
        assert np.isfinite(ds["z500"].values).all()
        scores = xr.open_zarr(fc / f"{t}.scores.zarr")
        assert np.isfinite(scores["crps"].values).all()

    # the requeued store equals an uninterrupted run (one process) bit for bit
    assert 0 < at_kill.sum() < at_kill.size
    values = yaml.safe_load(first_config.read_text())
    values["output"] = "reference.zarr"
    (tmp_path / "reference.yaml").write_text(yaml.safe_dump(values))
    run_forecast(tmp_path / "reference.yaml", progress=False)
    _assert_same_arrays(first_store, tmp_path / "reference.zarr")
    print(f"campaign with a requeue: {elapsed:.0f} s")


def test_a_campaign_runs_published_packages_without_training(slurm_cluster, tmp_path):
    """Given models (two Huge-Ensembles-style packages, tests/models/makani/package_builders.py) on an ERA5
    store: the forecast array starts at once and the score array follows it."""
    era5, packages = era5_and_packages(tmp_path)
    models = [p.name for p in packages]
    inits = ["2021-03-13T00", "2021-03-14T00"]
    config = tmp_path / "campaign.yaml"
    config.write_text(yaml.safe_dump({
        "data": str(era5), "output": "campaign", "models": models, "init_times": inits, "lead_hours": 24,
        "ranks": 2, "perturbation": {"kind": "hemispheric_bred_vector", "pairs": 2, "cycles": 2},
        "forecast": {"batch_size": 4}, "score": {"thresholds": [0.9]},
    }))
    res = slurm_cluster.run("hens", "campaign", str(config))
    jobs = dict(line.split()[:2] for line in res.stdout.splitlines())
    assert set(jobs) == {"forecast", "score"}, res.stdout
    slurm_cluster.submitted += list(jobs.values())
    out = tmp_path / "campaign"
    slurm_cluster.wait(list(jobs.values()), timeout=400, logs=out / "logs")
    for step, job in jobs.items():
        states = slurm_cluster.states(job)
        assert states and set(states.values()) == {"COMPLETED"}, (step, states)
    for t in inits:
        ds = open_store(out / "forecasts" / f"{t}.zarr")
        assert ds.sizes["member"] == 8 and ds["completed"].values.all() and ds.attrs["world_size"] == 2
        assert np.isfinite(ds["d2m"].values).all() and "measured by hens" in ds.attrs["perturbation_scale_source"]
        assert np.isfinite(xr.open_zarr(out / "forecasts" / f"{t}.scores.zarr")["crps"].values).all()
