"""The demo's job pool: a terminated parent (SIGTERM, as ``kill`` or a scheduler's cancel
sends) stops its jobs instead of leaving them running, orphaned."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil

PARENT = """
from pathlib import Path

from hens.pipelines.demo.tasks import Task, run_tasks

if __name__ == "__main__":
    here = Path(__file__).parent
    job = "import pathlib, time; pathlib.Path({!r}).touch(); time.sleep(300)"  # marks that it runs
    run_tasks([Task(f"job {i}", exec, (job.format(str(here / f"running-{i}")),), here / "jobs.log", lambda _: 0.0)
               for i in range(2)], workers=2)
"""


def _wait(condition, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_sigterm_to_the_parent_stops_its_jobs(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # both workers up and each running its job (a spawned worker imports the package first)
        def workers() -> list[psutil.Process]:  # not multiprocessing's resource tracker
            return [c for c in psutil.Process(parent.pid).children() if "spawn_main" in " ".join(c.cmdline())]

        assert _wait(lambda: all((tmp_path / f"running-{i}").exists() for i in range(2)), 120), "no job started"
        children = workers()
        assert len(children) == 2
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 128 + signal.SIGTERM
        assert _wait(lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children), 30), \
            "the jobs outlived their parent"
    finally:
        for c in psutil.Process().children(recursive=True):
            c.kill()
