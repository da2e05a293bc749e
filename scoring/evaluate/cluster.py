"""Where ``hens score`` computes: dask's threads, an existing scheduler or a local cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hens.forecast.allocator import tune_cpu_allocator
from hens.forecast.errors import ConfigError


def check_cluster(scheduler: str | None, workers: int | None) -> None:
    """Refuse both a scheduler address and a worker count, or fewer than one worker."""
    if scheduler is not None and workers is not None:
        raise ConfigError("pass either --scheduler ADDRESS (an existing dask cluster) or --workers N "
                          "(a local cluster), not both")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers}: give at least 1 worker process")


@contextmanager
def compute_on(scheduler: str | None, workers: int | None) -> Iterator[Callable[..., Any]]:
    """A ``compute(*graphs)`` on dask's threads, an existing scheduler or a LocalCluster.

    The sums are added in the graph's fixed order, so every choice gives the same bits.
    """
    import dask

    if scheduler is None and workers is None:
        tune_cpu_allocator()  # the pieces' multi-MB work arrays would fault in fresh pages each time
        yield lambda *graphs: dask.compute(*graphs, scheduler="threads")
        return
    from distributed import Client, LocalCluster

    if workers is not None:
        # one thread per process: the kernels are numpy loops that hold the GIL part of the time
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        cluster = None
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as err:
            raise ConfigError(f"cannot reach the dask scheduler at {scheduler} ({err}); start one "
                              "(`dask scheduler`, docs/slurm.md) or use --workers N") from None
    try:
        if cluster is not None:  # our own workers (another's cluster keeps its settings)
            client.run(tune_cpu_allocator)
        yield lambda *graphs: client.compute(list(graphs), sync=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
