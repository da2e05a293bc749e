"""A published SFNO package as a hens :class:`~hens.models.checkpoint.Checkpoint`: its network
(:mod:`hens.models.makani.network`), static inputs (:mod:`hens.models.makani.static_fields`)
and statistics, checked against the options hens reproduces (docs/packages.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hens import __version__
from hens.forecast.errors import CheckpointError, HensError
from hens.forecast.types import HOURS_PER_STEP
from hens.models.checkpoint import Checkpoint, CheckpointHeader
from hens.models.makani.archive import is_package
from hens.models.makani.files import read_package
from hens.models.makani.network import hens_state_dict, sfno_config
from hens.models.makani.static_fields import static_fields
from hens.models.safe_unpickle import first_line
from hens.models.sfno.network import SFNO, SFNOConfig, parameter_bytes

__all__ = ["is_package", "package_checkpoint", "package_header"]


def _package_network(files: Any) -> tuple[SFNOConfig, tuple[str, ...], torch.Tensor]:
    """The network config, forcings and static fields of a read package."""
    params = files.params
    unsupported = [k for k in ("add_soiltype", "add_copernicus_emb", "normalize_static_features", "add_noise")
                   if params.get(k)]
    if params.get("add_grid") and params.get("gridtype", "sinusoidal") != "sinusoidal":
        unsupported.append(f"gridtype={params.get('gridtype')}")
    if params.get("add_cos_to_grid"):
        unsupported.append("add_cos_to_grid")
    if params.get("data_grid_type", "equiangular") != params.get("model_grid_type", "equiangular"):
        unsupported.append(f"data_grid_type={params.get('data_grid_type')}")
    if params.get("add_landmask") and params.get("landmask_preprocessing", "floor") != "floor":
        unsupported.append(f"landmask_preprocessing={params.get('landmask_preprocessing')}")
    if unsupported:
        raise CheckpointError(f"package {files.path.name} uses {', '.join(unsupported)}, which hens does not support")
    forcings = ("cos_zenith",) if params.get("add_zenith") else ()
    static = static_fields(
        *files.grid.shape, grid_frequencies=int(params.get("grid_num_frequencies", 1)) if params.get("add_grid") else 0,
        orography=files.orography if params.get("add_orography") else None,
        land_mask=files.land_mask if params.get("add_landmask") else None,
        lat=params.get("lat"), lon=params.get("lon"),
    )
    n = len(files.channels)
    cfg = sfno_config(params, grid=files.grid.spec, in_channels=n + len(forcings) + static.shape[0], out_channels=n)
    return cfg, forcings, static


def package_checkpoint(path: Path, map_location: str | torch.device) -> Checkpoint:
    """A published makani package (docs/packages.md) as a :class:`~hens.models.checkpoint.Checkpoint`.

    Raises
    ------
    CheckpointError
        One line: a package hens cannot read, another step than hens' or an unsupported option.
    """
    files = read_package(path)
    if files.step_hours != HOURS_PER_STEP:
        raise CheckpointError(f"package {path} steps {files.step_hours} h; hens ensembles step {HOURS_PER_STEP} h")
    try:
        cfg, forcings, static = _package_network(files)
    except (HensError, ValueError) as err:
        raise CheckpointError(f"package {path}: {first_line(err)}") from None
    model = SFNO(cfg)
    try:
        model.load_state_dict(hens_state_dict(files.state_dict), strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"package {path}: weights do not fit its config.json ({first_line(err)})") from None
    model.to(map_location).eval()
    return Checkpoint(
        path=path, kind="sfno", config=cfg.to_dict(), channels=files.channels, grid=files.grid,
        mean=torch.as_tensor(files.mean, dtype=torch.float64), std=torch.as_tensor(files.std, dtype=torch.float64),
        tendency_std=None, seed=None, data_sha256=None, hens_version=__version__, sha256=files.weights_sha256,
        model=model, extra={"package_style": files.style, "step_hours": files.step_hours}, forcings=forcings,
        origin="makani-package", output="state", static=static,
    )


def package_header(path: Path) -> CheckpointHeader:
    """A package's :class:`~hens.models.checkpoint.CheckpointHeader`, from its config.json and
    statistics; its parameter bytes are counted from its config, its weights are not read."""
    files = read_package(path, weights=False)
    cfg, _, _ = _package_network(files)
    return CheckpointHeader(path, files.channels, files.grid, "sfno", cfg.to_dict(), parameter_bytes(cfg))
