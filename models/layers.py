"""Building blocks of hens' SFNO: spherical transforms, spectral convolution, point-wise layers.

Layout. Inside the network activations are kept **grid-major**, ``(lat, lon, batch, channel)``
(``(K, N, B, E)``), not ``(B, E, K, N)``. Every step is then a GEMM on contiguous or
GEMM-compatible strided memory:

* point-wise MLPs are ``F.linear`` on the last dim (one GEMM of ``(K N B) x E``);
* the longitude transform is a matrix DFT ``(2M x N) @ (N x B E)`` per latitude -- for an
  ``n x 2n`` grid it costs the same order, O(n^3), as the Legendre step, and it keeps the
  layout (an FFT along a non-innermost dim transposes internally);
* the Legendre transforms are batched over ``m`` on strided views (no copy);
* the spectral convolution is one real GEMM per degree ``l``: ``[Re | Im]`` rows times
  ``[[Wr, Wi], [-Wi, Wr]]`` equals the complex product.

Only two block copies (chunks of ``B E`` floats) remain per convolution. The Legendre tables
(quadrature-weighted associated Legendre functions, orthonormal, Condon-Shortley phase) come
from torch-harmonics' ``RealSHT``/``InverseRealSHT``; tests check the transforms against them.
Transforms run in the dtype of their tables (float32 unless the module is converted with
``.double()``) with autocast disabled.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hens.forecast.grids import Grid
from hens.models.types import Activation, BlockNorm

#: point-wise non-linearities by name (nn.GELU: the exact, erf form)
ACTIVATIONS = {"gelu": nn.GELU, "silu": nn.SiLU}


@lru_cache(maxsize=8)
def legendre_tables(grid: Grid, lmax: int, mmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 Legendre tables of ``grid`` from torch-harmonics, orthonormal SHT.

    Returns
    -------
    forward : torch.Tensor
        ``(mmax, lmax, nlat)``: ``P_lm(cos theta_k) * w_k`` (quadrature weight folded in).
    inverse : torch.Tensor
        ``(mmax, nlat, lmax)``: ``P_lm(cos theta_k)``.

    Cached: callers must not modify the returned tensors.
    """
    from torch_harmonics import InverseRealSHT, RealSHT

    kwargs = dict(lmax=lmax, mmax=mmax, grid=grid.sht_grid, norm="ortho", csphase=True)
    fwd = RealSHT(grid.nlat, grid.nlon, **kwargs).weights.to(torch.float64)
    inv = InverseRealSHT(grid.nlat, grid.nlon, **kwargs).pct.to(torch.float64)
    assert fwd.shape == (mmax, lmax, grid.nlat) and inv.shape == (mmax, grid.nlat, lmax)
    return fwd, inv


