"""The ensemble store: declared up front, filled by region writes, resumable.

Layout (one Zarr v2 group, consolidated metadata, readable with ``xr.open_zarr``)::

    <channel>(init_time, member, lead_time, lat, lon)  float32, NaN until written
    completed(init_time, member)                       uint8, 1 once a member is fully written
    member coords: checkpoint, pair, sign, seed        (see hens.forecast.members)

Chunks are ``(1, batch_size, lead_chunk, nlat, nlon)``: one member batch x a block of leads x
the full field. A batch is the unit of work of one rank, so every chunk has exactly one writer
(ranks never touch the same chunk) and a field is never split. ``lead_chunk`` is 1 by default;
the engine uses :func:`lead_chunk_for`, enough leads for ~4 MiB chunks: a 721x1440 field of a
16-member batch is already 66 MB (one lead per chunk), but on the 32x64 demo grid one lead is
128 kB, and there the per-file cost of a chunk (create, write, rename, later fsync) outweighs
its bytes -- measured here (Blosc-lz4, the Zarr v2 default compressor, kept: forecast fields
shrink to ~0.7-0.85) at 70 MB/s for 128 kB chunks, 320 MB/s for 1 MiB and 370 MB/s for 4 MiB.
``completed`` is chunked ``(1, batch_size)`` and written after the batch's data, and every
chunk is written atomically and durably (:class:`~hens.forecast.durable_store.DurableLocalStore`:
temporary file, fsync, rename, fsync of the folder), so a killed run, or a crashed node, leaves
either a complete batch or one that resume recomputes -- never a half-written batch marked done.

The engine streams a batch in lead blocks (:meth:`ZarrSink.write_leads`: whole chunks, no
read-modify-write), then :meth:`ZarrSink.mark_completed`. Resume accepts a store only if its
``hens_config``, ``hens_version`` and ``checkpoints`` attributes equal the new run's
(:data:`RESUME_KEYS`): same configuration, same code, same checkpoint files.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hens.forecast.channels import get_channel
from hens.forecast.durable_store import DurableLocalStore
from hens.forecast.errors import ConfigError, DataError, OutputExists
from hens.forecast.grids import Grid
from hens.forecast.members import MemberLayout

Mode = Literal["create", "resume", "overwrite"]
COMPLETED = "completed"
#: chunk size :func:`lead_chunk_for` aims at
TARGET_CHUNK_BYTES = 4 << 20
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

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.lead_chunk < 1:
            raise ConfigError(f"lead_chunk must be >= 1, got {self.lead_chunk}")


def lead_chunk_for(batch_size: int, grid: Grid, n_leads: int) -> int:
    """Leads per chunk for chunks of about :data:`TARGET_CHUNK_BYTES` (1 .. ``n_leads``)."""
    per_lead = batch_size * grid.nlat * grid.nlon * 4
    return max(1, min(n_leads, TARGET_CHUNK_BYTES // per_lead))


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

    def __init__(self, path: Path, spec: StoreSpec) -> None:
        self.path = path
        self.spec = spec
        self._group = None


    def declare(self) -> None:
        """Write the template: coordinates, NaN-filled arrays, attributes."""
        import dask.array as da
        import xarray as xr

        spec, g = self.spec, self.spec.grid
        n_init, n_mem, n_lead = len(spec.init_times), spec.layout.size, len(spec.lead_hours)
        b = min(spec.batch_size, n_mem)
        shape = (n_init, n_mem, n_lead, g.nlat, g.nlon)
        chunks = (1, b, min(spec.lead_chunk, n_lead), g.nlat, g.nlon)
        dims = ("init_time", "member", "lead_time", "lat", "lon")
        data_vars = {}
        for name in spec.channels:
            data_vars[name] = xr.Variable(
                dims, da.full(shape, np.nan, dtype=np.float32, chunks=chunks), get_channel(name).attrs()
            )
        data_vars[COMPLETED] = xr.Variable(
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
            "lat": ("lat", g.lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", g.lon, {"units": "degrees_east", "standard_name": "longitude"}),
            **member_coords,
        }
        attrs = {**{k: v if isinstance(v, (str, int, float)) else json.dumps(v, default=str)
                    for k, v in spec.attrs.items()},
                 **g.attrs(), "batch_size": b, "lead_chunk": chunks[2], "Conventions": "CF-1.10"}
        ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
        encoding = {name: {"chunks": chunks, "_FillValue": np.float32(np.nan)} for name in spec.channels}
        encoding[COMPLETED] = {"chunks": (1, b), "_FillValue": None}
        encoding["lead_time"] = {"units": "hours", "dtype": "int64"}
        encoding["init_time"] = {"units": "hours since 1970-01-01", "dtype": "int64"}
        ds.to_zarr(self.path, mode="w-", compute=False, zarr_format=2, consolidated=True, encoding=encoding)
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

            self._group = zarr.open_group(DurableLocalStore(self.path), mode="r+", zarr_format=2)
        return self._group

    def completed(self) -> np.ndarray:
        """Boolean ``(init_time, member)`` array of members already written."""
        return np.asarray(self.group[COMPLETED][...]).astype(bool)

    def write(self, init_index: int, members: slice, data: Mapping[str, np.ndarray]) -> None:
        """Write one batch: ``data[channel]`` has shape ``(members, lead_time, lat, lon)``.

        The completion flags are set only after every channel is on disk.
        """
        self.write_leads(init_index, members, slice(None), data)
        self.mark_completed(init_index, members)

    def write_leads(self, init_index: int, members: slice, leads: slice, data: Mapping[str, np.ndarray]) -> None:
        """Write leads ``leads`` of a batch: ``data[channel]`` is ``(members, leads, lat, lon)``."""
        missing = set(self.spec.channels) - set(data)
        if missing:
            raise DataError(f"batch misses channels {sorted(missing)}")
        for name in self.spec.channels:
            self.group[name][init_index, members, leads] = np.asarray(data[name], dtype=np.float32)

    def mark_completed(self, init_index: int, members: slice) -> None:
        """Set the completion flags of a batch; call after all its leads are written."""
        self.group[COMPLETED][init_index, members] = 1

    def finalize(self, attrs: Mapping[str, Any] | None = None) -> None:
        """Add run-end attributes and re-consolidate metadata."""
        import zarr

        if attrs:
            self.group.attrs.update(dict(attrs))
        zarr.consolidate_metadata(DurableLocalStore(self.path), zarr_format=2)


def batches(n_members: int, batch_size: int) -> Sequence[slice]:
    """The fixed partition of members into batches (the store's chunks along ``member``)."""
    return [slice(i, min(i + batch_size, n_members)) for i in range(0, n_members, batch_size)]
