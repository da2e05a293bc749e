"""A data source that keeps its most recent reads: the engine asks for the same analyses often.

Every member batch of an initial time starts from the same analysis, and a bred-vector batch
breeds over the same analyses before it: at HENS size each of two ranks asks for them once per
batch (232 batches of 16 members), each a Zarr read of a few fields (~0.06 s a batch on the
development machine). :class:`RecentReads` answers a repeated request from memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from hens.forecast.protocols import DataSource


class RecentReads:
    """``source`` with its last ``size`` results kept (a
    :class:`~hens.forecast.protocols.DataSource`).

    A repeated request (same times, same channels) returns a copy of the kept result, so a
    caller that writes into it never changes what the next one gets. Every other attribute is
    the wrapped source's.
    """

    def __init__(self, source: DataSource, size: int = 4) -> None:
        self.source = source
        self.size = size
        self._reads: OrderedDict[tuple, xr.DataArray] = OrderedDict()

    def __getattr__(self, name: str) -> Any:
        if name == "source":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.source, name)

    def __call__(self, times: Sequence | np.ndarray, channels: Sequence[str], **kwargs: Any) -> xr.DataArray:
        if kwargs:
            return self.source(times, channels, **kwargs)
        names = (channels,) if isinstance(channels, str) else tuple(channels)
        key = (tuple(np.asarray(times, dtype="datetime64[ns]").ravel().tolist()), names)
        if key not in self._reads:
            self._reads[key] = self.source(times, channels)
            if len(self._reads) > self.size:
                self._reads.popitem(last=False)
        self._reads.move_to_end(key)
        return self._reads[key].copy(deep=True)
