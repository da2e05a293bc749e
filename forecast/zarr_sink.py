"""The ensemble store: declared up front, filled by whole-shard writes, resumable.

Layout (store format 2: one Zarr v3 group, consolidated metadata; design in docs/store.md)::

    fields(init_time, member, lead_time, channel, lat, lon)  float32, NaN until written
        shards (1, batch_size, lead_chunk, C, nlat, nlon)     one file each
        chunks (1, batch_size, 1, 1, band, nlon)              what a reader decompresses
    completed(init_time, member)                            uint8, 1 once a member is fully written
    member coords: checkpoint, pair, sign, seed             (see hens.forecast.members)

A shard is one member batch x a block of leads x every channel: a batch is the unit of work of
one rank, so every shard has exactly one writer, which writes it whole (never a
read-modify-write), and the number of files per initial time is batches x lead blocks,
independent of the number of channels. :func:`lead_chunk_for` sizes shards to about
:data:`TARGET_SHARD_BYTES` (one lead per shard at 0.25 degrees; all leads on the 32x64 demo
grid); :func:`band_for` sizes the inner chunks to a latitude band of about
:data:`TARGET_CHUNK_BYTES`, no wider than the band of all members a reader takes at once
(:data:`READ_BAND_BYTES`), so a reader of a latitude band of all members decompresses what
it uses. Channels are one array, so ``xr.open_zarr`` shows ``fields`` with a ``channel``
coordinate; :func:`hens.forecast.store_reader.open_store` gives one CF-described variable per
channel (and reads the format-1 stores of hens 0.1, one Zarr v2 array per channel).

``completed`` is chunked ``(1, batch_size)`` and written after the batch's data, and every
file is written atomically and durably (:class:`~hens.forecast.durable_store.DurableLocalStore`:
temporary file, fsync, rename, fsync of the folder), so a killed run, or a crashed node, leaves
either a complete batch or one that resume recomputes -- never a half-written batch marked done.

The engine streams a batch in lead blocks (:meth:`ZarrSink.write_leads`: whole shards, encoded
and written by :class:`~hens.forecast.shard_writer.ShardWriter` rather than zarr's codec
pipeline, ~2x faster; anything but one whole shard goes through zarr), then
:meth:`ZarrSink.mark_completed`. Resume accepts a store only if its ``hens_config``,
``hens_version`` and ``checkpoints`` attributes equal the new run's (:data:`RESUME_KEYS`):
same configuration, same code, same checkpoint files.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hens.forecast.channels import get_channel
from hens.forecast.durable_store import DurableLocalStore
from hens.forecast.errors import ConfigError, DataError, OutputExists
from hens.forecast.grids import Grid
from hens.forecast.shard_writer import DEFAULT_WORKERS, ShardWriter, shard_writer_for
from hens.forecast.members import MemberLayout

Mode = Literal["create", "resume", "overwrite"]
COMPLETED = "completed"
#: the one data array of format 2
FIELDS = "fields"
STORE_FORMAT = 2
#: shard size :func:`lead_chunk_for` aims at (bytes before compression)
TARGET_SHARD_BYTES = 64 << 20
#: inner chunk size :func:`band_for` aims at
TARGET_CHUNK_BYTES = 1 << 20
#: bytes of all members over a latitude band that a scoring or products task reads at once
READ_BAND_BYTES = 16 << 20
#: attributes that must be equal for a run to resume a store
RESUME_KEYS = ("hens_config", "hens_version", "checkpoints")


def _canonical(value: Any) -> str:
    """JSON text of an attribute value, whether given as an object or as stored JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class StoreSpec:
    """Everything that fixes the shape and meaning of an ensemble store."""

    channels: tuple[str, ...]
    init_times: tuple[np.datetime64, ...]
    lead_hours: tuple[int, ...]
    grid: Grid
    layout: MemberLayout
    batch_size: int
    attrs: Mapping[str, Any]
    lead_chunk: int = 1
    region: tuple[np.ndarray, np.ndarray] | None = None  # kept (lat, lon) indices of ``grid``

    @property
    def lat(self) -> np.ndarray:
        return self.grid.lat if self.region is None else self.grid.lat[self.region[0]]

    @property
    def lon(self) -> np.ndarray:
        return self.grid.lon if self.region is None else self.grid.lon[self.region[1]]

    @property
    def shape(self) -> tuple[int, int]:
        """Stored ``(nlat, nlon)``."""
        return self.lat.size, self.lon.size

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.lead_chunk < 1:
            raise ConfigError(f"lead_chunk must be >= 1, got {self.lead_chunk}")


