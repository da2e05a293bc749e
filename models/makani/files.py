"""makani model packages on disk: read one safely into a :class:`PackageFiles`.

A package (NGC ``sfno_73ch_small``, the Huge Ensembles ``sfno_linear_74chq_sc2_*``) is a
directory, or a ``.tar`` of one (files at the top or in one top-level folder)::

    config.json                           makani's parameters
    global_means.npy, global_stds.npy     (1, C_data, 1, 1): statistics of the dataset's channels
    orography.nc (Z), land_mask.nc (LSM)  (time, lat, lon), read at time 0, rows as stored
    metadata.json
    training_checkpoints/best_ckpt_mp0.tar

Tars are never extracted: members are read by their exact names as file objects, so no
path from the archive reaches the disk. The checkpoint is unpickled by
:mod:`hens.models.safe_unpickle`. Every problem is one :class:`CheckpointError` line naming
the file. Finding a package's files (directory or tar) is
:mod:`hens.models.makani.archive`'s job; making the network runnable is :mod:`hens.models.makani.network`'s job.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hens.forecast.channels import from_makani
from hens.forecast.errors import CheckpointError, HensError
from hens.forecast.grids import Grid
from hens.models.makani.archive import CHECKPOINT, CONFIG, PackageArchive, open_package
from hens.models.safe_unpickle import is_zip_checkpoint, load_makani_checkpoint
from hens.models.types import PackageStyle

MEANS, STDS = "global_means.npy", "global_stds.npy"
OROGRAPHY, LAND_MASK = "orography.nc", "land_mask.nc"
_FILTER = ".filter.filter.weight"  # blocks' spectral filters, [E, E, lmax] as published


@dataclass(frozen=True, eq=False)
class PackageFiles:
    """Everything a makani package holds, in hens terms.

    Attributes
    ----------
    path
        The directory or tar file.
    style
        ``"makani-v0.1"`` (torch zip checkpoint) or ``"hens-conversion"`` (legacy format).
    params
        config.json as a dict (makani's ``"None"`` strings read as ``None``).
    channels
        hens names of the predicted channels, model order (makani ``2d`` is ``d2m``).
    grid
        The data grid: ``img_shape_x x img_shape_y``, equiangular, latitude 90 -> -90.
    step_hours
        Hours per model step: makani's ``dt * dhours``.
    mean, std
        float64 (C,): the dataset statistics of ``channels`` (physical units).
    orography, land_mask
        float64 (nlat, nlon), north first, as makani reads them (``Z``/``LSM`` at time 0,
        no unpacking, rows as stored); ``None`` unless ``add_orography``/``add_landmask``.
        Orography is geopotential (m2 s-2); the land mask a fraction in [0, 1].
    state_dict
        The network's tensors, ``module.`` removed; filters ``[E, E, lmax]`` complex64.
    weights_sha256
        SHA-256 of the checkpoint file's bytes.
    extras
        makani's names of the inputs appended after ``channels`` (``xzen``, ``xsgrlat1``, ...).
    """

    path: Path
    style: PackageStyle
    params: dict[str, Any]
    channels: tuple[str, ...]
    grid: Grid
    step_hours: int
    mean: np.ndarray
    std: np.ndarray
    orography: np.ndarray | None
    land_mask: np.ndarray | None
    state_dict: dict[str, torch.Tensor]
    weights_sha256: str
    extras: tuple[str, ...]


def read_package(path: str | Path, *, weights: bool = True) -> PackageFiles:
    """Read a makani package completely (``weights=False``: all but the checkpoint, whose
    ``state_dict`` is then empty and ``weights_sha256`` ``""``); no code from it runs.

    Raises
    ------
    CheckpointError
        One line naming the file and the problem: not a package, a missing, truncated or
        corrupt file, a checkpoint that needs arbitrary unpickling, unknown channels,
        statistics or static fields that do not fit the channels or the grid.
    """
    path = Path(path)
    try:
        with open_package(path) as files:
            if files is None:
                raise CheckpointError(
                    f"{path} is not a makani package (a folder or .tar with {CONFIG} and {CHECKPOINT})"
                )
            return _read(files, weights=weights)
    except (OSError, tarfile.TarError) as err:
        raise CheckpointError(f"package {path} is unreadable ({err})") from None


def _read(files: PackageArchive, *, weights: bool) -> PackageFiles:
    params = _config(files)
    cfg = files.name(CONFIG)
    try:
        channels = from_makani(list(params["channel_names"]))
        grid = Grid(int(params["img_shape_x"]), int(params["img_shape_y"]), "equiangular")
    except HensError as err:
        raise CheckpointError(f"{cfg}: {err}") from None
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{cfg} lacks or misstates {err} (channel_names, img_shape_x/y)") from None
    _check_grid(params, grid, cfg)
    step = _step_hours(params, cfg)
    extras = _extras(params, cfg)
    n_in = params.get("N_in_channels")
    if n_in is not None and int(n_in) != len(channels) + len(extras):
        raise CheckpointError(
            f"{cfg}: N_in_channels is {n_in}, but {len(channels)} channels and {len(extras)} extra inputs "
            f"({', '.join(extras) or 'none'}) make {len(channels) + len(extras)}"
        )
    mean, std = _statistics(files, params, len(channels))
    orography = _static(files, OROGRAPHY, "Z", grid) if params.get("add_orography") else None
    land_mask = _static(files, LAND_MASK, "LSM", grid) if params.get("add_landmask") else None
    if not weights:
        style, _ = _style_and_hash(files, sha256=False)
        return PackageFiles(files.path, style, params, channels, grid, step, mean, std, orography, land_mask,
                            {}, "", extras)
    style, state, sha = _checkpoint(files)
    _check_weights(state, params, len(channels), len(channels) + len(extras), files.name(CHECKPOINT))
    return PackageFiles(files.path, style, params, channels, grid, step, mean, std, orography, land_mask,
                        state, sha, extras)


def _config(files: PackageArchive) -> dict[str, Any]:
    try:
        params = json.loads(files.read(CONFIG))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{files.name(CONFIG)} is not valid JSON ({err})") from None
    if not isinstance(params, dict):
        raise CheckpointError(f"{files.name(CONFIG)} is not a JSON object")
    # makani's ParamsBase.update_params reads the string "None" as None
    return {k: (None if v == "None" else v) for k, v in params.items()}


def _check_grid(params: Mapping[str, Any], grid: Grid, cfg: str) -> None:
    """makani's data grid is equiangular with both poles, 90 -> -90 (ModelWrapper's default
    ``lat``), unless the config lists other coordinates; the model must see it uncropped."""
    for key in ("data_grid_type", "model_grid_type"):
        if params.get(key, "equiangular") != "equiangular":
            raise CheckpointError(f"{cfg}: {key} is {params[key]!r}; hens reads equiangular packages")
    crop = tuple(params.get(k, d) for k, d in (("img_crop_shape_x", grid.nlat), ("img_crop_shape_y", grid.nlon),
                                               ("img_crop_offset_x", 0), ("img_crop_offset_y", 0)))
    if crop != (grid.nlat, grid.nlon, 0, 0):
        raise CheckpointError(f"{cfg}: the model sees a crop {crop} of the {grid.spec} grid; hens reads global models")
    if "lat" in params or "lon" in params:
        try:
            grid.check(np.asarray(params.get("lat", grid.lat)), np.asarray(params.get("lon", grid.lon)), what=cfg)
        except HensError as err:
            raise CheckpointError(str(err)) from None


def _step_hours(params: Mapping[str, Any], cfg: str) -> int:
    # makani's ModelWrapper.timestep is dt * dhours (dt: data steps per model step)
    try:
        hours = float(params["dhours"]) * float(params.get("dt", 1))
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{cfg} lacks dhours (hours between data steps)") from None
    if hours <= 0 or hours != int(hours):
        raise CheckpointError(f"{cfg}: dt * dhours = {hours:g} h is not a positive whole number of hours")
    return int(hours)


def _extras(params: Mapping[str, Any], cfg: str) -> tuple[str, ...]:
    """makani's names of the inputs after the state (its ``get_auxiliary_channels``), in order."""
    unsupported = [k for k in ("add_soiltype", "add_copernicus_emb", "input_noise") if params.get(k)]
    if int(params.get("n_history", 0) or 0) != 0:
        unsupported.append("n_history")
    if unsupported:
        raise CheckpointError(f"{cfg} sets {', '.join(unsupported)}, which hens does not run")
    extras: list[str] = ["xzen"] if params.get("add_zenith") else []
    if params.get("add_grid"):
        if params.get("gridtype", "sinusoidal") == "sinusoidal":
            # the published packages predate add_cos_to_grid: absent means sines only
            cos = bool(params.get("add_cos_to_grid", False))
            for f in range(1, int(params.get("grid_num_frequencies", 1)) + 1):
                extras += [f"xsgrlat{f}", f"xsgrlon{f}"] + ([f"xcgrlat{f}", f"xcgrlon{f}"] if cos else [])
        else:
            extras += ["xgrlat", "xgrlon"]
    if params.get("add_orography"):
        extras.append("xoro")
    if params.get("add_landmask"):
        extras += ["xlsm"] if params.get("landmask_preprocessing", "floor") == "raw" else ["xlsml", "xlsms"]
    return tuple(extras)


