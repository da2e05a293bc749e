"""A one-node SLURM cluster for the campaign tests (slurm/cluster.sh), and job helpers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prerequisites import require

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "slurm" / "cluster.sh"


@dataclass
class Cluster:
    """The running cluster: ``env`` for submitting (``hens`` on PATH), jobs to cancel at the end."""

    env: dict[str, str]
    submitted: list[str] = field(default_factory=list)

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=120)
        if check and res.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr[-2000:]}")
        return res

    def states(self, job: str) -> dict[str, str]:
        """``{job id: JobState}`` of a job or of every task of an array job."""
        out = self.run("scontrol", "-o", "show", "job", job).stdout
        return dict(re.findall(r"JobId=(\d+) .*?JobState=(\w+)", out))

    def wait(self, jobs: list[str], *, timeout: float, logs: Path | None = None) -> None:
        """Poll squeue until none of ``jobs`` is pending or running (bounded)."""
        deadline = time.monotonic() + timeout
        while self.run("squeue", "-h", "-j", ",".join(jobs), check=False).stdout.strip():
            if time.monotonic() > deadline:
                queue = self.run("squeue", check=False).stdout
                tails = "".join(f"\n--- {p.name}\n{p.read_text()[-800:]}" for p in sorted(logs.glob("*.out"))) \
                    if logs else ""
                pytest.fail(f"jobs {jobs} not done after {timeout:.0f} s:\n{queue}{tails}")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def slurm_cluster():
    """Starts the one-node cluster (installing SLURM with apt if needed); stops it afterwards
    if it was not running before. Skips (fails in CI) only without root or without SLURM and
    apt-get (``tests/prerequisites.py``)."""
    require(os.geteuid() == 0, "the SLURM tests start slurmctld/slurmd and need root")
    require(shutil.which("slurmctld") is not None or shutil.which("apt-get") is not None,
            "SLURM is not installed and apt-get is unavailable to install it")
    was_running = subprocess.run([str(CLUSTER), "status"], capture_output=True).returncode == 0
    res = subprocess.run([str(CLUSTER), "start"], capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        pytest.fail(f"slurm/cluster.sh start failed: {res.stdout[-1500:]}{res.stderr[-1500:]}")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "OMP_NUM_THREADS": "1"}
    cluster = Cluster(env)
    yield cluster
    if cluster.submitted:
        subprocess.run(["scancel", *cluster.submitted], capture_output=True)
    if not was_running:
        subprocess.run([str(CLUSTER), "stop"], capture_output=True, timeout=120)
