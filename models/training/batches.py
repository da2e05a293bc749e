"""Training batches read lazily from a data source, with a bounded prefetch.

:class:`TimeBlock` holds the valid times of a block (training or validation) and a cache of
recently read states bounded in bytes (least recently used out); a batch reads the states
it lacks from the source (any ``DataSource``: a local or remote Zarr store, netCDF files),
so memory does not grow with the period. A block that fits in the cache (the demo's world)
is kept whole as the normalisation statistics read it (:meth:`TimeBlock.keep`): training
then reads nothing and runs as fast as with the block in memory. A longer block is read
again as training samples it. :class:`MemoryBlock` is the same interface over
the whole block loaded at once (for comparisons and benchmarks).

:class:`Prefetcher` reads the next batches on one background thread while the model
trains. It never draws random numbers itself: the training loop predicts the next start
indices with a *copy* of its batch generator, so the batch order stays a pure function of
the seed, and a wrong prediction (the step count was fixed meanwhile) only costs a
synchronous read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import torch

from hens.forecast.types import STEP
from hens.models.training.data import times_per_read

Batch = tuple[torch.Tensor, torch.Tensor]


class Block(Protocol):
    """Consecutive states of one block of valid times."""

    times: np.ndarray

    def starts(self, rollout: int) -> np.ndarray: ...

    def batch(self, starts: np.ndarray, rollout: int) -> Batch: ...


def rollout_starts(times: np.ndarray, rollout: int) -> np.ndarray:
    """Indices ``i`` of ``times`` whose states ``i + 1 .. i + rollout`` follow every 6 hours."""
    steps = np.diff(times) == STEP
    ok = np.ones(times.size - rollout, dtype=bool) if times.size > rollout else np.zeros(0, bool)
    for k in range(rollout):
        ok &= steps[k : k + ok.size]
    return np.flatnonzero(ok)


def _split(states: np.ndarray) -> Batch:
    """``(B, 1 + rollout, C, H, W)`` -> ``x0`` ``(B, C, H, W)``, targets ``(rollout, B, C, H, W)``."""
    x0 = torch.from_numpy(np.ascontiguousarray(states[:, 0]))
    return x0, torch.from_numpy(np.ascontiguousarray(states[:, 1:].swapaxes(0, 1)))


class TimeBlock:
    """A block of valid times whose states are read from ``source`` batch by batch.

    Parameters
    ----------
    source
        A :class:`~hens.forecast.protocols.DataSource`.
    times
        The block's valid times (``datetime64[ns]``, ascending).
    channels
        Channels to read, model order.
    cache_bytes
        Most bytes of states kept once read (0: none).
    """

    def __init__(self, source: Any, times: np.ndarray, channels: Sequence[str], *, cache_bytes: int = 0) -> None:
        self.source = source
        self.times = np.asarray(times, dtype="datetime64[ns]")
        self.channels = list(channels)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._capacity = int(cache_bytes) // (4 * len(self.channels) * int(np.prod(source.grid.shape)))
        self._lock = threading.Lock()  # the prefetch thread and the training loop share the cache

    def starts(self, rollout: int) -> np.ndarray:
        return rollout_starts(self.times, rollout)

    def read(self, index: np.ndarray) -> np.ndarray:
        """States at ascending unique positions ``index``: float32 ``(len(index), C, H, W)``.

        One source read per <= ~16 MiB (a Zarr store decodes scattered times in one call);
        a source with a ``read`` method (:class:`~hens.forecast.sources.GriddedSource`)
        skips building a DataArray, which costs more than decoding a training batch.
        """
        read = getattr(self.source, "read", None) or (lambda t, c: self.source(t, c).values)
        step = times_per_read(self.source.grid, len(self.channels))
        blocks = [np.asarray(read(self.times[index[i : i + step]], self.channels), dtype=np.float32)
                  for i in range(0, index.size, step)]
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)

    @property
    def fits(self) -> bool:
        """Whether the cache holds every state of the block."""
        return self._capacity >= self.times.size

    def keep(self, first: int, data: np.ndarray) -> None:
        """Cache ``data`` ``(time, C, H, W)``, the states at positions ``first, first + 1, ...``
        (read for another purpose, e.g. statistics); only when the whole block :attr:`fits`,
        so nothing is evicted and the views never keep an evicted read alive."""
        if not self.fits:
            return
        with self._lock:
            for k, state in enumerate(data):
                self._cache[first + k] = state

    def states(self, index: np.ndarray) -> np.ndarray:
        """:meth:`read`, taking the states in the cache from there and keeping the new ones."""
        if self._capacity == 0:
            return self.read(index)
        out = np.empty((index.size, len(self.channels), *self.source.grid.shape), dtype=np.float32)
        with self._lock:
            missing = []
            for k, i in enumerate(index.tolist()):
                if i in self._cache:
                    self._cache.move_to_end(i)
                    out[k] = self._cache[i]
                else:
                    missing.append(k)
        if missing:
            fresh = self.read(index[missing])
            out[missing] = fresh
            with self._lock:
                for k, state in zip(missing, fresh):
                    self._cache[int(index[k])] = state.copy()  # a view would keep the whole read alive
                while len(self._cache) > self._capacity:
                    self._cache.popitem(last=False)
        return out

    def batch(self, starts: np.ndarray, rollout: int) -> Batch:
        """``(x0, targets)``: ``(B, C, H, W)`` and ``(rollout, B, C, H, W)`` float32 tensors."""
        index = starts[:, None] + np.arange(rollout + 1)
        unique, inverse = np.unique(index, return_inverse=True)
        return _split(self.states(unique)[inverse.reshape(index.shape)])


class MemoryBlock:
    """:class:`TimeBlock` with every state loaded up front (memory grows with the period)."""

    def __init__(self, source: Any, times: np.ndarray, channels: Sequence[str]) -> None:
        lazy = TimeBlock(source, times, channels)
        self.times = lazy.times
        self.data = lazy.read(np.arange(self.times.size))

    def starts(self, rollout: int) -> np.ndarray:
        return rollout_starts(self.times, rollout)

    def batch(self, starts: np.ndarray, rollout: int) -> Batch:
        return _split(self.data[starts[:, None] + np.arange(rollout + 1)])


class Prefetcher:
    """Reads requested batches of ``block`` on one background thread, at most ``depth`` ahead.

    Parameters
    ----------
    block
        Where batches come from.
    depth
        Batches held or being read at once (memory: ``depth`` batches).
    """

    def __init__(self, block: Block, *, depth: int = 2) -> None:
        self.block, self.depth = block, depth
        self._pool: ThreadPoolExecutor | None = None
        self._pending: OrderedDict[tuple[int, bytes], Future[Batch]] = OrderedDict()

    @staticmethod
    def _key(starts: np.ndarray, rollout: int) -> tuple[int, bytes]:
        return rollout, np.ascontiguousarray(starts, dtype=np.int64).tobytes()

    def request(self, starts: np.ndarray, rollout: int) -> None:
        """Start reading this batch in the background (unless it is already pending)."""
        key = self._key(starts, rollout)
        if key in self._pending:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="hens-prefetch")
        self._pending[key] = self._pool.submit(self.block.batch, starts.copy(), rollout)
        while len(self._pending) > self.depth:  # a prediction that did not come true
            self._pending.popitem(last=False)[1].cancel()

    def batch(self, starts: np.ndarray, rollout: int) -> Batch:
        """The batch, from the background read if it was requested, else read now."""
        future = self._pending.pop(self._key(starts, rollout), None)
        return future.result() if future is not None else self.block.batch(starts, rollout)

    def close(self) -> None:
        """Drop pending reads and stop the thread."""
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
