"""Lazy training batches: the same bits as the in-memory block, statistics streamed block by
block equal to the whole-period ones, prefetching that does not change the run, and training
from an fsspec URL (memory://) of the world store."""

from __future__ import annotations

import uuid

import fsspec
import numpy as np
import pytest
import torch

from hens.forecast.sources import open_source
from hens.models.checkpoint import load_checkpoint
from hens.models.runtime import Distributed
from hens.models.training import data as training_data
from hens.models.training import Run, TrainConfig, train
from hens.models.training.batches import MemoryBlock, Prefetcher, TimeBlock
from hens.models.training.data import area_weighted_stats, streaming_stats

from test_train import WaveSource, _cfg


def _gap_times(src: WaveSource) -> np.ndarray:
    """The source's times with a hole (so that some starts have no successor)."""
    return np.delete(src.times, [40, 41])


@pytest.mark.parametrize("rollout", [1, 3])
@pytest.mark.parametrize("cached", [0, 7], ids=["no-cache", "cache-of-7"])
def test_lazy_batches_equal_the_in_memory_ones(rollout, cached):
    src = WaveSource(days=30)
    times = _gap_times(src)
    state_bytes = 4 * len(src.channels) * src.grid.nlat * src.grid.nlon
    lazy = TimeBlock(src, times, src.channels, cache_bytes=cached * state_bytes)
    memory = MemoryBlock(src, times, src.channels)
    starts = lazy.starts(rollout)
    np.testing.assert_array_equal(starts, memory.starts(rollout))
    # no rollout across the hole
    assert 40 - rollout not in starts and 39 not in starts and 40 in starts and 39 - rollout in starts
    for pick in (starts[[0, 5, 5, 17, -1]], starts[[5, 6, 0, 30]], starts[[17, 18]]):  # repeats, any order
        for a, b in zip(lazy.batch(pick, rollout), memory.batch(pick, rollout)):
            assert a.shape == b.shape and torch.equal(a, b)
        assert len(lazy._cache) <= cached  # bounded: least recently used states go
    x0, targets = lazy.batch(pick, rollout)
    assert x0.shape == (2, 2, *src.grid.shape) and targets.shape == (rollout, 2, 2, *src.grid.shape)


def test_streamed_statistics_equal_the_whole_period_to_the_bit(monkeypatch):
    src = WaveSource(days=20)
    times = _gap_times(src)
    whole = area_weighted_stats(src(times, src.channels).values, times, src.grid)
    monkeypatch.setattr(training_data, "_READ_BYTES", 7 * 4 * 2 * 16 * 32)  # blocks of 7 times
    streamed = streaming_stats(src, times, src.channels)
    for key in whole:
        assert np.array_equal(whole[key], streamed[key]), key


def test_prefetcher_returns_what_a_direct_read_does():
    src = WaveSource(days=10)
    block = TimeBlock(src, src.times, src.channels)
    fetch = Prefetcher(block, depth=2)
    for starts in (np.array([1, 2]), np.array([3, 4]), np.array([5, 6])):
        fetch.request(starts, 1)
    assert len(fetch._pending) == 2  # bounded: the oldest request was dropped
    for starts in (np.array([1, 2]), np.array([5, 6]), np.array([7, 8])):
        for a, b in zip(fetch.batch(starts, 1), block.batch(starts, 1)):
            assert torch.equal(a, b)
    fetch.close()


@pytest.mark.parametrize("cache_mb", [0.0, 0.2, 1024.0], ids=["read-every-batch", "cache-part", "kept-whole"])
def test_lazy_and_in_memory_runs_are_identical(tmp_path, cache_mb):
    src = WaveSource()
    cfg = _cfg(tmp_path, stochastic=True, members=2, steps=5, rollout=2, cache_mb=cache_mb)
    runs = [Run(cfg, Distributed(), src, in_memory=m) for m in (False, True)]
    lazy = runs[0].train_data
    # the statistics pass caches a block that fits (and nothing of one that does not)
    assert lazy.fits == (cache_mb == 1024.0) and len(lazy._cache) == (lazy.times.size if lazy.fits else 0)
    for run in runs:
        for _ in range(5):
            run.train_step()
        run.close()
    assert runs[0].train_loss == runs[1].train_loss
    a, b = (r.model.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_trains_from_a_memory_url(world_store, tmp_path):
    url = f"memory://{uuid.uuid4().hex}/world.zarr"
    fsspec.filesystem("memory").put(str(world_store), url.removeprefix("memory://"), recursive=True)
    cfg = TrainConfig(data=(url,), out=tmp_path / "m.pt", steps=3, batch=2, embed_dim=8, num_layers=1,
                      scale_factor=2, progress=False, train_period="2000-01-01:2000-01-31",
                      valid_period="2000-02-10:2000-02-29")
    ckpt = load_checkpoint(train(cfg))
    local = load_checkpoint(train(TrainConfig(**{**cfg.__dict__, "data": (str(world_store),),
                                                  "out": tmp_path / "l.pt"})))
    assert ckpt.extra["split"]["periods"] == ["2000-01-01:2000-01-31", "2000-02-10:2000-02-29"]
    assert ckpt.extra["train_loss"] == local.extra["train_loss"] and ckpt.data_sha256 == local.data_sha256
    assert open_source(url).times.size == open_source(world_store).times.size