def dft_matrices(nlon: int, mmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real DFT matrices of torch-harmonics' longitude transform, float64.

    ``forward`` ``(2 mmax, nlon)``, rows ordered ``(m, re/im)``: ``2 pi rfft(x, norm="forward")``.
    ``inverse`` ``(nlon, 2 mmax)``: ``irfft(c, n=nlon, norm="forward")`` (the imaginary
    parts of ``m = 0`` and of the Nyquist mode are ignored, as irfft does).
    """
    m = np.arange(mmax, dtype=np.float64)[:, None]
    phase = 2.0 * np.pi * m * np.arange(nlon, dtype=np.float64)[None, :] / nlon
    forward = np.stack([np.cos(phase), -np.sin(phase)], axis=1) * (2.0 * np.pi / nlon)
    mult = np.full((mmax, 1), 2.0)
    mult[0] = 1.0
    if nlon % 2 == 0 and mmax > nlon // 2:
        mult[nlon // 2] = 1.0
    inverse = np.stack([np.cos(phase) * mult, -np.sin(phase) * mult], axis=1)
    inverse[0, 1] = 0.0
    if nlon % 2 == 0 and mmax > nlon // 2:
        inverse[nlon // 2, 1] = 0.0
    return (
        torch.from_numpy(forward.reshape(2 * mmax, nlon)),
        torch.from_numpy(inverse.reshape(2 * mmax, nlon).T.copy()),
    )


class SphericalTransform(nn.Module):
    """Orthonormal real SHT and its inverse on one grid, in hens' grid-major layout.

    Parameters
    ----------
    grid
        A grid with an SHT (Legendre-Gauss or equiangular).
    lmax, mmax
        Truncation: degrees ``l < lmax``, orders ``m < mmax`` (``mmax <= nlon // 2 + 1``).

    Spectral tensors are real with a re/im axis: :meth:`analysis` returns ``(M, L, 2, B, E)``
    (order-major), :meth:`synthesis` takes ``(L, M, B, 2, E)`` (degree-major); coefficients
    with ``m > l`` are zero on output and ignored on input.
    """

    def __init__(self, grid: Grid, lmax: int, mmax: int) -> None:
        super().__init__()
        if not 1 <= mmax <= grid.nlon // 2 + 1 or lmax < 1:
            raise ValueError(f"bad truncation lmax={lmax}, mmax={mmax} for grid {grid.spec}")
        self.grid, self.lmax, self.mmax = grid, lmax, mmax
        fwd, inv = legendre_tables(grid, lmax, mmax)
        dft, idft = dft_matrices(grid.nlon, mmax)
        self.register_buffer("leg", fwd.float(), persistent=False)  # (M, L, K)
        self.register_buffer("ileg", inv.float(), persistent=False)  # (M, K, L)
        self.register_buffer("dft", dft.float(), persistent=False)  # (2M, N)
        self.register_buffer("idft", idft.float(), persistent=False)  # (N, 2M)

    def extra_repr(self) -> str:
        return f"grid={self.grid.spec}, lmax={self.lmax}, mmax={self.mmax}"

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """``(K, N, B, E)`` grid values -> ``(M, L, 2, B, E)`` coefficients."""
        k, n, b, e = x.shape
        x = x.to(self.dft.dtype)
        f = torch.matmul(self.dft, x.reshape(k, n, b * e))  # (K, 2M, BE), rows (m, re/im)
        f = f.view(k, self.mmax, 2 * b * e).transpose(0, 1)  # (M, K, 2BE) strided, no copy
        return torch.bmm(self.leg, f).view(self.mmax, self.lmax, 2, b, e)

    def synthesis(self, y: torch.Tensor) -> torch.Tensor:
        """``(L, M, B, 2, E)`` coefficients -> ``(K, N, B, E)`` grid values."""
        l, m, b, _, e = y.shape
        y = y.reshape(l, m, b * 2 * e).transpose(0, 1)  # (M, L, 2BE) strided, no copy
        z = torch.bmm(self.ileg, y.to(self.ileg.dtype)).view(m, self.grid.nlat, b, 2, e)
        z = z.permute(1, 0, 3, 2, 4).reshape(self.grid.nlat, 2 * m, b * e)  # copy of E-blocks
        return torch.matmul(self.idft, z).view(self.grid.nlat, self.grid.nlon, b, e)


def degree_major(s: torch.Tensor) -> torch.Tensor:
    """``(M, L, 2, B, E)`` -> contiguous ``(L, M, B, 2, E)`` (the one copy before mixing)."""
    return s.permute(1, 0, 3, 2, 4).contiguous()


class SpectralConv(nn.Module):
    """Driscoll-Healy spherical convolution: ``y_lm = sum_i W[o, i, l] x_lm`` (weights per degree).

    ``forward`` maps ``(K, N, B, E_in)`` on ``t_in``'s grid to ``(K, N, B, E_out)`` on
    ``t_out``'s grid and also returns the input resampled to the output grid
    (``ISHT_out(SHT_in(x))``, or ``x`` itself when the grids agree) for the skip branch.
    ``weight`` is complex, ``(E_out, E_in, L)``, initialised ``N(0, gain / E_in)``.
    """

    def __init__(
        self, t_in: SphericalTransform, t_out: SphericalTransform, in_dim: int, out_dim: int, *, gain: float
    ) -> None:
        super().__init__()
        if (t_in.lmax, t_in.mmax) != (t_out.lmax, t_out.mmax):
            raise ValueError("input and output transforms must share their truncation")
        self.t_in, self.t_out = t_in, t_out
        scale = math.sqrt(gain / in_dim)
        self.weight = nn.Parameter(scale * torch.randn(out_dim, in_dim, t_in.lmax, dtype=torch.complex64))
        self.resample = t_in.grid != t_out.grid

    def block_weight(self) -> torch.Tensor:
        """Real ``(L, 2 E_in, 2 E_out)`` matrix ``[[Wr, Wi], [-Wi, Wr]]`` per degree."""
        w = self.weight.permute(2, 1, 0)  # (L, I, O)
        wr, wi = w.real, w.imag
        return torch.cat([torch.cat([wr, wi], -1), torch.cat([-wi, wr], -1)], 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, n, b, e = x.shape
        dtype = x.dtype
        with torch.autocast(device_type=x.device.type, enabled=False):
            s = degree_major(self.t_in.analysis(x))  # (L, M, B, 2, E)
            lmax, mmax = s.shape[:2]
            w = self.block_weight()
            y = torch.bmm(s.view(lmax, mmax * b, 2 * e), w.to(s.dtype))
            y = self.t_out.synthesis(y.view(lmax, mmax, b, 2, w.shape[-1] // 2))
            residual = self.t_out.synthesis(s) if self.resample else x
        return y.to(dtype), residual.to(dtype)


def linear(in_dim: int, out_dim: int, *, gain: float, bias: bool) -> nn.Linear:
    """``nn.Linear`` with weights ``N(0, gain / in_dim)`` and zero bias (models.md section 1)."""
    layer = nn.Linear(in_dim, out_dim, bias=bias)
    nn.init.normal_(layer.weight, std=math.sqrt(gain / in_dim))
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


class PointwiseMLP(nn.Module):
    """Point-wise MLP on the last dim: ``hidden_layers`` x (linear + activation), then linear.

    Hidden layers get gain 2 (they feed the activation), the output layer ``gain``. Without
    autograd (inference) rows are processed in chunks of about 1 MB of hidden activations:
    the hidden tensor stays in cache and no large temporary is allocated (on CPU a fresh
    multi-MB tensor costs page faults on first touch, more than the GEMM itself).
    """

    _CHUNK_FLOATS = 1 << 18

    def __init__(
        self, in_dim: int, hidden_dim: int, out_dim: int, *, hidden_layers: int, activation: Activation,
        gain: float, out_bias: bool,
    ) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * hidden_layers
        self.hidden = nn.ModuleList(linear(a, b, gain=2.0, bias=True) for a, b in zip(dims[:-1], dims[1:]))
        self.out = linear(dims[-1], out_dim, gain=gain, bias=out_bias)
        self.act = ACTIVATIONS[activation]()
        self.out_dim = out_dim

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = self.act(layer(x))
        return self.out(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = max([self.out_dim, x.shape[-1]] + [layer.out_features for layer in self.hidden])
        rows = x.numel() // x.shape[-1]
        chunk = max(1, self._CHUNK_FLOATS // width)
        if torch.is_grad_enabled() or rows <= chunk:
            return self._rows(x)
        flat = x.reshape(rows, x.shape[-1])
        out = torch.empty(rows, self.out_dim, dtype=x.dtype, device=x.device)
        for start in range(0, rows, chunk):
            out[start : start + chunk] = self._rows(flat[start : start + chunk])
        return out.view(*x.shape[:-1], self.out_dim)


def mlp(
    in_dim: int, hidden_dim: int, out_dim: int, *, hidden_layers: int, activation: Activation, gain: float,
    out_bias: bool,
) -> PointwiseMLP:
    """A :class:`PointwiseMLP` (models.md initialisation)."""
    return PointwiseMLP(
        in_dim, hidden_dim, out_dim, hidden_layers=hidden_layers, activation=activation, gain=gain, out_bias=out_bias
    )


class BlockNormLayer(nn.Module):
    """Normalisation of ``(K, N, B, E)`` activations, optionally conditioned on a field.

    ``"layer"`` normalises over channels at each grid point, ``"instance"`` each channel over
    the grid (unweighted, as torch-harmonics), ``"none"`` is the identity. With ``cond_dim > 0``
    it is a conditional layer norm (AIFS-CRPS, anemoi): ``(1 + gamma(c)) * LN(x) + beta(c)``
    with ``gamma``, ``beta`` linear in the conditioning field ``c`` ``(K, N, B, cond_dim)`` and
    initialised to zero, so it starts as a plain layer norm.
    """

    def __init__(self, dim: int, kind: BlockNorm, *, cond_dim: int = 0, eps: float = 1e-6) -> None:
        super().__init__()
        self.kind, self.eps, self.cond_dim = kind, eps, cond_dim
        if cond_dim > 0:
            self.film = nn.Linear(cond_dim, 2 * dim)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        elif kind != "none":
            self.weight = nn.Parameter(torch.ones(dim))
            self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond_dim > 0:
            if cond is None:
                raise ValueError("this block norm is conditional: pass the conditioning field")
            gamma, beta = self.film(cond).chunk(2, dim=-1)
            return torch.addcmul(beta, F.layer_norm(x, x.shape[-1:], eps=self.eps), 1.0 + gamma)
        if self.kind == "layer":
            return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)
        if self.kind == "instance":
            var, mean = torch.var_mean(x, dim=(0, 1), unbiased=False, keepdim=True)
            return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias
        return x
