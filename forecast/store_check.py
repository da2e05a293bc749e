"""Name the unreadable chunk of an ensemble store when a read of it fails.

A damaged file (a disk error, a copy cut short, a hand edit) makes zarr raise whatever its
codecs raise: a checksum mismatch of a shard index, a Blosc or Zstd error, an ``OSError``.
:func:`reading` turns such a failure into one :class:`DataError` that names the store, the
array and the chunk file (the shard file in format 2), found by decoding, one by one, each
stored chunk of the region that failed (:func:`unreadable_chunk`); a failure that no stored
chunk explains is not damage and propagates unchanged. Layouts: ``forecast/zarr_sink.py``
(format 2: ``fields`` shards ``c/<init>/<batch>/<lead block>/0/0/0``, flags
``completed/c/<init>/<batch>``) and hens 0.1's format 1 (one Zarr v2 array per channel).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from hens.forecast.errors import DataError, HensError
from hens.forecast.zarr_sink import COMPLETED, FIELDS

#: characters of the codec's message kept in the error line
REASON_CHARS = 120


def unreadable_chunk(path: str | Path, array: str, selection: Mapping[str, int | slice] | None = None
                     ) -> tuple[str, str] | None:
    """The first stored chunk of ``array`` within ``selection`` that zarr cannot read.

    Parameters
    ----------
    path
        The store.
    array
        A Zarr array of the store (``fields``, ``completed``, or a channel of format 1).
    selection
        Index or slice per dimension name; dimensions left out: whole.

    Returns
    -------
    ``(key, reason)``: the chunk's file relative to the store (a shard file for sharded
    arrays) and the error zarr raised for it, ``"TypeName: message"``; ``None`` if every
    chunk decodes.
    """
    import zarr

    arr = zarr.open_group(str(path), mode="r")[array]
    dims = _dimension_names(arr)
    grid = arr.shards or arr.chunks  # a shard is the unit a file holds
    regions = [_as_range(selection.get(d, slice(None)) if selection else slice(None), n)
               for d, n in zip(dims, arr.shape, strict=True)]
    blocks = [range(r.start // g, -(-r.stop // g)) if len(r) else range(0) for r, g in zip(regions, grid)]
    for coords in itertools.product(*blocks):
        part = tuple(slice(max(c * g, r.start), min((c + 1) * g, r.stop)) for c, g, r in zip(coords, grid, regions))
        try:
            arr[part]
        except Exception as err:  # whatever a codec or the file system raises is damage here
            reason = " ".join(f"{type(err).__name__}: {err}".split())
            key = f"{array}/{arr.metadata.encode_chunk_key(coords)}"
            return key, reason[:REASON_CHARS] + ("..." if len(reason) > REASON_CHARS else "")
    return None


def _dimension_names(arr) -> tuple[str, ...]:
    """Dimension names of a Zarr v3 array, or of a v2 array written by xarray."""
    names = getattr(arr.metadata, "dimension_names", None) or arr.attrs.get("_ARRAY_DIMENSIONS")
    if not names or len(names) != arr.ndim:
        return tuple(f"dim_{k}" for k in range(arr.ndim))
    return tuple(names)


def _as_range(index: int | slice, size: int) -> range:
    if isinstance(index, slice):
        return range(*index.indices(size))
    return range(index, index + 1)


def _locate(path: Path, variable: str, selection: dict[str, int | slice]) -> tuple[str, str, str] | None:
    """``(array, key, reason)`` of the damaged chunk behind ``variable`` (a channel or the
    flags) in ``selection``, mapping a channel to ``fields`` in format 2."""
    import zarr

    group = zarr.open_group(str(path), mode="r")
    array = variable
    if variable != COMPLETED and FIELDS in group:
        array = FIELDS
        names = [str(c) for c in np.asarray(group["channel"][...])]
        if variable in names:
            selection = {**selection, "channel": names.index(variable)}
    found = unreadable_chunk(path, array, selection)
    return None if found is None else (array, *found)


def _advice(array: str, key: str) -> str:
    """How to get a readable store again from the chunk ``key`` of ``array``."""
    if array == COMPLETED:
        return ("delete that file (its batch is then recomputed) and rerun `hens forecast CONFIG --resume`, "
                "or rerun with --overwrite")
    parts = key.split("/")
    if array == FIELDS and len(parts) >= 4 and parts[1] == "c":
        flag = f"{COMPLETED}/c/{parts[2]}/{parts[3]}"
        return (f"delete it and the batch's flag file {flag}, then rerun `hens forecast CONFIG --resume` "
                "to recompute that batch")
    return "the store is damaged: rewrite it with `hens forecast CONFIG --overwrite`"


@contextmanager
def reading(path: str | Path, variable: str, **selection: int | slice) -> Iterator[None]:
    """Run a read of ``variable`` (a channel or ``completed``) within ``selection`` of the store
    at ``path``; a failure explained by a damaged chunk becomes one :class:`DataError`.

    Raises
    ------
    DataError
        ``"<store>: array <name>, chunk <key> is unreadable (<reason>); <what to do>"``.
    """
    path = Path(path)
    try:
        yield
    except HensError:
        raise
    except Exception as err:
        found = _locate(path, variable, selection)
        if found is None:
            raise
        array, key, reason = found
        raise DataError(f"{path}: array {array}, chunk {key} is unreadable ({reason}); "
                        f"{_advice(array, key)}") from err
