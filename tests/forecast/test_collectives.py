"""Collectives of the engine: a failure on one rank becomes the same error on every rank."""

from __future__ import annotations

import multiprocessing as mp
import socket

import pytest
import torch

from hens.forecast.errors import DataError
from hens.forecast.ranks import agree, all_sum, share

pytestmark = pytest.mark.dist


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, results) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    out = {"sum": all_sum(rank + 1, torch.device("cpu")), "shared": share(f"from {rank}")}

    def check():
        if rank == 1:
            raise DataError("NaN on rank 1")
        return "ok"

    try:
        agree(check)
        out["agree"] = "passed"
    except DataError as err:
        out["agree"] = f"DataError: {err}"
    out["root_only"] = agree(lambda: "root", root_only=True)
    dist.destroy_process_group()
    results.put((rank, out))


def test_one_rank_failing_fails_every_rank_without_a_hang():
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, port, results)) for r in range(2)]
    for p in procs:
        p.start()
    got = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    for rank in (0, 1):
        assert got[rank]["sum"] == 3 and got[rank]["shared"] == "from 0"
        assert got[rank]["agree"] == "DataError: NaN on rank 1"
    assert got[0]["root_only"] == "root" and got[1]["root_only"] is None


def test_single_process_fallbacks():
    assert agree(lambda: 5) == 5 and share("x") == "x" and all_sum(4, torch.device("cpu")) == 4
