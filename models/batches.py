"""Training batches read lazily from a data source, with a bounded prefetch.

:class:`TimeBlock` holds only the valid times of a block (training or validation); a batch
reads the states it needs from the source (any ``DataSource``: a local or remote Zarr
store, netCDF files), so memory does not grow with the period. :class:`MemoryBlock` is the
same interface over the whole block loaded at once (for comparisons and benchmarks).

:class:`Prefetcher` reads the next batches on one background thread while the model
trains. It never draws random numbers itself: the training loop predicts the next start
indices with a *copy* of its batch generator, so the batch order stays a pure function of
the seed, and a wrong prediction (the step count was fixed meanwhile) only costs a
synchronous read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import torch

from hens.models.training_data import SIX_HOURS, times_per_read

Batch = tuple[torch.Tensor, torch.Tensor]


class Block(Protocol):
    """Consecutive states of one block of valid times."""

    times: np.ndarray

    def starts(self, rollout: int) -> np.ndarray: ...

    def batch(self, starts: np.ndarray, rollout: int) -> Batch: ...


def rollout_starts(times: np.ndarray, rollout: int) -> np.ndarray:
    """Indices ``i`` of ``times`` whose states ``i + 1 .. i + rollout`` follow every 6 hours."""
    steps = np.diff(times) == SIX_HOURS
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
    """

    def __init__(self, source: Any, times: np.ndarray, channels: Sequence[str]) -> None:
        self.source = source
        self.times = np.asarray(times, dtype="datetime64[ns]")
        self.channels = list(channels)

    def starts(self, rollout: int) -> np.ndarray:
        return rollout_starts(self.times, rollout)

    def read(self, index: np.ndarray) -> np.ndarray:
        """States at sorted unique positions ``index``: float32 ``(len(index), C, H, W)``.

        A run of consecutive positions is one read (a Zarr store decodes it straight into
        the block); large selections go in pieces of <= ~16 MiB.
        """
        runs = np.split(index, np.flatnonzero(np.diff(index) != 1) + 1)
        step = times_per_read(self.source.grid, len(self.channels))
        blocks = [np.asarray(self.source(self.times[run[i : i + step]], self.channels).values, dtype=np.float32)
                  for run in runs for i in range(0, run.size, step)]
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)

    def batch(self, starts: np.ndarray, rollout: int) -> Batch:
        """``(x0, targets)``: ``(B, C, H, W)`` and ``(rollout, B, C, H, W)`` float32 tensors."""
        index = starts[:, None] + np.arange(rollout + 1)
        unique, inverse = np.unique(index, return_inverse=True)
        return _split(self.read(unique)[inverse.reshape(index.shape)])


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
