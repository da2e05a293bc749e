"""SFNO: transforms against torch-harmonics, spectral conv against its example, shapes, symmetry."""

from __future__ import annotations

import warnings

import pytest
import torch

from hens.forecast.errors import ConfigError, DataError, GridMismatch
from hens.forecast.grids import Grid
from hens.models.sfno.layers import SpectralConv, SphericalTransform, degree_major
from hens.models.sfno.network import SFNO, SFNOConfig, parameter_count

torch.set_num_threads(1)


def _th(grid: Grid, lmax: int):
    from torch_harmonics import InverseRealSHT, RealSHT

    kw = dict(lmax=lmax, mmax=lmax, grid=grid.sht_grid, norm="ortho")
    return RealSHT(grid.nlat, grid.nlon, **kw).double(), InverseRealSHT(grid.nlat, grid.nlon, **kw).double()


@pytest.mark.parametrize("lon", ["dft", "rfft"])
@pytest.mark.parametrize(("grid", "lmax"), [(Grid(16, 32), 16), (Grid(17, 32, "equiangular"), 9), (Grid(12, 20), 11),
                                            (Grid(8, 16), 9)])
def test_transform_matches_torch_harmonics(grid, lmax, lon):
    sht, isht = _th(grid, lmax)
    t = SphericalTransform(grid, lmax, lmax, lon_transform=lon).double()
    x = torch.randn(2, 3, grid.nlat, grid.nlon, dtype=torch.float64)
    ours = t.analysis(x.permute(2, 3, 0, 1))  # (M, L, B, E, 2)
    ref = torch.view_as_real(sht(x)).permute(3, 2, 0, 1, 4)  # (B, E, L, M, 2) -> (M, L, B, E, 2)
    # the tables are stored in float32 (transforms run in float32): agreement to float32 rounding
    torch.testing.assert_close(ours, ref, atol=2e-6, rtol=0)
    coeffs = sht(x)
    back = t.synthesis(degree_major(ours)).permute(2, 3, 0, 1)
    torch.testing.assert_close(back, isht(coeffs), atol=2e-6, rtol=0)


def test_longitude_paths_agree_in_float32_and_auto_picks_by_size():
    from hens.models.sfno.layers import RFFT_MIN_NLON_CPU, uses_rfft

    grid = Grid(24, 48)
    x = torch.randn(24, 48, 2, 5)
    a = SphericalTransform(grid, 24, 24, lon_transform="dft")
    b = SphericalTransform(grid, 24, 24, lon_transform="rfft")
    torch.testing.assert_close(a.analysis(x), b.analysis(x), atol=1e-5, rtol=0)
    s = degree_major(a.analysis(x))
    torch.testing.assert_close(a.synthesis(s), b.synthesis(s), atol=1e-5, rtol=0)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not uses_rfft(cpu, RFFT_MIN_NLON_CPU - 1) and uses_rfft(cpu, RFFT_MIN_NLON_CPU)
    assert uses_rfft(cuda, 8) and uses_rfft(cuda, 2048)  # always rfft on a GPU
    assert uses_rfft(cpu, 8, "rfft") and not uses_rfft(cuda, 2048, "dft")
    with pytest.raises(ConfigError, match="lon_transform"):
        SphericalTransform(grid, 24, 24, lon_transform="fft")


def test_spectral_conv_matches_torch_harmonics_example():
    from torch_harmonics.examples.models._layers import SpectralConvS2

    big, small = Grid(16, 32), Grid(8, 16)
    lmax = 8
    sht_big, isht_big = _th(big, lmax)
    sht_small, isht_small = _th(small, lmax)
    for (sht, isht, t_in, t_out) in [
        (sht_big, isht_small, big, small),  # down-sampling block
        (sht_small, isht_small, small, small),
    ]:
        ref = SpectralConvS2(sht, isht, 5, 6, gain=2.0).double()
        conv = SpectralConv(SphericalTransform(t_in, lmax, lmax), SphericalTransform(t_out, lmax, lmax), 5, 6, gain=2.0)
        conv = conv.double()
        with torch.no_grad():
            conv.weight.copy_(ref.weight)
        x = torch.randn(2, 5, t_in.nlat, t_in.nlon, dtype=torch.float64)
        y_ref, res_ref = ref(x)
        y, res = conv(x.permute(2, 3, 0, 1))
        torch.testing.assert_close(y.permute(2, 3, 0, 1), y_ref, atol=1e-5, rtol=0)
        torch.testing.assert_close(res.permute(2, 3, 0, 1), res_ref, atol=1e-5, rtol=0, check_dtype=False)


