"""Build small makani model packages in the published layout, without makani.

The checkpoint pickles instances of two classes that claim to be
``makani.utils.YParams.ParamsBase``/``YParams`` (a fake module is registered in
``sys.modules`` only while saving), so the file references the real class names exactly as
a published package does. Weight names and shapes follow makani's SFNO (b38fcb2
``sfnonet.py``/``layers.py``): encoder and decoder ``Conv2d`` 1x1, first with bias, last
without; spectral filters ``[E, E, lmax]`` complex64 (as published, before makani added a
group dimension); instance norms with affine weight and bias; MLP with biased output;
linear outer skip; ``residual_transform`` over all inputs.
"""

from __future__ import annotations

import json
import sys
import tarfile
import types
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

#: the 73 channels of sfno_73ch_small (makani names), in model order
LEVELS = (50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000)
CHANNELS_73 = ("u10m", "v10m", "u100m", "v100m", "t2m", "sp", "msl", "tcwv") + tuple(
    f"{v}{level}" for v in "uvztq" for level in LEVELS
)
#: a small set for tests (makani names; ``2d`` is hens' ``d2m``)
SMALL_CHANNELS = ("u10m", "v10m", "t2m", "2d", "msl", "z500", "q850")
_MODULE = "makani.utils.YParams"


class ParamsBase:
    """Pickles as makani's ``ParamsBase`` (plain attributes, NEWOBJ + BUILD)."""


class YParams(ParamsBase):
    """Pickles as makani's ``YParams``."""


for _cls in (ParamsBase, YParams):
    _cls.__module__ = _MODULE


@contextmanager
def fake_makani() -> Iterator[None]:
    """Register ``makani.utils.YParams`` with the two classes while a pickle is written."""
    names = ("makani", "makani.utils", _MODULE)
    saved = {n: sys.modules.get(n) for n in names}
    module = types.ModuleType(_MODULE)
    module.ParamsBase, module.YParams = ParamsBase, YParams  # type: ignore[attr-defined]
    sys.modules.update({"makani": types.ModuleType("makani"),
                        "makani.utils": types.ModuleType("makani.utils"), _MODULE: module})
    try:
        yield
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def make_params(cls: type, config: dict[str, Any]) -> ParamsBase:
    """An object with the attributes makani's ``update_params`` gives a params object."""
    obj = cls.__new__(cls)
    obj._original_attrs = None
    obj.params = {}
    obj._original_attrs = list(vars(obj))
    if cls is YParams:
        obj._yaml_filename, obj._config_name = "config/sfnonet.yaml", "sfno_linear_73chq_sc3_layers8_edim384_wstgl2"
    for key, value in config.items():
        obj.params[key] = value
        setattr(obj, key, value)
    return obj


def n_extras(grid_num_frequencies: int) -> int:
    """Inputs after the state: zenith, 2 x frequencies grid channels, orography, 2 land mask."""
    return 1 + 2 * grid_num_frequencies + 1 + 2


