"""Independent long jobs (training runs, a physics ensemble) on a small pool of processes.

The demo trains five models and runs the physics ensemble at the same time: each job is a
single-threaded process, so on a 2-core machine two of them finish in the time of one. Jobs
write their log to a file (their own progress bars are off); the parent shows one progress
row per job, advanced by each job's :attr:`Task.progress` callable (polled, no IPC).
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from multiprocessing.pool import AsyncResult
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hens.forecast.errors import HensError

_POLL_S = 1.0


@dataclass(frozen=True)
class Task:
    """One job: ``run(*args)`` in a worker process, its output in ``log``.

    ``progress(elapsed seconds)`` (called in the parent) returns the completed fraction in
    [0, 1], e.g. the elapsed share of a time budget or the completed members of a store.
    """

    name: str
    run: Callable[..., Any]
    args: tuple[Any, ...]
    log: Path
    progress: Callable[[float], float]


def _call(run: Callable[..., Any], args: tuple[Any, ...], log: str) -> Any:
    import torch

    torch.set_num_threads(1)  # one core per job: OpenMP spin-waiting across jobs costs far more
    with open(log, "a") as f, redirect_stdout(f), redirect_stderr(f):
        return run(*args)


@contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's cancel) raises SystemExit here, so that the caller's
    ``finally`` stops the jobs: without it the parent dies at once and its workers, orphaned,
    go on training beside whatever runs next."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_now(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_tasks(tasks: Sequence[Task], *, workers: int) -> dict[str, Any]:
    """Run ``tasks`` on ``workers`` processes (in order of the list); returns results by name.

    A failing job stops the others; its error is re-raised (a :class:`HensError` as is, any
    other error as one line naming the job and its log). Ctrl-C or SIGTERM stops every job.
    """
    if not tasks:
        return {}
    for t in tasks:
        t.log.parent.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    with _sigterm_exits():
        # maxtasksperchild=1: each job gets a fresh interpreter (no state, no memory from the last)
        pool = context.Pool(workers, maxtasksperchild=1)
        try:
            results = _drive(pool, tasks, workers)
            pool.close()
        finally:
            pool.terminate()  # after close(): no-op; after an error, Ctrl-C or SIGTERM: stops the other jobs
            pool.join()
    return results


def _drive(pool: Any, tasks: Sequence[Task], workers: int) -> dict[str, Any]:
    """Start jobs as workers free up, show their progress, collect their results."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    results: dict[str, Any] = {}
    with Progress(TextColumn("{task.description:<34}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        rows = {t.name: bar.add_task(t.name, total=1.0, start=False) for t in tasks}
        running: dict[str, tuple[Task, AsyncResult, float]] = {}
        queue = list(tasks)
        while queue or running:
            while queue and len(running) < workers:
                t = queue.pop(0)
                running[t.name] = (t, pool.apply_async(_call, (t.run, t.args, str(t.log))), time.monotonic())
                bar.start_task(rows[t.name])
            time.sleep(_POLL_S)
            for name, (t, job, began) in list(running.items()):
                if not job.ready():
                    bar.update(rows[name], completed=min(0.99, t.progress(time.monotonic() - began)))
                    continue
                del running[name]
                try:
                    results[name] = job.get()
                except HensError:
                    raise
                except Exception as err:
                    raise HensError(f"{name} failed ({type(err).__name__}: {err}); see {t.log}") from err
                bar.update(rows[name], completed=1.0)
                bar.stop_task(rows[name])
    return results