def lead_chunk_for(batch_size: int, shape: tuple[int, int], n_leads: int, channels: int) -> int:
    """Leads per shard for shards of about :data:`TARGET_SHARD_BYTES` (1 .. ``n_leads``);
    ``shape``: stored ``(nlat, nlon)``."""
    per_lead = batch_size * channels * shape[0] * shape[1] * 4
    return max(1, min(n_leads, TARGET_SHARD_BYTES // per_lead))


def band_for(batch_size: int, shape: tuple[int, int], members: int | None = None) -> int:
    """Latitude rows per inner chunk (1 .. ``nlat``): chunks of about :data:`TARGET_CHUNK_BYTES`,
    and no more rows than a reader of all ``members`` takes in one band of
    :data:`READ_BAND_BYTES`, so that its bands are whole inner chunks (each decompressed once)."""
    rows = TARGET_CHUNK_BYTES // (batch_size * shape[1] * 4)
    if members:
        rows = min(rows, READ_BAND_BYTES // (members * shape[1] * 4))
    return max(1, min(shape[0], rows))


def open_sink(path: str | Path, spec: StoreSpec, *, mode: Mode = "create") -> ZarrSink:
    """Declare (or reopen for resume) the store at ``path``.

    ``create`` refuses an existing path (:class:`OutputExists`); ``overwrite`` replaces it if
    it is a Zarr store (anything else, e.g. a folder given by mistake, is refused);
    ``resume`` requires an existing store written with the same spec (:class:`ConfigError`).
    """
    path = Path(path)
    if mode not in ("create", "resume", "overwrite"):
        raise ConfigError(f"unknown store mode {mode!r}")
    if mode == "resume":
        if not path.exists():
            raise DataError(f"cannot resume: {path} does not exist (run without --resume)")
        sink = ZarrSink(path, spec)
        sink.verify()
        return sink
    if path.exists():
        if mode == "create":
            raise OutputExists(f"{path} exists; pass --resume to continue it or --overwrite to replace it")
        if not any((path / name).exists() for name in (".zgroup", ".zmetadata", "zarr.json")):
            raise OutputExists(f"{path} exists and is not a Zarr store; refusing to replace it")
        shutil.rmtree(path)
    sink = ZarrSink(path, spec)
    sink.declare()
    return sink


class ZarrSink:
    """Region writer for one ensemble store; see the module docstring for the layout."""

    def __init__(self, path: Path, spec: StoreSpec, *, workers: int = DEFAULT_WORKERS) -> None:
        self.path = path
        self.spec = spec
        self.workers = workers  # threads compressing a shard's chunks (<= 1: the calling thread)
        self._group = None
        self._shards: ShardWriter | None | bool = False  # False: not looked up yet
        self._pool: ThreadPoolExecutor | None = None

    def declare(self) -> None:
        """Write the template: coordinates, NaN-filled arrays (no chunk written), attributes."""
        import dask.array as da
        import xarray as xr
        from zarr.codecs import BloscCodec

        spec, g = self.spec, self.spec.grid
        n_init, n_mem, n_lead, n_chan = len(spec.init_times), spec.layout.size, len(spec.lead_hours), len(spec.channels)
        b = min(spec.batch_size, n_mem)
        nlat, nlon = spec.shape
        shape = (n_init, n_mem, n_lead, n_chan, nlat, nlon)
        band = band_for(b, spec.shape, n_mem)
        # a shard must hold whole inner chunks: its latitude extent is rounded up to a multiple
        # of the band (the last band reaches past the south pole, as an edge chunk does)
        shards = (1, b, min(spec.lead_chunk, n_lead), n_chan, -(-nlat // band) * band, nlon)
        chunks = (1, b, 1, 1, band, nlon)
        fields = xr.Variable(
            ("init_time", "member", "lead_time", "channel", "lat", "lon"),
            da.full(shape, np.nan, dtype=np.float32, chunks=shards[:4] + (nlat, nlon)),
            {"long_name": "forecast fields, one channel after another (units: the channel's)",
             "channel_attrs": json.dumps({c: get_channel(c).attrs() for c in spec.channels})},
        )
        completed = xr.Variable(
            ("init_time", "member"), da.zeros((n_init, n_mem), dtype=np.uint8, chunks=(1, b)),
            {"long_name": "member fully written (1) or not (0)", "flag_values": [0, 1]},
        )
        member_coords = {
            k: ("member", v, {"long_name": f"{k} index of the member (hens.forecast.members)"})
            for k, v in spec.layout.coords().items()
        }
        coords = {
            "init_time": ("init_time", np.array(spec.init_times, dtype="datetime64[ns]"),
                          {"long_name": "initial time", "standard_name": "forecast_reference_time"}),
            "member": ("member", np.arange(n_mem, dtype=np.int32), {"long_name": "ensemble member",
                                                                    "standard_name": "realization"}),
            "lead_time": ("lead_time", np.array(spec.lead_hours, dtype="timedelta64[h]").astype("timedelta64[ns]"),
                          {"long_name": "lead time", "standard_name": "forecast_period",
                           "comment": "lead 0 is the (perturbed) initial state"}),
            "channel": ("channel", np.array(spec.channels, dtype=object), {"long_name": "hens channel name"}),
            "lat": ("lat", spec.lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", spec.lon, {"units": "degrees_east", "standard_name": "longitude"}),
            **member_coords,
        }
        attrs = {**{k: v if isinstance(v, (str, int, float)) else json.dumps(v, default=str)
                    for k, v in spec.attrs.items()},
                 **g.attrs(), **({"region": "a latitude/longitude box of the grid (hens_config.region)"}
                                 if spec.region is not None else {}),
                 "batch_size": b, "lead_chunk": shards[2], "store_format": STORE_FORMAT,
                 "Conventions": "CF-1.10"}
        ds = xr.Dataset({FIELDS: fields, COMPLETED: completed}, coords=coords, attrs=attrs)
        blosc = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")  # fast; forecast fields shrink to ~0.8
        encoding = {FIELDS: {"chunks": chunks, "shards": shards, "_FillValue": np.float32(np.nan),
                             "compressors": [blosc]},
                    COMPLETED: {"chunks": (1, b), "_FillValue": None},
                    "lead_time": {"units": "hours", "dtype": "int64"},
                    "init_time": {"units": "hours since 1970-01-01", "dtype": "int64"}}
        with _quiet_v3_consolidation():
            ds.to_zarr(DurableLocalStore(self.path), mode="w-", compute=False, zarr_format=3, consolidated=True,
                       encoding=encoding)
        # the NaN/zero fill is implicit: no chunk is written until a batch finishes

    def verify(self) -> None:
        """Check that the existing store was declared by the same spec (for resume)."""
        import zarr

        try:
            stored = dict(zarr.open_group(self.path, mode="r").attrs)
        except Exception as err:  # any unreadable store is a user-facing data problem
            raise DataError(f"cannot resume: {self.path} is not a readable hens ensemble store ({err})") from None
        differ = [k for k in RESUME_KEYS if k in self.spec.attrs or k in stored
                  if _canonical(stored.get(k)) != _canonical(self.spec.attrs.get(k))]
        if differ:
            what = f"{' and '.join(differ)} {'differ' if len(differ) > 1 else 'differs'}"
            raise ConfigError(
                f"cannot resume: {self.path} was written with another configuration ({what}); "
                "rerun with the original config and checkpoints, or pass --overwrite"
            )

    @property
    def lead_chunk(self) -> int:
        """Leads per chunk: the writer hands over blocks of this many leads."""
        return min(self.spec.lead_chunk, len(self.spec.lead_hours))

    @property
    def group(self):
        if self._group is None:
            import zarr

            self._group = zarr.open_group(DurableLocalStore(self.path), mode="r+", zarr_format=3)
        return self._group

    def completed(self) -> np.ndarray:
        """Boolean ``(init_time, member)`` array of members already written; a damaged flag file is a
        :class:`DataError` naming it (:func:`hens.forecast.store_check.reading`)."""
        from hens.forecast.store_check import reading

        with reading(self.path, COMPLETED):
            return np.asarray(self.group[COMPLETED][...]).astype(bool)

    def write(self, init_index: int, members: slice, data: np.ndarray) -> None:
        """Write one batch, ``(members, lead_time, C, lat, lon)``; then its completion flags."""
        self.write_leads(init_index, members, slice(None), data)
        self.mark_completed(init_index, members)

    def write_leads(self, init_index: int, members: slice, leads: slice, data: np.ndarray) -> None:
        """Write leads ``leads`` of a batch: ``data`` is ``(members, leads, C, lat, lon)`` float32,
        channels in the store's order; whole shards (see :attr:`lead_chunk`)."""
        if data.ndim != 5 or data.shape[2] != len(self.spec.channels):
            raise DataError(f"a block must be (members, leads, {len(self.spec.channels)} channels, lat, lon), "
                            f"got {data.shape}")
        array = self.group[FIELDS]
        shard = self._shard_of(array, init_index, members, leads, data.shape)
        if shard is None:  # not one whole shard, or a codec chain zarr must encode
            array[init_index, members, leads] = np.asarray(data, dtype=np.float32)
            return
        if self._pool is None and self.workers > 1:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="hens-shard")
        self._shards.write(shard, [data[:, k] for k in range(data.shape[1])], self._pool if self.workers > 1 else None)

    def _shard_of(self, array, init_index: int, members: slice, leads: slice,
                  shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """Shard-grid coordinates of the block if it is exactly one shard (clipped at the array's
        edges) and :class:`~hens.forecast.shard_writer.ShardWriter` can encode it, else ``None``."""
        if self._shards is False:
            self._shards = shard_writer_for(self.path, FIELDS, array)
        if self._shards is None or tuple(shape[2:]) != tuple(array.shape[3:]) or not 0 <= init_index < array.shape[0]:
            return None
        m0, m1, _ = members.indices(array.shape[1])
        l0, l1, _ = leads.indices(array.shape[2])
        b, k = array.shards[1], array.shards[2]
        if m0 % b or l0 % k or m1 != min(m0 + b, array.shape[1]) or l1 != min(l0 + k, array.shape[2]):
            return None
        if (m1 - m0, l1 - l0) != shape[:2]:
            return None
        return (init_index, m0 // b, l0 // k, 0, 0, 0)

    def mark_completed(self, init_index: int, members: slice) -> None:
        """Set the completion flags of a batch; call after all its leads are written."""
        self.group[COMPLETED][init_index, members] = 1

    def finalize(self, attrs: Mapping[str, Any] | None = None) -> None:
        """Add run-end attributes and re-consolidate metadata."""
        import zarr

        if attrs:
            self.group.attrs.update(dict(attrs))
        with _quiet_v3_consolidation():
            zarr.consolidate_metadata(DurableLocalStore(self.path), zarr_format=3)


@contextmanager
def _quiet_v3_consolidation() -> Iterator[None]:
    """zarr warns that consolidated metadata is not in the v3 spec; hens keeps it (xarray opens
    the store in one read) and readers fall back to the per-array metadata."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        yield


def batches(n_members: int, batch_size: int) -> Sequence[slice]:
    """The fixed partition of members into batches (the store's chunks along ``member``)."""
    return [slice(i, min(i + batch_size, n_members)) for i in range(0, n_members, batch_size)]