def weight_shapes(*, channels: int, embed_dim: int, num_layers: int, nlat: int, scale_factor: int,
                  grid_num_frequencies: int) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a published SFNO state dict (no ``module.`` prefix)."""
    e, c = embed_dim, channels
    n_in = c + n_extras(grid_num_frequencies)
    lmax = nlat // scale_factor  # makani: modes_lat = int(h * hard_thresholding_fraction)
    shapes: dict[str, tuple[int, ...]] = {
        "model.encoder.fwd.0.weight": (e, n_in, 1, 1), "model.encoder.fwd.0.bias": (e,),
        "model.encoder.fwd.2.weight": (e, e, 1, 1),
    }
    for i in range(num_layers):
        b = f"model.blocks.{i}."
        shapes.update({
            b + "filter.filter.weight": (e, e, lmax),
            b + "norm0.weight": (e,), b + "norm0.bias": (e,),
            b + "mlp.fwd.0.weight": (2 * e, e, 1, 1), b + "mlp.fwd.0.bias": (2 * e,),
            b + "mlp.fwd.3.weight": (e, 2 * e, 1, 1), b + "mlp.fwd.3.bias": (e,),
            b + "norm1.weight": (e,), b + "norm1.bias": (e,),
            b + "outer_skip.weight": (e, e, 1, 1),
        })
    shapes.update({
        "model.decoder.fwd.0.weight": (e, e, 1, 1), "model.decoder.fwd.0.bias": (e,),
        "model.decoder.fwd.2.weight": (c, e, 1, 1),
        "model.residual_transform.weight": (c, n_in, 1, 1),
    })
    return shapes


def _write_static(path: Path, var: str, values: np.ndarray, long_name: str) -> None:
    """A netCDF4 (HDF5) file as ERA5's invariants: ``var`` (time, latitude, longitude), north first."""
    import netCDF4

    nlat, nlon = values.shape
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", 1)
        ds.createDimension("latitude", nlat)
        ds.createDimension("longitude", nlon)
        lat = ds.createVariable("latitude", "f4", ("latitude",))
        lat[:] = np.linspace(90.0, -90.0, nlat)
        lon = ds.createVariable("longitude", "f4", ("longitude",))
        lon[:] = np.arange(nlon) * 360.0 / nlon
        v = ds.createVariable(var, "f4", ("time", "latitude", "longitude"))
        v.long_name = long_name
        v[0] = values.astype(np.float32)


