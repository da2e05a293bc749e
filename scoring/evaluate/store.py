"""An ensemble store opened for scoring: layout checks, completed members, chunks, subsets.

A hens ensemble store (:mod:`hens.forecast.zarr_sink`, read through
:func:`hens.forecast.store_reader.open_store`) holds one variable per channel over
``(init_time, member, lead_time, lat, lon)``, a ``completed(init_time, member)`` flag and
the member coordinates ``checkpoint``, ``pair``, ``sign``, ``seed``. Scoring needs every
member of a cell in one task: :func:`read_members` reads latitude bands of all members
(:meth:`EnsembleStore.band`: :data:`BAND_BYTES` each, a multiple of the stored bands, so each
stored chunk is decompressed once), and spectra whole fields of groups of members
(:meth:`EnsembleStore.member_groups`).

Only completed members count. ``incomplete="raise"`` (the default) refuses a store with any
member not completed; ``"drop"`` scores the members completed at *every* initial time and
records how many were left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import xarray as xr

from hens.forecast.errors import DataError
from hens.forecast.grids import Grid
from hens.forecast.shard_reader import ShardReader, shard_reader_for
from hens.forecast.store_reader import open_checked, open_store
from hens.forecast.types import check_choice
from hens.forecast.zarr_sink import FIELDS, READ_BAND_BYTES
from hens.scoring.types import Incomplete

#: bytes of all members over a latitude band read by one task (the store's inner chunks fit it)
BAND_BYTES = READ_BAND_BYTES
#: bytes of truth (float32, all init times) held for one block of leads
BLOCK_BYTES = 256 << 20
#: members whose power spectra are averaged into the mean member spectrum
SPECTRUM_MEMBERS = 64


@dataclass(frozen=True)
class EnsembleStore:
    """What scoring needs to know about an opened store.

    Attributes
    ----------
    path
        The store.
    channels
        hens channels held by the store, in its order.
    grid
        The grid of its fields.
    members
        Indices (along ``member``) of the members that are scored.
    dropped
        How many members were left out as not completed.
    init_times, lead_times
        Coordinates (datetime64[ns], timedelta64[ns]).
    lead_chunk
        Leads per stored chunk (shard); scoring works on blocks of whole stored chunks.
    stored_band
        Latitude rows per stored chunk (all rows in format 1).
    stored_batch
        Members per stored chunk.
    """

    path: Path
    channels: tuple[str, ...]
    grid: Grid
    members: np.ndarray
    dropped: int
    init_times: np.ndarray
    lead_times: np.ndarray
    lead_chunk: int
    stored_band: int
    stored_batch: int
    dataset: xr.Dataset

    @property
    def size(self) -> int:
        """Ensemble size M (members scored)."""
        return int(self.members.size)

    def lead_blocks(self) -> list[slice]:
        """Consecutive blocks of whole stored lead chunks, as many chunks per block as keep
        the block's truth (all init times) under :data:`BLOCK_BYTES` (at least one chunk)."""
        n = self.lead_times.size
        per_chunk = self.init_times.size * self.lead_chunk * self.grid.nlat * self.grid.nlon * 4
        size = max(1, BLOCK_BYTES // per_chunk) * self.lead_chunk
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    def band(self) -> int:
        """Latitude rows per task of all members (at most :data:`BAND_BYTES`), a multiple
        of the stored chunk's rows where that fits, so each stored chunk is decompressed once."""
        per_row = self.size * self.grid.nlon * 4
        rows = int(max(1, min(self.grid.nlat, BAND_BYTES // per_row)))
        return rows if rows < self.stored_band or rows == self.grid.nlat else rows - rows % self.stored_band

    def spectrum_sample(self, members: int | None = None) -> np.ndarray:
        """Positions (along the scored members, increasing) of the members whose power spectra
        make the mean member spectrum: all of them up to ``members``, else the scored members of
        stored batches evenly spaced over the ensemble (whole stored chunks, so a read of their
        fields decompresses nothing else; spaced, so they come from several checkpoints) until
        ``members`` are taken. Relative sampling error at degree l: about
        ``1 / sqrt(n (2 l + 1))`` per field, before the mean over initial times. ``members``:
        default :data:`SPECTRUM_MEMBERS`."""
        members = SPECTRUM_MEMBERS if members is None else members
        if self.size <= members:
            return np.arange(self.size)
        batch_of = self.members // self.stored_batch
        batches = np.unique(batch_of)
        for k in range(1, batches.size + 1):
            picked = np.isin(batch_of, batches[np.unique(np.linspace(0, batches.size - 1, k).round().astype(int))])
            if picked.sum() >= members:
                break
        return np.flatnonzero(picked)

    def member_groups(self, positions: np.ndarray) -> list[np.ndarray]:
        """Store indices of the members at ``positions`` (along the scored members) in groups
        whose whole fields take at most :data:`BAND_BYTES` (at least one member each)."""
        per_member = self.grid.nlat * self.grid.nlon * 4
        size = int(max(1, BAND_BYTES // per_member))
        chosen = self.members[np.asarray(positions)]
        return [chosen[i:i + size] for i in range(0, chosen.size, size)]


def open_ensemble(path: str | Path, *, incomplete: Incomplete = "raise") -> EnsembleStore:
    """Open and check an ensemble store; decide which members are scored.

    Raises
    ------
    DataError
        Not a readable Zarr store, not the hens layout (dims, ``completed``, member coords,
        hens channels), fewer than 2 usable members, or (``incomplete="raise"``) members not
        completed -- the message says how many and how to finish them.
    GridMismatch
        Coordinates of no registered grid.
    """
    check_choice("incomplete", incomplete, Incomplete)
    checked = open_checked(path, "hens score")
    path, ds, channels, grid, done = (checked.path, checked.dataset, checked.channels, checked.grid,
                                      checked.completed)
    members = np.flatnonzero(done.all(axis=0))
    dropped = int(done.shape[1] - members.size)
    if dropped and incomplete == "raise":
        pending = int((~done).sum())
        raise DataError(
            f"{path}: {pending} of {done.size} (init time, member) pairs are not completed "
            f"({dropped} of {done.shape[1]} members affected); finish the run with "
            "`hens forecast CONFIG --resume`, or score only the members completed at every "
            "initial time with --drop-incomplete"
        )
    if members.size < 2:
        raise DataError(
            f"{path}: {members.size} member(s) completed at every initial time; scoring needs >= 2"
        )
    stored_chunks = ds[channels[0]].encoding.get("chunks") or (1, 1, 1, grid.nlat)
    lead_chunk = int(ds.attrs.get("lead_chunk", 0)) or int(stored_chunks[2])
    return EnsembleStore(
        path=path,
        channels=channels,
        grid=grid,
        members=members,
        dropped=dropped,
        init_times=ds["init_time"].values.astype("datetime64[ns]"),
        lead_times=ds["lead_time"].values.astype("timedelta64[ns]"),
        lead_chunk=max(1, lead_chunk),
        stored_band=int(stored_chunks[3]),
        stored_batch=int(stored_chunks[1]),
        dataset=ds,
    )


def member_subsets(forecast: xr.DataArray) -> list[tuple[int, np.ndarray]]:
    """Nested, balanced sub-ensembles of whole (checkpoint, pair) units: ``[(size, positions)]``.

    A unit is the 2 x seeds members of one checkpoint's +/- pair. Units are taken round-robin
    over checkpoints (pair 0 of every checkpoint, then pair 1, ...), so each sub-ensemble
    holds whole pairs and its checkpoints differ by at most one pair. Sizes: 1, 2, 4, ... units
    and all units. Units missing a member (dropped as incomplete) are not used. ``positions``
    index the ``member`` dim of ``forecast``.
    """
    ckpt = np.asarray(forecast["checkpoint"].values)
    pair = np.asarray(forecast["pair"].values)
    keys = sorted({(int(q), int(c)) for c, q in zip(ckpt, pair, strict=True)})
    units = [np.flatnonzero((pair == q) & (ckpt == c)) for q, c in keys]
    full = max(u.size for u in units)
    units = [u for u in units if u.size == full]
    n = len(units)
    counts = sorted({*(2**k for k in range(n.bit_length()) if 2**k <= n), n})
    return [(int(n * full), np.concatenate(units[:n])) for n in counts]


@lru_cache(maxsize=8)
def _opened(path: str) -> tuple[ShardReader | None, tuple[str, ...], xr.Dataset]:
    """The store's shard reader (None: read through xarray), channel order and lazy Dataset,
    once per process (dask workers reopen by path)."""
    import zarr

    group = zarr.open_group(path, mode="r")
    ds = open_store(path)
    if FIELDS in group:
        names = tuple(str(c) for c in np.asarray(group["channel"][...]))
        return shard_reader_for(Path(path), FIELDS, group[FIELDS]), names, ds
    return None, (), ds


def read_members(path: str | Path, channel: str, init: int, lead: int, rows: tuple[int, int],
                 members: np.ndarray | None = None) -> np.ndarray:
    """Members ``(M, rows, lon)`` float32 of one init, lead and channel, latitude rows ``lo:hi``.

    Reads straight from the shards of a format-2 store (:mod:`hens.forecast.shard_reader`:
    each inner chunk is decompressed whole, so rows aligned with the store's band cost no more
    than they hold), through xarray for format 1. ``members``: positions along ``member``
    (increasing), default all. Callers keep ``M x rows x lon`` within their budget
    (:meth:`EnsembleStore.band`, :meth:`EnsembleStore.member_groups`).
    """
    reader, names, ds = _opened(str(path))
    if reader is not None:
        return reader.read(init, lead, names.index(channel), rows, members)
    da = ds[channel].isel(init_time=init, lead_time=lead, lat=slice(*rows))
    return np.asarray((da if members is None else da.isel(member=members)).values, dtype=np.float32)
