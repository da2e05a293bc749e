"""Device-to-host copies of lead slabs that overlap the next step (CUDA only).

On a GPU the engine enqueues step k+1 before it waits for slab k: slab k is copied on a side
stream into pinned host memory (``non_blocking=True``) while the GPU computes step k+1, and
the host hands slab k to the writer meanwhile. Pinned blocks come from torch's caching host
allocator: a block is reused only after its copy completed and the last array viewing it (the
writer's) is gone, so nothing is overwritten while queued. Tensors on any other device are
copied synchronously, as before.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: device types whose slabs are copied asynchronously (tests add "cpu" to exercise the pipeline)
OVERLAP_DEVICES: tuple[str, ...] = ("cuda",)

_streams: dict[torch.device, torch.cuda.Stream] = {}


def overlaps(x: torch.Tensor) -> bool:
    """Whether slabs like ``x`` are copied asynchronously."""
    return x.device.type in OVERLAP_DEVICES


def start_copy(x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """Begin copying ``x`` to the host; the returned function waits and gives the host tensor.

    CUDA: a pinned buffer filled on a per-device side stream after the work already enqueued
    for ``x``; ``x`` is marked as used by that stream, so its memory is not reused before the
    copy ends. Other devices: ``x.cpu()`` now.
    """
    if x.device.type != "cuda":
        host = x.cpu()
        return lambda: host
    stream = _streams.setdefault(x.device, torch.cuda.Stream(x.device))
    stream.wait_stream(torch.cuda.current_stream(x.device))
    host = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
    with torch.cuda.stream(stream):
        host.copy_(x, non_blocking=True)
        done = torch.cuda.Event()
        done.record(stream)
    x.record_stream(stream)

    def wait() -> torch.Tensor:
        done.synchronize()
        return host

    return wait