def _statistics(files: PackageArchive, params: Mapping[str, Any], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Means and stds of the model's channels: makani indexes the dataset's ``(1, C_data, 1, 1)``
    arrays with ``in_channels`` (positions of channel_names among the dataset's channels)."""
    norm = params.get("normalization", "zscore")
    if norm != "zscore" and not (isinstance(norm, dict) and all(v == "zscore" for v in norm.values())):
        raise CheckpointError(f"{files.name(CONFIG)}: normalization {norm!r}; hens reads zscore packages")
    index = params.get("in_channels")
    if index is not None and list(params.get("out_channels", index)) != list(index):
        raise CheckpointError(f"{files.name(CONFIG)}: in_channels and out_channels differ")
    out = []
    for rel in (MEANS, STDS):
        try:
            values = np.load(io.BytesIO(files.read(rel)), allow_pickle=False)
        except ValueError as err:
            raise CheckpointError(f"{files.name(rel)} is truncated or corrupt ({err})") from None
        if values.ndim != 4 or values.shape[0] != 1 or values.shape[2:] != (1, 1):
            raise CheckpointError(f"{files.name(rel)} has shape {values.shape}, expected (1, C, 1, 1)")
        flat = values[0, :, 0, 0].astype(np.float64)
        if index is None and flat.size != n:
            raise CheckpointError(f"{files.name(rel)} has {flat.size} values for {n} channels")
        if index is not None:
            if len(index) != n or not all(0 <= int(i) < flat.size for i in index):
                raise CheckpointError(
                    f"{files.name(rel)} has {flat.size} values; in_channels {list(index)} do not pick {n} of them"
                )
            flat = flat[[int(i) for i in index]]
        out.append(flat)
    if not (np.all(np.isfinite(out[0])) and np.all(np.isfinite(out[1])) and np.all(out[1] > 0)):
        raise CheckpointError(f"package {files.path}: means or stds are not finite, or stds not positive")
    return out[0], out[1]


def _static(files: PackageArchive, rel: str, var: str, grid: Grid) -> np.ndarray:
    """``var`` at time 0 as makani reads it (h5py: raw stored values, rows as stored)."""
    import netCDF4

    name = files.name(rel)
    try:
        with netCDF4.Dataset(rel, mode="r", memory=files.read(rel)) as ds:
            if var not in ds.variables:
                raise CheckpointError(f"{name} has no variable {var} (it has {', '.join(ds.variables) or 'none'})")
            v = ds.variables[var]
            v.set_auto_maskandscale(False)  # h5py does not unpack or mask either
            if v.ndim != 3 or v.shape[0] < 1:
                raise CheckpointError(f"{name}: {var}{v.dimensions} is not (time, lat, lon)")
            values = np.asarray(v[0], dtype=np.float64)
            lat = next((ds.variables[c][:] for c in ("latitude", "lat") if c in ds.variables), None)
    except OSError as err:
        raise CheckpointError(f"{name} is truncated or corrupt ({err})") from None
    if values.shape != grid.shape:
        raise CheckpointError(f"{name}: {var} is on a {values.shape[0]}x{values.shape[1]} grid, the package's is {grid.spec}")
    if lat is not None and lat.size == grid.nlat and lat[0] < lat[-1]:
        raise CheckpointError(f"{name} stores latitude south first; makani uses its rows as north first")
    return values


def _style_and_hash(files: PackageArchive, *, sha256: bool) -> tuple[PackageStyle, str]:
    """The checkpoint's style (from its first bytes) and, with ``sha256``, its SHA-256 (else ``""``)."""
    digest = hashlib.sha256()
    with files.open(CHECKPOINT) as f:
        head = f.read(4)
        digest.update(head)
        for block in iter(lambda: f.read(1 << 20), b"") if sha256 else ():
            digest.update(block)
    style: PackageStyle = "makani-v0.1" if is_zip_checkpoint(head) else "hens-conversion"
    return style, digest.hexdigest() if sha256 else ""


def _checkpoint(files: PackageArchive) -> tuple[PackageStyle, dict[str, torch.Tensor], str]:
    name = files.name(CHECKPOINT)
    style, digest = _style_and_hash(files, sha256=True)
    with files.open(CHECKPOINT) as f:
        # a tar member is a seekable file object: nothing is written to disk
        payload = load_makani_checkpoint(f, name=name)
    state = payload.get("model_state") if isinstance(payload, dict) else None
    if not isinstance(state, Mapping) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise CheckpointError(f"checkpoint {name} has no model_state of tensors")
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        key = key.removeprefix("module.")  # makani v0.1 saved its DistributedDataParallel wrapper
        if key.endswith(_FILTER) and tensor.ndim == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]  # makani >= 0.2 adds a group dimension in front
        out[key] = tensor
    return style, out, digest


def _check_weights(state: Mapping[str, torch.Tensor], params: Mapping[str, Any], n: int, n_in: int, name: str) -> None:
    """The encoder reads ``n_in`` inputs into ``embed_dim``, the decoder writes ``n`` channels."""
    embed = int(params.get("embed_dim", 0) or 0)
    expect = {"model.encoder.fwd.0.weight": (embed, n_in, 1, 1), "model.decoder.fwd.2.weight": (n, embed, 1, 1)}
    for key, shape in expect.items():
        if key not in state:
            raise CheckpointError(f"checkpoint {name} lacks {key}; is config.json's nettype SFNO?")
        if tuple(state[key].shape) != shape:
            raise CheckpointError(
                f"checkpoint {name}: {key} is {list(state[key].shape)}, config.json implies {list(shape)}"
            )
    filters = [k for k in state if k.endswith(_FILTER)]
    layers = params.get("num_layers")
    if layers is not None and len(filters) != int(layers):
        raise CheckpointError(f"checkpoint {name} has {len(filters)} blocks, config.json num_layers is {layers}")


def describe_package(pkg: PackageFiles) -> str:
    """A few lines about a package: network, grid, channels, step, extra inputs, style, hash."""
    p = pkg.params
    filters = [t for k, t in pkg.state_dict.items() if k.endswith(_FILTER)]
    lmax = int(filters[0].shape[-1]) if filters else "?"
    scale = int(p.get("scale_factor", 1))
    real = sum(t.numel() * (2 if t.is_complex() else 1) for t in pkg.state_dict.values())
    n_grid = sum(e.startswith(("xsgr", "xcgr", "xgr")) for e in pkg.extras)
    extras = ["cos zenith"] if "xzen" in pkg.extras else []
    extras += [f"{n_grid} grid channels"] if n_grid else []
    extras += ["orography"] if "xoro" in pkg.extras else []
    n_lsm = sum(e.startswith("xlsm") for e in pkg.extras)
    extras += [f"land mask ({n_lsm} channel{'s' * (n_lsm > 1)})"] if n_lsm else []
    lines = [
        (f"{pkg.path}: makani package ({pkg.style}), {p.get('nettype', '?')} {p.get('filter_type', '')}, "
         f"{real:,} real numbers"),
        (f"  network   embed {p.get('embed_dim')}, {p.get('num_layers')} layers, scale factor {scale}, "
         f"internal grid {pkg.grid.nlat // scale}x{pkg.grid.nlon // scale}, triangular truncation lmax = mmax = {lmax}"),
        f"  grid      {pkg.grid.spec}",
        f"  channels  {' '.join(pkg.channels)}",
        f"  step      {pkg.step_hours} h",
        (f"  inputs    {len(pkg.channels)} channels + {', '.join(extras) or 'nothing'} "
         f"({len(pkg.channels) + len(pkg.extras)} in all)"),
        f"  weights   sha256 {pkg.weights_sha256}",
    ]
    return "\n".join(lines)
