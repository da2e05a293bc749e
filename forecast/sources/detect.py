"""From the user's path to parts: expand lists and globs, tell Zarr from netCDF by content,
open lazily, recognise the layout by dims and variable names, concatenate files along time.

File names are only used in messages: a store is Zarr when it holds Zarr metadata, a file is
netCDF when it starts with the netCDF-3 or HDF5 signature, and the layout comes from the dims
and variable names inside. URLs (:mod:`hens.forecast.sources.remote`) name Zarr stores.
"""

from __future__ import annotations

import glob
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from hens.forecast.errors import DataError
from hens.forecast.sources import cds, direct, wb2
from hens.forecast.sources.part import NameAttr, Part, first_line, make_part
from hens.forecast.sources.remote import ZARR_METADATA, check_store_url, is_url

#: what :func:`hens.forecast.sources.open_source` accepts
SourcePath = str | Path | Sequence[str | Path]
_NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")


@dataclass(frozen=True)
class Layout:
    """A data layout: how to recognise it, normalise it and name its variables."""

    title: str
    matches: Callable[[xr.Dataset], bool]
    normalize: Callable[[xr.Dataset], xr.Dataset]
    name_attr: NameAttr


# the new CDS layout is tried first: only it has `valid_time`
LAYOUTS: tuple[Layout, ...] = (
    Layout(cds.TITLE_NEW, cds.is_new_layout, cds.normalize_new, cds.NAME_ATTR),
    Layout(wb2.TITLE, wb2.is_layout, wb2.normalize, wb2.NAME_ATTR),
    Layout(cds.TITLE_LEGACY, cds.is_legacy_layout, cds.normalize_legacy, cds.NAME_ATTR),
)


def expand(path: SourcePath) -> list[str]:
    """The stores/files named by a path, a glob string or a list of either, globs sorted."""
    items = [path] if isinstance(path, (str, Path)) else list(path)
    if not items:
        raise DataError("no input path given; pass a Zarr store, netCDF files or a glob")
    found: list[str] = []
    for item in items:
        text = str(item)
        if is_url(item):
            check_store_url(text)
            found.append(text)
        elif Path(text).exists():
            found.append(text)
        elif any(c in text for c in "*?["):
            matches = sorted(glob.glob(text))
            if not matches:
                raise DataError(f"no files match {text!r}")
            found.extend(matches)
        else:
            raise DataError(f"{text}: no such file or directory")
    return found


def open_parts(path: SourcePath) -> tuple[list[Part], list[str], str]:
    """Open every file of ``path`` and group files with the same variables into parts.

    Returns
    -------
    parts
        One per group of files with the same layout, variables and levels, concatenated
        along time (e.g. monthly pressure-level files; single-level files form another part).
    titles
        The layouts found, e.g. ``["CDS netCDF (new)"]``.
    label
        The input as given (a glob stays a glob), for messages.
    """
    paths = expand(path)
    given = [path] if isinstance(path, (str, Path)) else list(path)
    if len(paths) == 1 and _format(paths[0]) == "zarr":
        # one store is read without dask, straight through zarr: dask's per-chunk tasks cost
        # more than the read itself for WB2's one-time-step chunks
        raw = _open(paths[0], "zarr", use_dask=False)
        layout = _layout(raw, paths[0])
        part = make_part(layout.normalize(raw), paths[0], layout.name_attr)
        return [direct.attach(part, paths[0], raw)], [layout.title], _label(list(map(str, given)))
    # netCDF files and several stores go through dask: files concatenate lazily along
    # time, and legacy expver layers merge lazily
    groups: dict[tuple, list[tuple[str, xr.Dataset]]] = {}
    layouts: dict[tuple, Layout] = {}
    for p in paths:
        ds = _open(p, _format(p), use_dask=True)
        layout = _layout(ds, p)
        ds = layout.normalize(ds)
        key = (layout.title, tuple(sorted(map(str, ds.data_vars))), _levels(ds))
        groups.setdefault(key, []).append((p, ds))
        layouts[key] = layout
    parts = [
        make_part(_concat(members), _label([p for p, _ in members]), layouts[key].name_attr)
        for key, members in groups.items()
    ]
    titles = sorted({layout.title for layout in layouts.values()})
    return parts, titles, _label(list(map(str, given)))


def _format(path: str) -> Literal["zarr", "netcdf"]:
    if is_url(path):
        return "zarr"
    p = Path(path)
    if p.is_dir():
        if any((p / name).exists() for name in ZARR_METADATA):
            return "zarr"
        raise DataError(
            f"{path} is a directory but not a Zarr store (no .zgroup or zarr.json); "
            "pass a Zarr store, netCDF files or a glob"
        )
    with p.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(_NETCDF_MAGIC):
        return "netcdf"
    raise DataError(f"{path} is neither a Zarr store nor a netCDF file")


def _open(path: str, fmt: str, *, use_dask: bool) -> xr.Dataset:
    try:
        with warnings.catch_warnings():
            # zarr falls back to unconsolidated metadata with a RuntimeWarning; that is fine
            warnings.simplefilter("ignore", RuntimeWarning)
            if fmt == "zarr":
                return xr.open_zarr(path, chunks={} if use_dask else None)
            return xr.open_dataset(path, chunks={})
    except Exception as err:  # backends raise many types for damaged files; report them all
        raise DataError(
            f"cannot open {path} as {fmt} (damaged or incomplete?): "
            f"{type(err).__name__}: {first_line(err)}"
        ) from err


def _layout(ds: xr.Dataset, path: str) -> Layout:
    for layout in LAYOUTS:
        if layout.matches(ds):
            return layout
    names = ", ".join(list(map(str, ds.data_vars))[:8]) or "none"
    raise DataError(
        f"{path} has an unknown layout (dims {', '.join(map(str, ds.dims)) or 'none'}; "
        f"variables {names}); hens reads WeatherBench2/ARCO Zarr (geopotential, 2m_temperature, "
        "... over time, level, latitude, longitude) and CDS netCDF (z, t2m, ...)"
    )


def _levels(ds: xr.Dataset) -> tuple[float, ...]:
    if "level" not in ds.coords:
        return ()
    return tuple(np.asarray(ds["level"].values, dtype=float).tolist())


def _concat(members: list[tuple[str, xr.Dataset]]) -> xr.Dataset:
    if len(members) == 1:
        return members[0][1]
    try:
        return xr.concat(
            [ds for _, ds in members], dim="time", data_vars="minimal", coords="minimal",
            compat="override", join="exact",
        )
    except ValueError as err:
        raise DataError(
            f"cannot join {_label([p for p, _ in members])} along time: {first_line(err)}"
        ) from err


def _label(paths: list[str]) -> str:
    if len(paths) <= 3:
        return ", ".join(paths)
    return f"{paths[0]} and {len(paths) - 1} more files"
