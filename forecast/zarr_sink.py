"""The ensemble store: declared up front, filled by region writes, resumable.

Layout (one Zarr v2 group, consolidated metadata, readable with ``xr.open_zarr``)::

    <channel>(init_time, member, lead_time, lat, lon)  float32, NaN until written
    completed(init_time, member)                       uint8, 1 once a member is fully written
    member coords: checkpoint, pair, sign, seed        (see hens.forecast.members)

Chunks are ``(1, batch_size, 1, nlat, nlon)``: one member batch x one lead x the full field.
A batch is the unit of work of one rank, so every chunk has exactly one writer (ranks never
touch the same chunk), a lead-time slice of the ensemble reads contiguous chunks, and a
chunk stays small (batch 16 on 32x64 is 128 kB) while a 721x1440 field is still one chunk
per member batch. ``completed`` is chunked ``(1, batch_size)`` and written after the batch's
data, and zarr writes each chunk atomically, so a killed run leaves either a complete batch
or one that resume recomputes -- never a half-written batch marked done.
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
from hens.forecast.errors import ConfigError, DataError, OutputExists
from hens.forecast.grids import Grid
from hens.forecast.members import MemberLayout

Mode = Literal["create", "resume", "overwrite"]
COMPLETED = "completed"


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

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")


def open_sink(path: str | Path, spec: StoreSpec, *, mode: Mode = "create") -> ZarrSink:
    """Declare (or reopen for resume) the store at ``path``.

    ``create`` refuses an existing path (:class:`OutputExists`); ``overwrite`` replaces it;
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
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    sink = ZarrSink(path, spec)
    sink.declare()
    return sink


class ZarrSink:
    """Region writer for one ensemble store; see the module docstring for the layout."""

    def __init__(self, path: Path, spec: StoreSpec) -> None:
        self.path = path
        self.spec = spec
        self._group = None

    def _fingerprint(self) -> str:
        return json.dumps(self.spec.attrs.get("hens_config", {}), sort_keys=True, default=str)

    def declare(self) -> None:
        """Write the template: coordinates, NaN-filled arrays, attributes."""
        import dask.array as da
        import xarray as xr

        spec, g = self.spec, self.spec.grid
        n_init, n_mem, n_lead = len(spec.init_times), spec.layout.size, len(spec.lead_hours)
        b = min(spec.batch_size, n_mem)
        shape = (n_init, n_mem, n_lead, g.nlat, g.nlon)
        chunks = (1, b, 1, g.nlat, g.nlon)
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
                          {"long_name": "lead time", "standard_name": "forecast_period"}),
            "lat": ("lat", g.lat.astype(np.float32), {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", g.lon.astype(np.float32), {"units": "degrees_east", "standard_name": "longitude"}),
            **member_coords,
        }
        attrs = {**{k: v if isinstance(v, (str, int, float)) else json.dumps(v, default=str)
                    for k, v in spec.attrs.items()},
                 **g.attrs(), "batch_size": b, "Conventions": "CF-1.10"}
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
            group = zarr.open_group(self.path, mode="r")
            stored = json.dumps(json.loads(group.attrs.get("hens_config", "{}")), sort_keys=True, default=str)
        except Exception as err:  # any unreadable store is a user-facing data problem
            raise DataError(f"cannot resume: {self.path} is not a readable hens ensemble store ({err})") from None
        if stored != self._fingerprint():
            raise ConfigError(f"cannot resume: {self.path} was written with another configuration")

    @property
    def group(self):
        if self._group is None:
            import zarr

            self._group = zarr.open_group(self.path, mode="r+", zarr_format=2)
        return self._group

    def completed(self) -> np.ndarray:
        """Boolean ``(init_time, member)`` array of members already written."""
        return np.asarray(self.group[COMPLETED][...]).astype(bool)

    def write(self, init_index: int, members: slice, data: Mapping[str, np.ndarray]) -> None:
        """Write one batch: ``data[channel]`` has shape ``(members, lead_time, lat, lon)``.

        The completion flags are set only after every channel is on disk.
        """
        missing = set(self.spec.channels) - set(data)
        if missing:
            raise DataError(f"batch misses channels {sorted(missing)}")
        for name in self.spec.channels:
            self.group[name][init_index, members] = np.asarray(data[name], dtype=np.float32)
        self.group[COMPLETED][init_index, members] = 1

    def finalize(self, attrs: Mapping[str, Any] | None = None) -> None:
        """Add run-end attributes and re-consolidate metadata."""
        import zarr

        if attrs:
            self.group.attrs.update(dict(attrs))
        zarr.consolidate_metadata(self.path, zarr_format=2)


def batches(n_members: int, batch_size: int) -> Sequence[slice]:
    """The fixed partition of members into batches (the store's chunks along ``member``)."""
    return [slice(i, min(i + batch_size, n_members)) for i in range(0, n_members, batch_size)]
