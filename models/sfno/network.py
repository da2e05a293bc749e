"""hens' Spherical Fourier Neural Operator (Bonev et al. 2023), grid-agnostic.

    x (B, C_in, H, W) -> encoder (point-wise MLP) [+ position embedding]
      -> K blocks: spectral conv (block 0: data grid -> internal grid, block K-1: back)
                   layout "hens":   -> norm [+ inner skip] -> MLP [+ outer skip]
                   layout "makani": -> norm0 -> activation -> MLP -> norm1 [+ outer skip]
      -> decoder (point-wise MLP) [+ big skip: linear map of x]  -> y (B, C_out, H, W)

The internal grid is Legendre-Gauss, ``(nlat // scale_factor) x (nlon // scale_factor)``;
all blocks share one triangular truncation ``lmax = mmax`` (default ``min(h, w // 2)``, as
torch-harmonics' example SFNO) and at most three transforms (data grid, internal grid), each
built once and shared. The makani layout is the
block of NVIDIA's makani SFNO (docs/packages.md): with it hens runs the published weights. Weights follow models.md: ``N(0, gain / fan_in)``, gain 2 before an
activation, halved for each active skip path. The network is a pure function of its input:
no dropout, no randomness.

Reference: Bonev B. et al., "Spherical Fourier Neural Operators: Learning Stable Dynamics on
the Sphere", ICML 2023, arXiv:2306.03838.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hens.forecast.errors import ConfigError, DataError
from hens.forecast.grids import Grid, parse_grid
from hens.forecast.types import check_choice
from hens.models.sfno.layers import ACTIVATIONS, BlockNormLayer, SpectralConv, SphericalTransform, linear, mlp
from hens.models.types import Activation, BlockLayout, BlockNorm, PosEmbed, Skip


@dataclass(frozen=True)
class SFNOConfig:
    """Architecture of an :class:`SFNO`; plain values only (goes into checkpoints as a dict).

    Attributes
    ----------
    in_channels, out_channels
        Channels of input and output fields.
    grid
        Data grid spec, e.g. ``"32x64"`` (Legendre-Gauss) or ``"721x1440:equiangular"``.
    embed_dim
        Width E of the latent fields.
    num_layers
        Number of spectral blocks K (>= 1).
    scale_factor
        Internal grid = data grid // scale_factor (Legendre-Gauss).
    lmax
        Triangular truncation of every transform; ``None``: ``min(h, w // 2)``.
    mlp_ratio
        Hidden width of block MLPs = ``mlp_ratio * embed_dim``.
    encoder_layers, decoder_layers
        Hidden layers (width E) of the point-wise encoder and decoder MLPs.
    pos_embed
        ``"none"``, ``"learnable lat"`` (E x H) or ``"learnable latlon"`` (E x H x W).
    norm
        Block normalisation after the spectral convolution: ``"none"``, ``"layer"``, ``"instance"``.
    inner_skip, outer_skip
        Skip around the spectral convolution / around the block: ``"none"``, ``"identity"``,
        ``"linear"``.
    big_skip
        Add a linear map of the input to the decoder output.
    activation
        ``"gelu"`` or ``"silu"``.
    cond_dim
        Channels of an optional conditioning field; > 0 turns every block norm into a
        conditional layer norm (requires ``norm="layer"``).
    layout
        Block layout, ``"hens"`` or ``"makani"`` (module docstring). The makani block has no
        inner skip, biases on its MLP output and a second norm after the MLP.
    """

    in_channels: int
    out_channels: int
    grid: str = "32x64"
    embed_dim: int = 64
    num_layers: int = 4
    scale_factor: int = 1
    lmax: int | None = None
    mlp_ratio: float = 2.0
    encoder_layers: int = 1
    decoder_layers: int = 1
    pos_embed: PosEmbed = "none"
    norm: BlockNorm = "none"
    inner_skip: Skip = "none"
    outer_skip: Skip = "identity"
    big_skip: bool = True
    activation: Activation = "gelu"
    cond_dim: int = 0
    layout: BlockLayout = "hens"

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "embed_dim", "num_layers", "scale_factor"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"SFNO {name}={getattr(self, name)} must be >= 1")
        for name in ("encoder_layers", "decoder_layers", "cond_dim"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"SFNO {name}={getattr(self, name)} must be >= 0")
        if self.mlp_ratio <= 0:
            raise ConfigError(f"SFNO mlp_ratio={self.mlp_ratio} must be > 0")
        check_choice("pos_embed", self.pos_embed, PosEmbed)
        check_choice("norm", self.norm, BlockNorm)
        check_choice("inner_skip", self.inner_skip, Skip)
        check_choice("outer_skip", self.outer_skip, Skip)
        check_choice("activation", self.activation, Activation)
        check_choice("layout", self.layout, BlockLayout)
        if self.layout == "makani" and (self.inner_skip != "none" or self.cond_dim > 0):
            raise ConfigError("SFNO layout 'makani' has no inner skip and no conditional norm")
        if self.cond_dim > 0 and self.norm != "layer":
            raise ConfigError("SFNO cond_dim > 0 (conditional layer norm) needs norm='layer'")
        data = self.data_grid
        data.sht_grid  # raises GridMismatch for grids without an SHT
        internal = self.internal_grid
        limit = min(internal.nlat, internal.nlon // 2 + 1)
        if self.lmax is not None and not 1 <= self.lmax <= limit:
            raise ConfigError(
                f"SFNO lmax={self.lmax} is outside 1..{limit} for internal grid {internal.spec}"
            )

    @property
    def data_grid(self) -> Grid:
        return parse_grid(self.grid)

    @property
    def internal_grid(self) -> Grid:
        data = self.data_grid
        h, w = data.nlat // self.scale_factor, data.nlon // self.scale_factor
        if h < 2 or w < 4:
            raise ConfigError(
                f"SFNO scale_factor={self.scale_factor} leaves a {h}x{w} internal grid for {data.spec}"
            )
        return Grid(h, w, "legendre-gauss")

    @property
    def truncation(self) -> int:
        """The ``lmax = mmax`` every transform uses."""
        internal = self.internal_grid
        return self.lmax if self.lmax is not None else min(internal.nlat, internal.nlon // 2)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (checkpoint-safe: str, int, float, bool, None)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SFNOConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown SFNO config keys: {', '.join(unknown)}")
        return cls(**values)


class SFNOBlock(nn.Module):
    """One block in layout ``cfg.layout`` (module docstring) on ``(K, N, B, E)`` activations."""

    def __init__(self, t_in: SphericalTransform, t_out: SphericalTransform, cfg: SFNOConfig) -> None:
        super().__init__()
        dim = cfg.embed_dim
        makani = cfg.layout == "makani"
        gain = 2.0 if cfg.inner_skip == "none" else 1.0  # the conv feeds the MLP's activation
        self.conv = SpectralConv(t_in, t_out, dim, dim, gain=gain)
        self.norm = BlockNormLayer(dim, cfg.norm, cond_dim=cfg.cond_dim)
        self.inner_skip = _skip(cfg.inner_skip, dim, gain)
        self.act = ACTIVATIONS[cfg.activation]() if makani else None
        out_gain = 1.0 if cfg.outer_skip == "none" else 0.5
        self.mlp = mlp(
            dim, int(cfg.mlp_ratio * dim) if makani else int(round(cfg.mlp_ratio * dim)), dim,
            hidden_layers=1, activation=cfg.activation, gain=out_gain, out_bias=makani,
        )
        self.post_norm = BlockNormLayer(dim, cfg.norm) if makani else None
        self.outer_skip = _skip(cfg.outer_skip, dim, out_gain)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        y, residual = self.conv(x)
        y = self.norm(y, cond)
        if self.inner_skip is not None:
            y = y + self.inner_skip(residual)
        if self.act is not None:
            y = self.act(y)
        y = self.mlp(y)
        if self.post_norm is not None:
            y = self.post_norm(y)
        if self.outer_skip is not None:
            y = add_to_fresh(y, self.outer_skip(residual))
        return y


def add_to_fresh(y: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``y + other``, in place when nothing records (``y`` is a layer's fresh output): a new
    multi-MB activation costs more than the addition itself on the CPU."""
    return y + other if torch.is_grad_enabled() else y.add_(other)


def _skip(kind: str, dim: int, gain: float) -> nn.Module | None:
    if kind == "none":
        return None
    return nn.Identity() if kind == "identity" else linear(dim, dim, gain=gain, bias=False)


class SFNO(nn.Module):
    """Spherical Fourier Neural Operator on ``cfg.grid``: ``(B, C_in, H, W) -> (B, C_out, H, W)``.

    Latitude north first, as everywhere in hens. ``forward(x, cond)`` takes an optional
    conditioning field pair ``(on data grid (B, D, H, W), on internal grid (B, D, h, w))``
    when ``cfg.cond_dim > 0``.
    """

    def __init__(self, cfg: SFNOConfig) -> None:
        super().__init__()
        self.cfg = cfg
        data, internal, lmax = cfg.data_grid, cfg.internal_grid, cfg.truncation
        self.t_data = SphericalTransform(data, lmax, lmax)
        self.t_internal = self.t_data if internal == data else SphericalTransform(internal, lmax, lmax)
        dim = cfg.embed_dim
        self.encoder = mlp(
            cfg.in_channels, dim, dim,
            hidden_layers=cfg.encoder_layers, activation=cfg.activation, gain=1.0, out_bias=False,
        )
        if cfg.pos_embed == "none":
            self.pos_embed = None
        else:
            width = data.nlon if cfg.pos_embed == "learnable latlon" else 1
            self.pos_embed = nn.Parameter(0.02 * torch.randn(data.nlat, width, 1, dim))
        last = cfg.num_layers - 1
        self.blocks = nn.ModuleList(
            SFNOBlock(
                self.t_data if i == 0 else self.t_internal,
                self.t_data if i == last else self.t_internal,
                cfg,
            )
            for i in range(cfg.num_layers)
        )
        out_gain = 0.5 if cfg.big_skip else 1.0
        self.decoder = mlp(
            dim, dim, cfg.out_channels,
            hidden_layers=cfg.decoder_layers, activation=cfg.activation, gain=out_gain, out_bias=False,
        )
        self.big_skip = (
            linear(cfg.in_channels, cfg.out_channels, gain=out_gain, bias=False) if cfg.big_skip else None
        )

    def _check_input(self, x: torch.Tensor) -> None:
        grid = self.cfg.data_grid
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels or tuple(x.shape[-2:]) != grid.shape:
            raise DataError(
                f"SFNO expects (batch, {self.cfg.in_channels}, {grid.nlat}, {grid.nlon}) on grid "
                f"{grid.spec}, got {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor, cond: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        self._check_input(x)
        h = x.permute(2, 3, 0, 1)  # grid-major (K, N, B, C)
        z = self.encoder(h)
        if self.pos_embed is not None:
            z = add_to_fresh(z, self.pos_embed)
        cond_data = cond_internal = None
        if self.cfg.cond_dim > 0:
            if cond is None or len(cond) != 2:
                raise ValueError("this SFNO is conditional: pass cond=(on data grid, on internal grid)")
            cond_data, cond_internal = (c.permute(2, 3, 0, 1) for c in cond)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            z = block(z, cond_data if i == last else cond_internal)
        y = self.decoder(z)
        if self.big_skip is not None:
            y = add_to_fresh(y, self.big_skip(h))
        return y.permute(2, 3, 0, 1).contiguous()


def parameter_bytes(cfg: SFNOConfig) -> int:
    """Bytes of the float32/complex64 parameters of ``SFNO(cfg)``, counted without building it."""
    e, c_in, c_out = cfg.embed_dim, cfg.in_channels, cfg.out_channels

    def point_mlp(dims: list[int], out: int, out_bias: bool) -> int:
        hidden = sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))
        return hidden + dims[-1] * out + (out if out_bias else 0)

    makani = cfg.layout == "makani"
    width = int(cfg.mlp_ratio * e) if makani else int(round(cfg.mlp_ratio * e))
    norm = (cfg.cond_dim * 2 * e + 2 * e) if cfg.cond_dim > 0 else (0 if cfg.norm == "none" else 2 * e)
    block = (2 * e * e * cfg.truncation + norm + point_mlp([e, width], e, makani)
             + (norm if makani else 0)
             + sum(e * e for skip in (cfg.inner_skip, cfg.outer_skip) if skip == "linear"))
    grid = cfg.data_grid
    pos = {"none": 0, "learnable lat": grid.nlat * e, "learnable latlon": grid.nlat * grid.nlon * e}[cfg.pos_embed]
    reals = (point_mlp([c_in] + [e] * cfg.encoder_layers, e, False) + pos + cfg.num_layers * block
             + point_mlp([e] + [e] * cfg.decoder_layers, c_out, False) + (c_in * c_out if cfg.big_skip else 0))
    return 4 * reals


def parameter_count(model: nn.Module) -> tuple[int, int]:
    """``(numel, real degrees of freedom)``: complex weights count once, resp. twice."""
    numel = sum(p.numel() for p in model.parameters())
    real = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    return numel, real
