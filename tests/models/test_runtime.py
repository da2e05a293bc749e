"""Process setup: collectives of a process group from ``setup_distributed`` time out."""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import time
from datetime import timedelta

import pytest

from hens.forecast.errors import ConfigError
from hens.models.runtime import DEFAULT_DIST_TIMEOUT_S, dist_timeout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, results, release) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), HENS_DIST_TIMEOUT_S="3")
    import torch

    from hens.forecast.ranks import all_sum
    from hens.models.runtime import setup_distributed

    torch.set_num_threads(1)
    info = setup_distributed()
    if rank == 1:  # alive but never joins the collective: a hung peer
        release.wait(120)
        return
    start = time.monotonic()
    try:
        all_sum(1, info.device)
        results.put(("returned", time.monotonic() - start))
    except Exception as err:  # gloo's timeout error (its type differs between torch versions)
        results.put((str(err), time.monotonic() - start))


@pytest.mark.dist
def test_a_collective_waiting_for_a_hung_peer_gives_up_after_the_timeout():
    ctx = mp.get_context("spawn")
    results, release = ctx.Queue(), ctx.Event()
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, port, results, release)) for r in range(2)]
    for p in procs:
        p.start()
    try:
        message, waited = results.get(timeout=120)
    finally:
        release.set()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert "timed out waiting 3000ms" in message.lower(), message  # gloo's message names the timeout
    assert 3 <= waited < 30, waited


@pytest.mark.parametrize("value, seconds", [(None, DEFAULT_DIST_TIMEOUT_S), ("90", 90), ("0.5", 0.5)])
def test_timeout_from_the_environment(value, seconds):
    env = {} if value is None else {"HENS_DIST_TIMEOUT_S": value}
    assert dist_timeout(env) == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["", "ten", "0", "-5", "inf", "nan"])
def test_a_bad_timeout_is_a_config_error_naming_the_variable(value):
    with pytest.raises(ConfigError, match=f"HENS_DIST_TIMEOUT_S='{value}': give a number of seconds > 0"):
        dist_timeout({"HENS_DIST_TIMEOUT_S": value})
