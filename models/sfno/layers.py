"""Building blocks of hens' SFNO: spherical transforms, spectral convolution, point-wise layers.

Layout. Inside the network activations are kept **grid-major**, ``(lat, lon, batch, channel)``
(``(K, N, B, E)``), not ``(B, E, K, N)``. Every step is then a GEMM on contiguous or
GEMM-compatible strided memory:

* point-wise MLPs are ``F.linear`` on the last dim (one GEMM of ``(K N B) x E``);
* the longitude transform is ``torch.fft.rfft``/``irfft`` along the ``N`` dim, or, on CPU for
  small grids (``nlon < RFFT_MIN_NLON_CPU``), a matrix DFT ``(2M x N) @ (N x B E)`` per latitude,
  which is faster there (measured: benchmarks/results/sfno_paths_*.csv); CUDA always uses rfft;
* the Legendre transforms are batched over ``m`` on strided views (no copy);
* spectral coefficients are real tensors with a trailing re/im axis, ``(..., E, 2)``
  (``torch.view_as_complex`` views), and the spectral convolution is one complex GEMM per
  degree ``l`` on the weight itself: the weight parameter is stored ``(L, I, O)``-major, so
  the contraction reads it without a copy or a rebuilt real block matrix.

Only two block copies (chunks of ``B E`` floats) remain per convolution. The Legendre tables
(quadrature-weighted associated Legendre functions, orthonormal, Condon-Shortley phase) come
from torch-harmonics' ``RealSHT``/``InverseRealSHT``; tests check both longitude paths against
them. Transforms run in the dtype of their tables (float32 unless the module is converted with
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
from hens.forecast.types import check_choice
from hens.models.types import Activation, BlockNorm, LonTransform

#: point-wise non-linearities by name (nn.GELU: the exact, erf form)
ACTIVATIONS = {"gelu": nn.GELU, "silu": nn.SiLU}
#: the same non-linearities applied in place (inference only)
INPLACE_ACTIVATIONS = {nn.GELU: torch.ops.aten.gelu_, nn.SiLU: lambda x: F.silu(x, inplace=True)}

#: on CPU, grids with at least this many longitudes use ``torch.fft`` (below it the dense DFT
#: GEMM is faster: 1 thread, B E = 512, nlon 64: DFT 1.1 ms vs rfft 1.4 ms; nlon 128: 7.1 vs
#: 9.1 ms; nlon 256 (B E = 128): 14.6 vs 10.7 ms; nlon 1440 (B E = 16): 510 vs 75 ms)
RFFT_MIN_NLON_CPU = 256


def uses_rfft(device: torch.device, nlon: int, mode: LonTransform = "auto") -> bool:
    """Whether the longitude transform on ``device`` for ``nlon`` longitudes is ``torch.fft``.

    ``"auto"``: always on CUDA (and any non-CPU device), on CPU from ``RFFT_MIN_NLON_CPU``.
    """
    if mode != "auto":
        return mode == "rfft"
    return device.type != "cpu" or nlon >= RFFT_MIN_NLON_CPU


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

    ``forward`` ``(2 mmax, nlon)``, rows ordered ``(m, re/im)``: ``rfft(x, norm="forward")``
    (torch-harmonics' factor ``2 pi`` is folded into the forward Legendre table).
    ``inverse`` ``(nlon, 2 mmax)``: ``irfft(c, n=nlon, norm="forward")`` (the imaginary
    parts of ``m = 0`` and of the Nyquist mode are ignored, as irfft does).
    """
    m = np.arange(mmax, dtype=np.float64)[:, None]
    phase = 2.0 * np.pi * m * np.arange(nlon, dtype=np.float64)[None, :] / nlon
    forward = np.stack([np.cos(phase), -np.sin(phase)], axis=1) / nlon
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

    Spectral tensors are real with a trailing re/im axis: :meth:`analysis` returns
    ``(M, L, B, E, 2)`` (order-major, possibly a strided view), :meth:`synthesis` takes
    ``(L, M, B, E, 2)`` (degree-major); coefficients with ``m > l`` are zero on output and
    ignored on input. The attribute ``lon_transform`` (``"auto"``, ``"dft"``, ``"rfft"``; see
    :func:`uses_rfft`) picks the longitude transform; both give torch-harmonics' result to
    float32 rounding.
    """

    def __init__(self, grid: Grid, lmax: int, mmax: int, *, lon_transform: LonTransform = "auto") -> None:
        super().__init__()
        if not 1 <= mmax <= grid.nlon // 2 + 1 or lmax < 1:
            raise ValueError(f"bad truncation lmax={lmax}, mmax={mmax} for grid {grid.spec}")
        check_choice("lon_transform", lon_transform, LonTransform)
        self.grid, self.lmax, self.mmax, self.lon_transform = grid, lmax, mmax, lon_transform
        fwd, inv = legendre_tables(grid, lmax, mmax)
        dft, idft = dft_matrices(grid.nlon, mmax)
        self.register_buffer("leg", (2.0 * math.pi * fwd).float(), persistent=False)  # (M, L, K)
        self.register_buffer("ileg", inv.float(), persistent=False)  # (M, K, L)
        self.register_buffer("dft", dft.float(), persistent=False)  # (2M, N)
        self.register_buffer("idft", idft.float(), persistent=False)  # (N, 2M)

    def extra_repr(self) -> str:
        return f"grid={self.grid.spec}, lmax={self.lmax}, mmax={self.mmax}, lon_transform={self.lon_transform}"

    def _rfft(self, device: torch.device) -> bool:
        return uses_rfft(device, self.grid.nlon, self.lon_transform)

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """``(K, N, B, E)`` grid values -> ``(M, L, B, E, 2)`` coefficients."""
        k, n, b, e = x.shape
        m = self.mmax
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.to(self.leg.dtype)
            if self._rfft(x.device):
                c = torch.fft.rfft(x, dim=1, norm="forward")[:, :m]  # (K, M, B, E) complex, strided
                f = torch.view_as_real(c).reshape(k, m, b * e * 2)  # a view
                return torch.bmm(self.leg, f.transpose(0, 1)).view(m, self.lmax, b, e, 2)
            f = torch.matmul(self.dft, x.reshape(k, n, b * e))  # (K, 2M, BE), rows (m, re/im)
            f = f.view(k, m, 2 * b * e).transpose(0, 1)  # (M, K, 2BE) strided, no copy
            return torch.bmm(self.leg, f).view(m, self.lmax, 2, b, e).permute(0, 1, 3, 4, 2)

    def synthesis(self, y: torch.Tensor) -> torch.Tensor:
        """``(L, M, B, E, 2)`` coefficients -> ``(K, N, B, E)`` grid values."""
        l, m, b, e, _ = y.shape
        nlat, nlon = self.grid.nlat, self.grid.nlon
        with torch.autocast(device_type=y.device.type, enabled=False):
            y = y.to(self.ileg.dtype).reshape(l, m, b * e * 2).transpose(0, 1)  # (M, L, BE2)
            z = torch.bmm(self.ileg, y).view(m, nlat, b, e, 2)
            if self._rfft(z.device):
                c = torch.view_as_complex(z).transpose(0, 1)  # (K, M, B, E) strided
                return torch.fft.irfft(c, n=nlon, dim=1, norm="forward").contiguous()
            z = z.permute(1, 0, 4, 2, 3).reshape(nlat, 2 * m, b * e)  # copy of E-blocks
            return torch.matmul(self.idft, z).view(nlat, nlon, b, e)


def degree_major(s: torch.Tensor) -> torch.Tensor:
    """``(M, L, B, E, 2)`` -> contiguous ``(L, M, B, E, 2)`` (the one copy before mixing)."""
    return s.transpose(0, 1).contiguous()


_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


class SpectralConv(nn.Module):
    """Driscoll-Healy spherical convolution: ``y_lm = sum_i W[o, i, l] x_lm`` (weights per degree).

    ``forward`` maps ``(K, N, B, E_in)`` on ``t_in``'s grid to ``(K, N, B, E_out)`` on
    ``t_out``'s grid and also returns the input resampled to the output grid
    (``ISHT_out(SHT_in(x))``, or ``x`` itself when the grids agree) for the skip branch.
    ``weight`` is complex, ``(E_out, E_in, L)`` (the checkpoint shape), initialised
    ``N(0, gain / E_in)``, and stored ``(L, E_in, E_out)``-major: ``weight.permute(2, 1, 0)``
    is the contiguous right operand of the per-degree complex GEMM. A weight in another layout
    or dtype (e.g. assigned, or a float64 input) is converted once per weight version
    (:meth:`spectral_weight`).
    """

    def __init__(
        self, t_in: SphericalTransform, t_out: SphericalTransform, in_dim: int, out_dim: int, *, gain: float
    ) -> None:
        super().__init__()
        if (t_in.lmax, t_in.mmax) != (t_out.lmax, t_out.mmax):
            raise ValueError("input and output transforms must share their truncation")
        self.t_in, self.t_out = t_in, t_out
        scale = math.sqrt(gain / in_dim)
        weight = scale * torch.randn(out_dim, in_dim, t_in.lmax, dtype=torch.complex64)
        self.weight = nn.Parameter(weight.permute(2, 1, 0).contiguous().permute(2, 1, 0))  # same values
        self.resample = t_in.grid != t_out.grid
        self._converted: tuple[tuple, torch.Tensor] | None = None

    def spectral_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """``(L, E_in, E_out)`` complex weight of ``dtype``'s precision, contiguous.

        The parameter itself (a view, autograd intact) when its layout and dtype fit; otherwise
        a converted copy: rebuilt on every call while autograd records, else cached and
        keyed on the parameter's version counter, storage, dtype and device, so an optimizer
        step, ``load_state_dict`` or ``.to()`` never leaves a stale copy.
        """
        ctype = _COMPLEX[dtype]
        w = self.weight.permute(2, 1, 0)
        if w.dtype == ctype and w.is_contiguous():
            return w
        if torch.is_grad_enabled() and self.weight.requires_grad:
            return w.to(ctype).contiguous()
        try:
            key = (self.weight._version, self.weight.data_ptr(), ctype, self.weight.device)
        except RuntimeError:  # an inference tensor has no version counter: do not cache
            return w.detach().to(ctype).contiguous()
        if self._converted is None or self._converted[0] != key:
            self._converted = None  # free the old copy first
            self._converted = (key, w.detach().to(ctype).contiguous())
        return self._converted[1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, n, b, e = x.shape
        dtype = x.dtype
        with torch.autocast(device_type=x.device.type, enabled=False):
            s = degree_major(self.t_in.analysis(x))  # (L, M, B, E, 2)
            lmax, mmax = s.shape[:2]
            w = self.spectral_weight(s.dtype)
            y = torch.bmm(torch.view_as_complex(s).view(lmax, mmax * b, e), w)  # (L, MB, O) complex
            y = self.t_out.synthesis(torch.view_as_real(y).view(lmax, mmax, b, w.shape[-1], 2))
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
    autograd (inference) and on the CPU only, rows are processed in chunks of about 1 MB of
    hidden activations: the hidden tensor stays in cache and no large temporary is allocated
    (a fresh multi-MB tensor costs page faults on first touch, more than the GEMM itself;
    measured in benchmarks/results/sfno_paths_*.csv). A GPU always takes one GEMM per layer.
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
        self.chunked = True  # CPU inference in row chunks (benchmarks switch it off to compare)

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = self.act(layer(x))
        return self.out(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = max([self.out_dim, x.shape[-1]] + [layer.out_features for layer in self.hidden])
        rows = x.numel() // x.shape[-1]
        chunk = max(1, self._CHUNK_FLOATS // width)
        if torch.is_grad_enabled() or x.device.type != "cpu" or not self.chunked or rows <= chunk:
            return self._rows(x)
        return self._chunked(x.reshape(rows, x.shape[-1]), chunk).view(*x.shape[:-1], self.out_dim)

    def _chunked(self, flat: torch.Tensor, chunk: int) -> torch.Tensor:
        # Every GEMM writes into a buffer allocated once (the hidden ones stay in cache) and the
        # activation runs in place: no fresh tensor, no copy of the output rows. Measured on one
        # core (2026-12-06): the last block's MLP at 32x64, batch 16, 17.4 -> 12.5 ms.
        rows = flat.shape[0]
        out = torch.empty(rows, self.out_dim, dtype=flat.dtype, device=flat.device)
        buffers = [torch.empty(chunk, layer.out_features, dtype=flat.dtype, device=flat.device)
                   for layer in self.hidden]
        act = INPLACE_ACTIVATIONS[type(self.act)]
        for start in range(0, rows, chunk):
            h = flat[start : start + chunk]
            for layer, buffer in zip(self.hidden, buffers):
                h = _linear_into(layer, h, buffer[: h.shape[0]])
                act(h)
            _linear_into(self.out, h, out[start : start + chunk])
        return out


def _linear_into(layer: nn.Linear, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` written into ``out`` (rows of a contiguous buffer)."""
    if layer.bias is None:
        return torch.mm(x, layer.weight.t(), out=out)
    return torch.addmm(layer.bias, x, layer.weight.t(), out=out)


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
