"""A local Zarr store whose every write is atomic and on disk before it returns.

The ensemble store's crash safety rests on two facts: a chunk file is either absent or whole
(never a torn write), and a batch's data is on disk before its completion flag. zarr's own
``LocalStore`` renames a temporary file into place but never calls ``fsync``, so after a power
loss or a node crash the renamed file may be empty and a flag may reach the disk before the data
it vouches for. :class:`DurableLocalStore` writes each key with hens' own protocol: a temporary
file in the same folder, ``fsync`` of its data, ``os.replace`` onto the key, ``fsync`` of the
folder (so the rename itself is durable). Every write is on disk before the zarr call that
made it returns, so calls made one after another reach the disk in that order: the engine's
order, a batch's chunks and then its flags (``forecast/zarr_sink.py``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from zarr.core.buffer import Buffer
from zarr.storage import LocalStore


def durable_write(path: Path, data: memoryview | bytes | Iterable[memoryview | bytes]) -> None:
    """Write ``data`` to ``path`` atomically and durably (temporary file, fsync, rename, fsync folder).

    ``data`` may be an iterable of buffers (not ``bytes``), written one after another as they come."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with tmp.open("wb") as f:
            if isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
            else:
                f.writelines(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class DurableLocalStore(LocalStore):
    """``zarr.storage.LocalStore`` whose writes go through :func:`durable_write`."""

    def _path(self, key: str, value: Buffer) -> Path:
        self._check_writable()
        if not isinstance(value, Buffer):
            raise TypeError(f"DurableLocalStore.set(): value must be a Buffer, got {type(value)}")
        return self.root / key

    def set_sync(self, key: str, value: Buffer) -> None:
        durable_write(self._path(key, value), value.as_buffer_like())

    async def set(self, key: str, value: Buffer) -> None:
        if not self._is_open:
            await self._open()
        await asyncio.to_thread(durable_write, self._path(key, value), value.as_buffer_like())

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        if not await self.exists(key):
            await self.set(key, value)
