"""SFNO forward throughput against torch-harmonics' example SFNO of the same size, and FLOP rate.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_sfno.py [--quick]``. For each case both models
are built with the same grid, width, depth, scale factor and truncation (equal parameter
counts, checked), then timed interleaved (A, B, A, B, ...) and the minimum over repeats is kept,
which is robust to other processes on a shared machine. The FLOP rate counts the dense work
hens' SFNO executes (matrix DFTs, full Legendre tables, all (l, m) in the spectral mixing) and
is divided by the rate of one large ``torch.matmul`` measured in the same process.
Results append to ``benchmarks/results/sfno_<device>.csv``.

The peer (``torch_harmonics.examples.models.sfno``) is imported here only: hens never
depends on it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import torch
from _results import append_rows, results_path

from hens.models.sfno import SFNO, SFNOConfig, parameter_count

# (nlat, nlon, embed_dim, num_layers, scale_factor, batch): world-size cases, then larger ones
CASES = [
    (32, 64, 64, 4, 1, 8),
    (32, 64, 48, 4, 2, 64),
    (32, 64, 64, 4, 2, 8),
    (64, 128, 32, 4, 1, 8),
    (64, 128, 64, 4, 2, 8),
    (128, 256, 64, 4, 2, 2),
]
QUICK = CASES[:2]


def peer(nlat: int, nlon: int, embed: int, layers: int, scale: int, channels: int) -> torch.nn.Module:
    from torch_harmonics.examples.models.sfno import SphericalFourierNeuralOperator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SphericalFourierNeuralOperator(
            img_size=(nlat, nlon), grid="legendre-gauss", scale_factor=scale, in_chans=channels,
            out_chans=channels, embed_dim=embed, num_layers=layers,
        )


def ours(nlat: int, nlon: int, embed: int, layers: int, scale: int, channels: int) -> SFNO:
    cfg = SFNOConfig(channels, channels, grid=f"{nlat}x{nlon}", embed_dim=embed, num_layers=layers,
                     scale_factor=scale, encoder_layers=0, decoder_layers=0, big_skip=False)
    return SFNO(cfg)


def executed_flops(model: SFNO, batch: int) -> float:
    """Multiply-adds x 2 of one forward of hens' SFNO as implemented (dense GEMMs)."""
    cfg = model.cfg
    e, lmax = cfg.embed_dim, cfg.truncation
    hidden = int(round(cfg.mlp_ratio * e))
    total = 0.0
    data = cfg.data_grid
    points = batch * data.nlat * data.nlon
    total += 2.0 * points * cfg.in_channels * e + 2.0 * points * e * cfg.out_channels
    for block in model.blocks:
        conv = block.conv
        gin, gout = conv.t_in.grid, conv.t_out.grid
        x = batch * e
        analysis = 2.0 * 2 * lmax * gin.nlon * gin.nlat * x + 2.0 * lmax * lmax * gin.nlat * 2 * x
        synthesis = 2.0 * lmax * gout.nlat * lmax * 2 * x + 2.0 * gout.nlon * 2 * lmax * gout.nlat * x
        mixing = 2.0 * lmax * lmax * batch * (2 * e) * (2 * e)
        total += analysis + mixing + synthesis * (2 if conv.resample else 1)
        total += 2.0 * batch * gout.nlat * gout.nlon * 2 * e * hidden
    return total


def timed(fn, repeats: int) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def matmul_rate(size: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = min(timed(lambda: a @ b, 1) for _ in range(repeats))
    return 2.0 * size**3 / best


def run(cases, repeats: int) -> list[dict]:
    rows = []
    for nlat, nlon, embed, layers, scale, batch in cases:
        torch.manual_seed(0)
        a, b = ours(nlat, nlon, embed, layers, scale, 4).eval(), peer(nlat, nlon, embed, layers, scale, 4).eval()
        assert parameter_count(a) == parameter_count(b), "not the same size"
        x = torch.randn(batch, 4, nlat, nlon)
        times = {"hens": [], "peer": []}
        with torch.inference_mode():
            for m in (a, b, a, b):
                m(x)
            for _ in range(repeats):
                times["hens"].append(timed(lambda: a(x), 1))
                times["peer"].append(timed(lambda: b(x), 1))
        mm = matmul_rate()
        t_ours, t_peer = min(times["hens"]), min(times["peer"])
        flops = executed_flops(a, batch)
        row = dict(
            device=platform.processor() or platform.machine(), threads=torch.get_num_threads(),
            grid=f"{nlat}x{nlon}", embed_dim=embed, layers=layers, scale=scale, batch=batch,
            params=parameter_count(a)[0], hens_ms=round(t_ours * 1e3, 2), peer_ms=round(t_peer * 1e3, 2),
            throughput_ratio=round(t_peer / t_ours, 3), hens_gflops=round(flops / t_ours / 1e9, 1),
            matmul_gflops=round(mm / 1e9, 1), flop_rate_ratio=round(flops / t_ours / mm, 3),
        )
        rows.append(row)
        print(
            f"{row['grid']:>8} E={embed:<3} K={layers} s={scale} B={batch:<3} hens {row['hens_ms']:8.2f} ms "
            f"peer {row['peer_ms']:8.2f} ms  throughput x{row['throughput_ratio']:.2f}  "
            f"{row['hens_gflops']:.0f} GFLOP/s = {row['flop_rate_ratio']:.2f} of matmul ({row['matmul_gflops']:.0f})",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two world-size cases only")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    rows = run(QUICK if args.quick else CASES, args.repeats)
    if not args.no_save:
        append_rows(results_path("sfno", rows[0]["device"] or "cpu"), rows)


if __name__ == "__main__":
    main()