def test_same_size_as_torch_harmonics_example():
    from torch_harmonics.examples.models.sfno import SphericalFourierNeuralOperator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex = SphericalFourierNeuralOperator(
            img_size=(32, 64), grid="legendre-gauss", scale_factor=2, in_chans=4, out_chans=4,
            embed_dim=16, num_layers=3,
        )
    cfg = SFNOConfig(4, 4, grid="32x64", embed_dim=16, num_layers=3, scale_factor=2,
                     encoder_layers=0, decoder_layers=0, big_skip=False)
    assert cfg.truncation == ex.blocks[0].global_conv.modes_lat == 16
    assert parameter_count(SFNO(cfg)) == parameter_count(ex)


CONFIGS = [
    dict(grid="32x64", scale_factor=1),
    dict(grid="33x64:equiangular", scale_factor=2, pos_embed="learnable lat", norm="instance"),
    dict(grid="16x32", scale_factor=2, pos_embed="learnable latlon", norm="layer", inner_skip="linear",
         outer_skip="linear", big_skip=False, activation="silu", encoder_layers=0, decoder_layers=2),
    dict(grid="16x32", num_layers=1, inner_skip="identity", outer_skip="none", lmax=6),
]


@pytest.mark.parametrize("options", CONFIGS)
def test_shapes_gradients_and_init_scale(options):
    cfg = SFNOConfig(in_channels=3, out_channels=2, embed_dim=8, num_layers=options.pop("num_layers", 3), **options)
    model = SFNO(cfg)
    grid = cfg.data_grid
    x = torch.randn(2, 3, grid.nlat, grid.nlon, requires_grad=True)
    y = model(x)
    assert y.shape == (2, 2, grid.nlat, grid.nlon) and y.dtype == torch.float32 and y.is_contiguous()
    assert 0.05 < y.std().item() < 20.0  # init keeps activations O(1)
    y.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(x.grad).all()


def test_zonal_shift_equivariance():
    # spectral convolutions and point-wise layers commute with rotations about the axis
    cfg = SFNOConfig(3, 3, grid="16x32", embed_dim=8, num_layers=3, scale_factor=2, pos_embed="learnable lat")
    model = SFNO(cfg)
    x = torch.randn(1, 3, 16, 32)
    shift = 4  # a multiple of the scale factor: the internal grid shifts by whole cells too
    with torch.no_grad():
        y = model(x)
        torch.testing.assert_close(model(x.roll(shift, -1)), y.roll(shift, -1), atol=1e-5 * y.abs().max().item(), rtol=0)


def test_batch_rows_are_independent():
    model = SFNO(SFNOConfig(2, 2, grid="16x32", embed_dim=8, num_layers=2))
    x = torch.randn(3, 2, 16, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[1:2], model(x[1:2]), atol=1e-5, rtol=1e-5)


def test_config_checks_and_round_trip():
    cfg = SFNOConfig(4, 4, grid="33x64:equiangular", scale_factor=2, norm="layer")
    assert SFNOConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.internal_grid == Grid(16, 32) and cfg.truncation == 16
    with pytest.raises(ConfigError, match="norm='batch' is not an option"):
        SFNOConfig(4, 4, norm="batch")
    with pytest.raises(ConfigError, match="unknown SFNO config keys: depth"):
        SFNOConfig.from_dict({**cfg.to_dict(), "depth": 3})
    with pytest.raises(GridMismatch, match="no spherical harmonic transform"):
        SFNOConfig(4, 4, grid="32x64:equiangular-nopoles")
    with pytest.raises(ConfigError, match="lmax=40"):
        SFNOConfig(4, 4, grid="32x64", lmax=40)
    with pytest.raises(ConfigError, match="scale_factor"):
        SFNOConfig(4, 4, grid="8x16", scale_factor=8)
    with pytest.raises(ConfigError, match="cond_dim"):
        SFNOConfig(4, 4, cond_dim=2)
    model = SFNO(SFNOConfig(2, 2, grid="16x32", embed_dim=4, num_layers=1))
    with pytest.raises(DataError, match="expects"):
        model(torch.zeros(1, 2, 32, 64))


