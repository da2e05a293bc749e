"""Reads of all members of one (init, lead, channel, latitude band) straight from the shards.

A scoring task needs one latitude band of every member: one inner chunk from each member
batch's shard (:mod:`hens.forecast.shard_writer` writes them). zarr 3.1 reads each inner chunk
through its asyncio pipeline (about 1.3 ms a chunk on the development machine, whatever its
concurrency settings: 0.6 s for the 464 chunks of one 7,424-member field at 32x64, whose Blosc
decoding takes a few milliseconds -- docs/store.md, "Reads"). :class:`ShardReader` does the
sharding codec's reading itself: per shard file one ``pread`` of the index (its CRC32C
checked), one per inner chunk needed, and a Blosc decode by the array's own codec. It serves
the one codec chain the writer encodes (:func:`~hens.forecast.shard_writer.encodable`);
:func:`shard_reader_for` returns ``None`` for anything else and callers read through zarr.

A missing shard file or an empty index entry reads as the fill value, as in zarr. Damage (a
short file, a bad checksum, a chunk Blosc cannot decode) raises :class:`ShardDamage`; the
callers' :func:`hens.forecast.store_check.reading` then names the chunk in one line (zarr
fails on the same files, so the chunk it locates is the one this reader stumbled on).
"""

from __future__ import annotations

import os
from pathlib import Path

import google_crc32c
import numpy as np

from hens.forecast.shard_writer import EMPTY, encodable, read_layout


def blosc_nbytes(data: bytes) -> int:
    """Bytes a Blosc frame decodes to: bytes 4..8 of its 16-byte header, little-endian (-1 for a
    frame too short to have one)."""
    return int.from_bytes(data[4:8], "little") if len(data) >= 16 else -1


class ShardDamage(OSError):
    """A shard file that does not decode (short, bad index checksum, bad chunk)."""


class ShardReader:
    """Band reads of the 6-d ``fields`` array ``(init, member, lead, channel, lat, lon)``.

    Parameters
    ----------
    root
        The store's folder.
    name
        The array's name in the store (``fields``).
    array
        The opened ``zarr.Array`` (its metadata: shape, shard and chunk shapes, codecs).
    """

    #: shard indexes kept (a few KB each): every band, channel and lead of a shard shares one
    INDEXES_KEPT = 4096

    def __init__(self, root: Path, name: str, array) -> None:
        self.folder = str(Path(root) / name)
        read_layout(self, array)
        self.index_bytes = int(np.prod(self.per_shard)) * 16 + 4
        self._indexes: dict[str, tuple[tuple[int, int], np.ndarray]] = {}

    def read(self, init: int, lead: int, channel: int, rows: tuple[int, int],
             members: np.ndarray | None = None) -> np.ndarray:
        """Members ``(M, rows, lon)`` float32 of one init, lead and channel, rows ``lo:hi``.

        ``members``: positions along the member dim (increasing), default all.
        """
        lo, hi = rows
        nlon, band, batch = self.shape[5], self.chunk[4], self.shard[1]
        wanted = np.arange(self.shape[1]) if members is None else np.asarray(members)
        out = np.empty((wanted.size, hi - lo, nlon), dtype=np.float32)
        first_band, last_band = lo // band, (hi - 1) // band
        lead_block, lead_in = divmod(lead, self.shard[2])
        groups = wanted // batch
        starts = np.flatnonzero(np.diff(groups, prepend=-1))  # ``wanted`` increases
        for start, stop in zip(starts, [*starts[1:], wanted.size], strict=True):
            b = int(groups[start])
            take = slice(int(start), int(stop))
            local = wanted[take] - b * batch
            if local.size == batch:  # the whole batch: a view, not a gather
                local = slice(None)
            path = f"{self.folder}/{self._encode_key((init, b, lead_block, 0, 0, 0))}"
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                out[take] = self.fill
                continue
            try:
                index = self._index(fd, path)
                for k in range(first_band, last_band + 1):
                    offset, length = index[0, 0, lead_in, channel, k, 0]
                    r0, r1 = max(lo, k * band), min(hi, (k + 1) * band)
                    if offset == EMPTY:
                        out[take, r0 - lo:r1 - lo] = self.fill
                        continue
                    target = out[take, r0 - lo:r1 - lo]
                    if isinstance(local, slice) and r1 - r0 == band and target.flags.c_contiguous:
                        self._chunk(fd, path, int(offset), int(length), into=target)  # no copy
                        continue
                    chunk = self._chunk(fd, path, int(offset), int(length))
                    out[take, r0 - lo:r1 - lo] = chunk[local, r0 - k * band:r1 - k * band]
            finally:
                os.close(fd)
        return out

    def _index(self, fd: int, path: str) -> np.ndarray:
        """The shard's index, read and checked once per version of the file (size, mtime)."""
        stat = os.fstat(fd)
        version = (stat.st_size, stat.st_mtime_ns)
        kept = self._indexes.get(path)
        if kept is not None and kept[0] == version:
            return kept[1]
        index = self._read_index(fd, path, stat.st_size)
        if len(self._indexes) >= self.INDEXES_KEPT:  # start over (no iteration: threads share this)
            self._indexes.clear()
        self._indexes[path] = (version, index)
        return index

    def _read_index(self, fd: int, path: str, size: int) -> np.ndarray:
        if size < self.index_bytes:
            raise ShardDamage(f"{path}: {size} bytes, shorter than its index")
        raw = os.pread(fd, self.index_bytes, size - self.index_bytes)
        body, crc = raw[:-4], np.frombuffer(raw[-4:], dtype="<u4")[0]
        if google_crc32c.value(body) != int(crc):
            raise ShardDamage(f"{path}: the shard index fails its CRC32C checksum")
        return np.frombuffer(body, dtype="<u8").reshape(self.per_shard + (2,))

    def _chunk(self, fd: int, path: str, offset: int, length: int, into: np.ndarray | None = None) -> np.ndarray:
        """The inner chunk at ``offset`` ``(members, band, lon)``, decoded into ``into`` (a
        contiguous array of that shape) when given and the frame's header announces that size
        (otherwise decoded apart, and a wrong size raises)."""
        data = os.pread(fd, length, offset)
        if len(data) != length:
            raise ShardDamage(f"{path}: chunk at byte {offset} cut short")
        members, band, nlon = self.chunk[1], self.chunk[4], self.chunk[5]
        expected = members * band * nlon * 4
        try:
            if into is not None and blosc_nbytes(data) == expected:
                self.blosc.decode(data, out=into)
                return into
            raw = self.blosc.decode(data)
        except Exception as err:  # numcodecs raises RuntimeError/ValueError for bad input
            raise ShardDamage(f"{path}: chunk at byte {offset} does not decode ({err})") from None
        if len(raw) != expected:
            raise ShardDamage(f"{path}: chunk at byte {offset} decodes to {len(raw)} bytes")
        return np.frombuffer(raw, dtype="<f4").reshape(members, band, nlon)


def shard_reader_for(root: Path, name: str, array) -> ShardReader | None:
    """A :class:`ShardReader` for ``array`` if it uses the codec chain hens writes, else ``None``."""
    return ShardReader(root, name, array) if encodable(array) else None
