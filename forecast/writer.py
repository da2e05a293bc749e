"""A background writer: the sink writes batch k while the engine computes batch k + 1.

The queue holds at most ``depth`` lead slabs (one slab = one 6-hour lead of one member
batch, ``batch x C x nlat x nlon`` floats) and at most ``max_bytes``; the writer copies each slab,
as it takes it, into one block of ``sink.lead_chunk`` leads in the shard's layout (the one copy
between engine and disk; a block of one lead is the slab itself; the buffer is reused from block
to block) and hands the block to the sink when full, so memory is bounded by the batch size, the
queue and the shard size, not by the number of members, leads or initial times.
When one slab is larger than ``max_bytes`` (0.25 degrees: 4.9 GB for 16 members and 74
channels) nothing is queued: the engine hands a slab over and waits until the writer has taken
it, so the host holds the slab being written, its encoded shard and the next slab -- compute of
the next lead still overlaps the write. A batch is marked completed only after all its blocks
are written, in queue order.
"""

from __future__ import annotations

import queue
import threading
from types import TracebackType

import numpy as np

from hens.forecast.protocols import Sink

#: lead slabs queued before the engine waits for the writer (and at most DEFAULT_QUEUE_BYTES): on
#: small grids a shard holds all leads of a batch and is written when the batch ends, so the queue
#: must cover the steps of the next batch computed meanwhile (4 slabs made the lightest SFNO wait:
#: streaming/compute 1.11 -> 1.04 with 64, docs/store.md "Writes"); on large grids the byte budget
#: rules (0.25 degrees: a slab is over it and is handed over)
DEFAULT_DEPTH = 64
#: host bytes the queue may hold; a larger slab is handed over without queueing
DEFAULT_QUEUE_BYTES = 512 << 20
_POLL_S = 0.5  # how often a blocked producer checks whether the writer died


def queued_slabs(slab_bytes: int, *, depth: int = DEFAULT_DEPTH, max_bytes: int = DEFAULT_QUEUE_BYTES) -> int:
    """Slabs of ``slab_bytes`` the queue holds: at most ``depth`` and ``max_bytes``, at least one;
    0 when one slab is larger than ``max_bytes`` (it is then handed over, not queued)."""
    return 0 if slab_bytes > max_bytes else max(1, min(depth, max_bytes // slab_bytes))


class BackgroundWriter:
    """Writes lead slabs and completion records to ``sink`` on one thread.

    Parameters
    ----------
    sink
        Destination.
    depth
        Maximum number of queued slabs.
    max_bytes, slab_bytes
        With the size of one slab, also at most ``max_bytes`` queued; a slab larger than
        ``max_bytes`` is handed over (see the module docstring).

    Use as a context manager; leaving it waits until everything queued is written and
    re-raises a write error in the calling thread.
    """

    def __init__(
        self, sink: Sink, *, depth: int = DEFAULT_DEPTH,
        max_bytes: int = DEFAULT_QUEUE_BYTES, slab_bytes: int | None = None,
    ) -> None:
        self.sink = sink
        queued = depth if slab_bytes is None else queued_slabs(slab_bytes, depth=depth, max_bytes=max_bytes)
        self.handoff = queued == 0
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queued))
        self._taken = threading.Semaphore(0)  # released as the writer takes each item
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._completed = 0
        self._thread = threading.Thread(target=self._run, name="hens-writer", daemon=True)

    @property
    def completed(self) -> int:
        """Batches fully written so far."""
        with self._lock:
            return self._completed

    def _run(self) -> None:
        block: np.ndarray | None = None  # (members, lead_chunk, C, nlat, nlon), reused block to block
        n = first = 0  # leads of the current batch in ``block``, the first one's index
        while True:
            item = self._queue.get()
            self._taken.release()
            try:
                if item is None:
                    return
                if self._error is not None:
                    continue  # drain without writing after a failure
                init_index, members, lead_index, slab = item
                k = self.sink.lead_chunk
                if slab is not None:
                    first = lead_index if n == 0 else first
                    if k == 1:  # one lead: the slab itself, no copy
                        block = slab[:, None]
                    else:  # the one copy: into the shard's layout, as the slab arrives (then it is freed)
                        shape = (slab.shape[0], k, *slab.shape[1:])
                        if block is None or block.shape != shape or not block.flags.writeable:
                            block = np.empty(shape, np.float32)
                        block[:, n] = slab
                    n += 1
                if n and (slab is None or n == k):
                    self.sink.write_leads(init_index, members, slice(first, first + n), block[:, :n])
                    n = 0
                if slab is None:
                    self.sink.mark_completed(init_index, members)
                    with self._lock:
                        self._completed += 1
            except BaseException as err:  # handed to the producer, which re-raises it
                self._error = err
            finally:
                self._queue.task_done()

    def _put(self, item: tuple | None) -> None:
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(item, timeout=_POLL_S)
                break
            except queue.Full:
                continue
        if self.handoff:  # wait until the writer holds it: nothing stays queued
            while not self._taken.acquire(timeout=_POLL_S):
                self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def put_lead(self, init_index: int, members: slice, lead_index: int, slab: np.ndarray) -> None:
        """Queue one lead of a batch: ``slab`` is ``(members, C, nlat, nlon)`` float32."""
        self._put((init_index, members, lead_index, slab))

    def put_completed(self, init_index: int, members: slice) -> None:
        """Queue the completion record of a batch (after all its leads)."""
        self._put((init_index, members, -1, None))

    def __enter__(self) -> BackgroundWriter:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self._error = self._error or exc  # stop writing: the batch being computed is lost anyway
        self._queue.put(None)
        self._thread.join()
        if exc_type is None:
            self._raise_if_failed()
