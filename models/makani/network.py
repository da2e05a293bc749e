"""A published SFNO package as hens' own network: its parameters -> :class:`SFNOConfig`, its
state dict -> hens parameter names (docs/packages.md).

The packages' ``config.json`` holds the keyword arguments of makani's SFNO constructor; keys
it omits take that constructor's defaults (``big_skip`` True, ``use_mlp`` True, one encoder
layer, ``hard_thresholding_fraction`` 1). hens accepts exactly the options it reproduces and
names any other value in one error line, rather than running a different network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from hens.forecast.errors import CheckpointError
from hens.models.sfno.network import SFNOConfig

#: option -> (default when absent, values hens reproduces)
_SUPPORTED: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "nettype": (None, ("SFNO", "sfno")),
    "spectral_transform": ("sht", ("sht",)),
    "filter_type": ("linear", ("linear",)),
    "operator_type": ("dhconv", ("dhconv",)),
    "model_grid_type": ("equiangular", ("equiangular",)),
    "sht_grid_type": ("legendre-gauss", ("legendre-gauss",)),
    "use_mlp": (True, (True,)),
    "mlp_mode": ("serial", ("serial",)),
    "pos_embed": ("none", ("none", "None", None)),
    "encoder_layers": (1, (1,)),
    "encoder_ratio": (1, (1, 1.0)),
    "decoder_ratio": (1, (1, 1.0)),
    "big_skip": (True, (True,)),
    "separable": (False, (False,)),
    "rank": (1.0, (1, 1.0)),
    "bias": (False, (False,)),
    "max_modes": (None, (None,)),
    "target": ("default", ("default",)),
    "n_history": (0, (0,)),
    "history_normalization_mode": ("none", ("none",)),
    "normalization_layer": ("instance_norm", ("instance_norm", "layer_norm", "none")),
    "activation_function": ("gelu", ("gelu", "silu")),
}
_NORMS = {"instance_norm": "instance", "layer_norm": "layer", "none": "none"}


def _option(params: Mapping[str, Any], name: str) -> Any:
    default, allowed = _SUPPORTED[name]
    value = params.get(name, default)
    if value not in allowed:
        raise CheckpointError(
            f"package option {name}={value!r} is not supported by hens (supported: "
            f"{', '.join(repr(a) for a in allowed)})"
        )
    return value


def sfno_config(params: Mapping[str, Any], *, grid: str, in_channels: int, out_channels: int) -> SFNOConfig:
    """hens' :class:`SFNOConfig` of the network a package's parameters describe.

    Parameters
    ----------
    params
        The package's ``config.json``.
    grid
        hens grid spec of the data (``"721x1440:equiangular"``).
    in_channels, out_channels
        Network input (state + zenith + static fields) and output (state) channels.
    """
    for name in _SUPPORTED:
        _option(params, name)
    if params.get("N_in_channels") not in (None, in_channels):
        raise CheckpointError(
            f"package N_in_channels={params['N_in_channels']} but its inputs make {in_channels} channels"
        )
    try:
        scale = int(params.get("scale_factor", 8))
        embed = int(params["embed_dim"])
        layers = int(params["num_layers"])
        fraction = float(params.get("hard_thresholding_fraction", 1.0))
        probe = SFNOConfig(in_channels, out_channels, grid=grid, scale_factor=scale, embed_dim=embed, num_layers=1)
        internal = probe.internal_grid
        return SFNOConfig(
            in_channels, out_channels, grid=grid, embed_dim=embed, num_layers=layers, scale_factor=scale,
            # torch-harmonics truncates triangularly: lmax = mmax = min(modes_lat, modes_lon)
            lmax=min(int(internal.nlat * fraction), int((internal.nlon // 2 + 1) * fraction)),
            mlp_ratio=float(params.get("mlp_ratio", 2.0)), encoder_layers=1, decoder_layers=1,
            norm=_NORMS[_option(params, "normalization_layer")], inner_skip="none", outer_skip="linear",
            big_skip=True, activation=_option(params, "activation_function"), layout="makani",
        )
    except KeyError as err:
        raise CheckpointError(f"package config.json lacks {err}") from None
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"package config.json has an invalid value: {err}") from None


# makani parameter name -> hens parameter name (block index kept)
_RENAMES = (
    (r"model\.encoder\.fwd\.0\.(weight|bias)", r"encoder.hidden.0.\1"),
    (r"model\.encoder\.fwd\.2\.weight", r"encoder.out.weight"),
    (r"model\.decoder\.fwd\.0\.(weight|bias)", r"decoder.hidden.0.\1"),
    (r"model\.decoder\.fwd\.2\.weight", r"decoder.out.weight"),
    (r"model\.residual_transform\.weight", r"big_skip.weight"),
    (r"model\.blocks\.(\d+)\.filter\.filter\.weight", r"blocks.\1.conv.weight"),
    (r"model\.blocks\.(\d+)\.norm0\.(weight|bias)", r"blocks.\1.norm.\2"),
    (r"model\.blocks\.(\d+)\.norm1\.(weight|bias)", r"blocks.\1.post_norm.\2"),
    (r"model\.blocks\.(\d+)\.mlp\.fwd\.0\.(weight|bias)", r"blocks.\1.mlp.hidden.0.\2"),
    (r"model\.blocks\.(\d+)\.mlp\.fwd\.3\.(weight|bias)", r"blocks.\1.mlp.out.\2"),
    (r"model\.blocks\.(\d+)\.outer_skip\.weight", r"blocks.\1.outer_skip.weight"),
)


def _rename(key: str) -> str:
    for pattern, target in _RENAMES:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, target, key)
    raise CheckpointError(f"package weight {key!r} has no place in hens' SFNO")


def hens_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A package's weights under hens' names and shapes.

    1x1 convolutions ``(O, I, 1, 1)`` become linear weights ``(O, I)``; filters, stored
    ``(in, out, l)`` (optionally with a leading group axis of 1), become hens' ``(out, in, l)``.
    All are views of the package's tensors: loading copies them once into the model (a HENS
    package's filters are 8.9 GB).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = _rename(key)
        if name.endswith("conv.weight"):
            w = value[0] if value.ndim == 4 else value
            value = w.permute(1, 0, 2)
        elif value.ndim == 4:
            if value.shape[2:] != (1, 1):
                raise CheckpointError(f"package weight {key} has shape {tuple(value.shape)}, expected a 1x1 kernel")
            value = value[:, :, 0, 0]
        out[name] = value
    return out