def static_fields(nlat: int, nlon: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Orography (m2 s-2, high in the north so a flip shows) and land-sea fraction in [0, 1]."""
    rng = np.random.default_rng(seed)
    z = 9.81 * (3000.0 * np.linspace(1.0, 0.0, nlat)[:, None] + 100.0 * rng.random((nlat, nlon)))
    lsm = np.clip(rng.random((nlat, nlon)) * 1.4 - 0.2, 0.0, 1.0)
    lsm[0] = 1.0  # north pole row on land: a flipped mask shows
    lsm[-1] = 0.0
    return z, lsm


def write_package(
    root: str | Path,
    *,
    style: Literal["makani-v0.1", "hens-conversion"] = "makani-v0.1",
    channels: tuple[str, ...] = SMALL_CHANNELS,
    embed_dim: int = 8,
    num_layers: int = 2,
    nlat: int = 9,
    nlon: int = 16,
    scale_factor: int = 2,
    grid_num_frequencies: int = 2,
    data_channels: tuple[str, ...] | None = None,
    seed: int = 0,
) -> Path:
    """Write a package folder ``root`` with tiny random weights; return ``root``.

    ``data_channels`` (default ``channels``) are the dataset's channels: the statistics files
    hold them all and ``in_channels`` picks ``channels`` among them, as makani does.
    """
    root = Path(root)
    (root / "training_checkpoints").mkdir(parents=True, exist_ok=True)
    data_channels = data_channels or channels
    index = [data_channels.index(c) for c in channels]
    c, n_in = len(channels), len(channels) + n_extras(grid_num_frequencies)
    config: dict[str, Any] = {
        "nettype": "SFNO", "filter_type": "linear", "operator_type": "dhconv", "spectral_transform": "sht",
        "model_grid_type": "equiangular", "sht_grid_type": "legendre-gauss", "scale_factor": scale_factor,
        "embed_dim": embed_dim, "num_layers": num_layers, "normalization_layer": "instance_norm",
        "hard_thresholding_fraction": 1.0, "use_mlp": True, "mlp_mode": "serial", "mlp_ratio": 2,
        "activation_function": "gelu", "encoder_layers": 1, "pos_embed": "none", "big_skip": True,
        "add_zenith": True, "add_grid": True, "gridtype": "sinusoidal",
        "grid_num_frequencies": grid_num_frequencies, "add_orography": True, "add_landmask": True,
        "orography_path": "/data/invariants/orography.nc", "landmask_path": "/data/invariants/land_mask.nc",
        "channel_names": list(channels), "data_channel_names": list(data_channels),
        "in_channels": index, "out_channels": index, "N_in_channels": n_in, "N_out_channels": c,
        "img_shape_x": nlat, "img_shape_y": nlon, "img_crop_shape_x": nlat, "img_crop_shape_y": nlon,
        "img_crop_offset_x": 0, "img_crop_offset_y": 0, "dhours": 6, "dt": 1, "n_history": 0,
        "n_future": 0, "normalization": "zscore", "target": "default", "history_normalization_mode": "none",
        "global_means_path": "/data/stats/global_means.npy", "global_stds_path": "/data/stats/global_stds.npy",
        "min_path": "None", "lr": 1e-3, "betas": [0.9, 0.95],
    }
    (root / "config.json").write_text(json.dumps(config, indent=4, sort_keys=True))
    (root / "metadata.json").write_text(json.dumps({"entrypoint": {"name": "makani.models.model_package:load_time_loop"}}))
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(1, len(data_channels), 1, 1)).astype(np.float32) * 100
    std = (rng.random((1, len(data_channels), 1, 1)) + 0.5).astype(np.float32) * 10
    np.save(root / "global_means.npy", mean)
    np.save(root / "global_stds.npy", std)
    z, lsm = static_fields(nlat, nlon, seed)
    _write_static(root / "orography.nc", "Z", z, "Geopotential")
    _write_static(root / "land_mask.nc", "LSM", lsm, "Land-sea mask")
    gen = torch.Generator().manual_seed(seed)
    shapes = weight_shapes(channels=c, embed_dim=embed_dim, num_layers=num_layers, nlat=nlat,
                           scale_factor=scale_factor, grid_num_frequencies=grid_num_frequencies)
    weights = {k: torch.randn(s, generator=gen, dtype=torch.complex64 if k.endswith("filter.filter.weight")
                              else torch.float32) * 0.1 for k, s in shapes.items()}
    write_checkpoint(root / "training_checkpoints" / "best_ckpt_mp0.tar", weights, config, style=style)
    return root


def write_checkpoint(path: Path, weights: dict[str, torch.Tensor], config: dict[str, Any], *,
                     style: Literal["makani-v0.1", "hens-conversion"]) -> None:
    """Save ``weights`` as makani v0.1 training did, or as the Huge Ensembles conversion did."""
    if style == "makani-v0.1":
        # DistributedDataParallel's state_dict: "module." keys, an OrderedDict with _metadata
        state = OrderedDict(("module." + k, v) for k, v in weights.items())
        state._metadata = OrderedDict((k.rsplit(".", 1)[0], {"version": 1}) for k in state)  # type: ignore[attr-defined]
        optimizer = {"state": {0: {"step": torch.tensor(10.0), "exp_avg": torch.zeros(2)}},
                     "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0,
                                       "amsgrad": False, "foreach": None, "params": [0]}]}
        with fake_makani():
            payload = {"iters": 1000, "epoch": 70, "model_state": state, "optimizer_state_dict": optimizer,
                       "params": make_params(YParams, config),
                       "scheduler_state_dict": {"T_max": 70, "eta_min": 0, "base_lrs": [1e-3], "last_epoch": 70}}
            torch.save(payload, path)
    else:
        state = OrderedDict(weights.items())
        with fake_makani():
            payload = {"iters": None, "epoch": None, "model_state": state, "params": make_params(ParamsBase, config)}
            torch.save(payload, path, _use_new_zipfile_serialization=False)


def tar_package(folder: Path, out: Path, *, top_folder: bool = True) -> Path:
    """``out``: a tar of ``folder``, its files inside one top-level folder or at the top."""
    with tarfile.open(out, "w") as tar:
        if top_folder:
            tar.add(folder, arcname=folder.name)
        else:
            for item in sorted(folder.iterdir()):
                tar.add(item, arcname=item.name)
    return out
