"""Whole-shard writes of the ``fields`` array without zarr's codec pipeline.

zarr 3.1 writes a shard by sending every inner chunk through its asyncio codec pipeline on its
own (a thread hop per chunk, an all-fill check, a copy into a shard-shaped buffer, the
compressed chunks joined into one object): 170-210 MB/s on the development machine, whose disk
takes 1.1-1.6 GB/s (docs/store.md, "Writes"). A hens shard is always written whole by one rank,
so this module does the sharding codec's work directly: each inner chunk is cut from the block
(one small, cache-resident copy), compressed by the array's own Blosc codec -- in the calling
thread, or on a thread pool (Blosc releases the GIL) -- and streamed into the temporary file as
soon as it is compressed; the shard index (``uint64`` offset/length pairs with a CRC32C) goes
last, then :func:`~hens.forecast.durable_store.durable_write` fsyncs, renames and fsyncs the
folder.

The file is a valid zarr v3 shard holding the values zarr would write (edge chunks padded with
the fill value, chunks wholly outside the array omitted; chunks in lead, channel, band order
rather than zarr's Morton order, which the index makes irrelevant to readers), and a rerun writes
the same bytes (``tests/forecast/test_shard_writer.py``). Only the codec chain hens declares is
encoded here (sharding of ``bytes(little) + blosc`` chunks, index ``bytes(little) + crc32c`` at
the end, on a little-endian machine); :func:`shard_writer_for` returns ``None`` for anything
else and the sink falls back to zarr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path

import google_crc32c
import numpy as np

from hens.forecast.durable_store import durable_write

#: threads compressing a shard's chunks (Blosc-lz4: ~1 GB/s per core): half the cores, at most 4;
#: 1 or less means the writer's own thread, which measured fastest on 2 shared cores (chunks go
#: to the file while cache-hot; a pool's thread hand-offs cost more than they gain there, and the
#: engine's compute thread needs the other core) -- docs/store.md
DEFAULT_WORKERS = min(4, (os.cpu_count() or 1) // 2)
#: the index entry of a chunk the shard does not hold (all fill value)
EMPTY = np.uint64(2**64 - 1)


def read_layout(target: object, array) -> None:
    """Set on ``target`` what the writer and :mod:`hens.forecast.shard_reader` need of ``array``'s
    metadata: ``shape``, ``shard``, ``chunk``, ``per_shard`` (chunks per shard dimension),
    ``fill``, ``blosc`` (the array's own numcodecs Blosc) and ``_encode_key``."""
    sharding = array.metadata.codecs[0]
    target._encode_key = array.metadata.encode_chunk_key
    target.shape = tuple(array.shape)
    target.shard = tuple(array.shards)
    target.chunk = tuple(sharding.chunk_shape)
    target.fill = np.float32(array.metadata.fill_value)
    target.blosc = sharding.codecs[1]._blosc_codec
    target.per_shard = tuple(s // c for s, c in zip(target.shard, target.chunk, strict=True))


class ShardWriter:
    """Encodes and writes whole shards of one sharded array of a local store.

    Parameters
    ----------
    root
        The store's folder.
    name
        The array's name in the store (``fields``).
    array
        The opened ``zarr.Array`` (its metadata: shape, shard and chunk shapes, codecs).
    """

    def __init__(self, root: Path, name: str, array) -> None:
        self.folder = Path(root) / name
        read_layout(self, array)

    def key(self, shard_index: Sequence[int]) -> Path:
        """The shard's file (zarr's chunk key encoding, ``c/i/j/...``)."""
        return self.folder / self._encode_key(tuple(shard_index))

    def write(self, shard_index: Sequence[int], slabs: Sequence[np.ndarray], pool: Executor | None = None) -> None:
        """Write the shard at ``shard_index`` (shard grid coordinates) whole.

        ``slabs``: its leads, each ``(members, C, lat, lon)`` float32 starting at the shard's
        origin (fewer members, leads or rows than the shard holds at the array's edges).
        ``pool`` compresses chunks in parallel (one task per lead); ``None``: in this thread.
        """
        origin = [i * s for i, s in zip(shard_index, self.shard, strict=True)]
        inside = [max(0, min(s, n - o)) for s, n, o in zip(self.shard, self.shape, origin, strict=True)]
        n_lead = -(-inside[2] // self.chunk[2])
        if len(slabs) != inside[2] or any(s.shape != (inside[1], inside[3], inside[4], inside[5]) for s in slabs):
            raise ValueError(f"shard {tuple(shard_index)} takes {inside[2]} leads of {tuple(inside[1:2] + inside[3:])}, "
                             f"got {[s.shape for s in slabs]}")
        tasks = [(slabs[lead], lead) for lead in range(n_lead)]
        encoded = pool.map(self._encode_lead, tasks) if pool is not None else map(self._encode_lead, tasks)
        index = np.full(self.per_shard + (2,), EMPTY, dtype="<u8")

        def stream():  # each lead's chunks as soon as they are compressed, then the index
            offset = 0
            for lead_chunks in encoded:
                for coords, data in lead_chunks:
                    index[coords] = (offset, len(data))
                    offset += len(data)
                    yield data
            index_bytes = index.tobytes()
            yield index_bytes
            yield np.array([google_crc32c.value(index_bytes)], dtype="<u4").tobytes()

        durable_write(self.key(shard_index), stream())

    def _encode_lead(self, task: tuple[np.ndarray, int]) -> list[tuple[tuple[int, ...], bytes]]:
        """Compressed chunks ``[(chunk coords in the shard, bytes)]`` of one lead (one chunk per
        channel and latitude band; the chunk shape is ``(1, members, 1, 1, band, lon)``)."""
        slab, lead = task
        members, band = self.chunk[1], self.chunk[4]
        out = []
        for c in range(slab.shape[1]):
            for b in range(self.per_shard[4]):
                rows = slab[:, c, b * band:(b + 1) * band]
                if rows.shape[1] == 0:
                    continue
                if rows.shape[:2] == (members, band) and rows.shape[2] == self.chunk[5]:
                    chunk = np.ascontiguousarray(rows, dtype=np.float32)
                else:  # an edge chunk: padded with the fill value, as zarr does
                    chunk = np.full((members, band, self.chunk[5]), self.fill, dtype=np.float32)
                    chunk[:rows.shape[0], :rows.shape[1], :rows.shape[2]] = rows
                out.append(((0, 0, lead, c, b, 0), self.blosc.encode(chunk)))
        return out


def encodable(array) -> bool:
    """Whether ``array`` uses the one codec chain this module encodes (and
    :mod:`hens.forecast.shard_reader` decodes): the module docstring's, on a little-endian machine."""
    from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec

    codecs = array.metadata.codecs
    if sys.byteorder != "little" or len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
        return False
    s = codecs[0]
    inner, index = s.codecs, s.index_codecs
    cs, sh = tuple(s.chunk_shape), tuple(array.shards or ())
    if len(cs) != 6 or len(sh) != 6:
        return False
    return (len(inner) == 2 and isinstance(inner[0], BytesCodec) and isinstance(inner[1], BloscCodec)
            and str(getattr(inner[0].endian, "value", inner[0].endian)) == "little"
            and len(index) == 2 and isinstance(index[0], BytesCodec) and isinstance(index[1], Crc32cCodec)
            and str(getattr(s.index_location, "value", s.index_location)) == "end"
            and array.dtype == np.float32 and len(array.shape) == 6
            and (cs[0], cs[2], cs[3]) == (1, 1, 1) and (cs[1], cs[5]) == (sh[1], sh[5]) and sh[0] == 1
            and sh[4] % cs[4] == 0)


def shard_writer_for(root: Path, name: str, array) -> ShardWriter | None:
    """A :class:`ShardWriter` for ``array`` if it uses the one codec chain it encodes, else ``None``."""
    return ShardWriter(root, name, array) if encodable(array) else None