def test_transforms_are_shared():
    model = SFNO(SFNOConfig(2, 2, grid="32x64", embed_dim=4, num_layers=4, scale_factor=2))
    transforms = {id(m) for m in model.modules() if isinstance(m, SphericalTransform)}
    assert len(transforms) == 2
    model1 = SFNO(SFNOConfig(2, 2, grid="32x64", embed_dim=4, num_layers=4))
    assert len({id(m) for m in model1.modules() if isinstance(m, SphericalTransform)}) == 1
    assert not any("leg" in k or "dft" in k for k in model.state_dict())  # tables are not saved


@pytest.mark.parametrize("options", [
    dict(), dict(layout="makani", norm="instance", outer_skip="linear"), dict(norm="layer", cond_dim=3),
    dict(inner_skip="linear", pos_embed="learnable lat", encoder_layers=2, decoder_layers=0, big_skip=False),
    dict(pos_embed="learnable latlon", mlp_ratio=1.5, norm="instance"),
])
def test_parameter_bytes_counts_the_built_model(options):
    from hens.models.sfno.network import parameter_bytes

    cfg = SFNOConfig(5, 3, grid="16x32", embed_dim=12, num_layers=3, scale_factor=2, **options)
    built = sum(p.numel() * p.element_size() for p in SFNO(cfg).parameters())
    assert parameter_bytes(cfg) == built


def _conv_pair(seed: int) -> SpectralConv:
    torch.manual_seed(seed)
    big, small = Grid(16, 32), Grid(8, 16)
    return SpectralConv(SphericalTransform(big, 8, 8), SphericalTransform(small, 8, 8), 5, 6, gain=2.0)


def test_spectral_weight_is_the_parameter_itself_in_float32():
    conv = _conv_pair(0)
    w = conv.spectral_weight(torch.float32)
    assert w.is_contiguous() and w.shape == (8, 5, 6) and w.data_ptr() == conv.weight.data_ptr()
    # a checkpoint saved before (contiguous (O, I, L) weight) loads into the (L, I, O)-major parameter
    old_style = {k: v.contiguous() for k, v in conv.state_dict().items()}
    other = _conv_pair(1)
    other.load_state_dict(old_style)
    assert other.spectral_weight(torch.float32).is_contiguous()
    x = torch.randn(16, 32, 2, 5)
    with torch.inference_mode():
        torch.testing.assert_close(other(x), conv(x), atol=0, rtol=0)


def test_converted_weight_follows_optimizer_steps_and_load_state_dict():
    conv, fresh = _conv_pair(0).double(), _conv_pair(1).double()  # float64 input: converted weight
    x = torch.randn(16, 32, 2, 5, dtype=torch.float64)
    with torch.no_grad():
        first = conv(x)[0]
        assert conv.spectral_weight(torch.float64) is conv.spectral_weight(torch.float64)  # built once
    opt = torch.optim.SGD(conv.parameters(), lr=0.1)
    conv(x)[0].square().sum().backward()  # grad enabled: built from the parameter, graph intact
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    opt.step()
    with torch.inference_mode():
        after = conv(x)[0]
    assert not torch.equal(after, first)
    fresh.load_state_dict(conv.state_dict())
    with torch.inference_mode():
        fresh(x)  # fills the cache of fresh before its weights change again
        torch.testing.assert_close(fresh(x)[0], after, atol=0, rtol=0)
        fresh.load_state_dict(_conv_pair(0).double().state_dict())
        torch.testing.assert_close(fresh(x)[0], first, atol=0, rtol=0)
    # an assigned contiguous weight (no longer (L, I, O)-major) takes the converted path, same numbers
    fresh.load_state_dict({k: v.contiguous() for k, v in conv.state_dict().items()}, assign=True)
    assert not fresh.weight.permute(2, 1, 0).is_contiguous()
    with torch.no_grad():
        torch.testing.assert_close(fresh.float()(x.float())[0], conv.float()(x.float())[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("activation, hidden_layers, out_bias", [("gelu", 1, False), ("silu", 2, True)])
def test_cpu_row_chunks_give_the_same_numbers(activation, hidden_layers, out_bias):
    from hens.models.sfno.layers import mlp

    torch.manual_seed(0)
    layer = mlp(8, 64, 8, hidden_layers=hidden_layers, activation=activation, gain=1.0, out_bias=out_bias)
    layer._CHUNK_FLOATS = 1 << 10  # many chunks at this size, the last one short
    x = torch.randn(41, 50, 3, 8)
    with torch.inference_mode():
        chunked = layer(x)
        layer.chunked = False
        whole = layer(x)
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)
    assert chunked.shape == (41, 50, 3, 8) and chunked.is_contiguous()
