"""SFNO forward throughput against torch-harmonics' example SFNO of the same size, and FLOP rate.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_sfno.py [--quick]``; ``--paths``: old vs new
path of the forward's CPU-era tricks at the demo size and at 721x1440; ``--hens``: the HENS
network (721x1440, embed 620, 8 layers, scale factor 2, 110 -> 74 channels) at batch 1. For each case both models
are built with the same grid, width, depth, scale factor and truncation (equal parameter
counts, checked), then timed interleaved (A, B, A, B, ...) and the minimum over repeats is kept,
which is robust to other processes on a shared machine. The FLOP rate counts the dense work
hens' SFNO executes (longitude transforms, full Legendre tables, all (l, m) in the spectral mixing) and
is divided by the rate of one large ``torch.matmul`` measured in the same process.
Results append to ``benchmarks/results/sfno_<device>.csv``.

The peer (``torch_harmonics.examples.models.sfno``) is imported here only: hens never
depends on it.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
import warnings

import torch
from _results import append_rows, results_path

from hens.models.sfno.layers import uses_rfft
from hens.models.sfno.network import SFNO, SFNOConfig, parameter_count

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


def _fft_flops(nlon: int, sequences: float) -> float:
    """Real FFT of length ``nlon`` on ``sequences`` rows: the usual 2.5 N log2 N estimate."""
    return 2.5 * nlon * math.log2(nlon) * sequences


def executed_flops(model: SFNO, batch: int, device: torch.device = torch.device("cpu")) -> float:
    """Floating-point operations of one forward of hens' SFNO as implemented (counted analytically).

    Point-wise GEMMs (encoder, block MLPs, linear skips, decoder, big skip); per block the
    longitude transforms (dense DFT GEMM or rfft, as :func:`uses_rfft` picks on ``device``),
    the Legendre GEMMs over the full ``(M, L)`` tables (``m > l`` included: executed), the
    complex per-degree contraction (8 flops per complex multiply-add), and the resampled skip.
    Norms, activations and copies are not counted.
    """
    cfg = model.cfg
    e, lmax = cfg.embed_dim, cfg.truncation
    data = cfg.data_grid
    points = batch * data.nlat * data.nlon

    def mlp_flops(layer, rows: int) -> float:
        return sum(2.0 * rows * lin.in_features * lin.out_features for lin in [*layer.hidden, layer.out])

    total = mlp_flops(model.encoder, points) + mlp_flops(model.decoder, points)
    if model.big_skip is not None:
        total += 2.0 * points * cfg.in_channels * cfg.out_channels
    for block in model.blocks:
        conv = block.conv
        gin, gout = conv.t_in.grid, conv.t_out.grid
        cols = batch * e

        def lon(grid) -> float:
            if uses_rfft(device, grid.nlon, conv.t_in.lon_transform):
                return _fft_flops(grid.nlon, grid.nlat * cols)
            return 2.0 * 2 * lmax * grid.nlon * grid.nlat * cols

        analysis = lon(gin) + 2.0 * lmax * lmax * gin.nlat * 2 * cols
        synthesis = 2.0 * lmax * gout.nlat * lmax * 2 * cols + lon(gout)
        mixing = 8.0 * lmax * lmax * batch * e * e
        total += analysis + mixing + synthesis * (2 if conv.resample else 1)
        rows = batch * gout.nlat * gout.nlon
        total += mlp_flops(block.mlp, rows)
        for skip in (block.inner_skip, block.outer_skip):
            if isinstance(skip, torch.nn.Linear):
                total += 2.0 * rows * e * e
    return total


def timed(fn, repeats: int) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def matmul_rate(size: int = 2048, repeats: int = 5) -> float:
    """Float32 GEMM rate (FLOP/s) of one ``size x size`` matmul, best of ``repeats``."""
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


# ------------------------------------------------------------------------------------------
# Old path vs new path of the three CPU-era tricks (same process, interleaved, best of repeats)

#: (name, grid, batch, embed): the demo network and the HENS one (its data grid, its width)
PATH_SIZES = [("demo", (32, 64), 8, 64), ("hens", (721, 1440), 1, 620)]


def _old_block_weight(weight: torch.Tensor) -> torch.Tensor:
    """The rebuilt real ``[[Wr, Wi], [-Wi, Wr]]`` block matrix of hens <= 65ee97e, every forward."""
    w = weight.permute(2, 1, 0)
    wr, wi = w.real, w.imag
    return torch.cat([torch.cat([wr, wi], -1), torch.cat([-wi, wr], -1)], 1)


def _best(fns: dict, repeats: int) -> dict:
    times = {k: [] for k in fns}
    for k, fn in fns.items():
        fn()  # warm-up
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(timed(fn, 1))
    return {k: min(v) for k, v in times.items()}


def run_paths(repeats: int, sizes=PATH_SIZES) -> list[dict]:
    """Old/new time ratios for: MLP row chunks, the spectral weight, the longitude transform.

    * MLP (one block MLP, E -> 2E -> E): rows in ~1 MB chunks vs one GEMM per layer, on the
      block's grid (the internal grid at scale factor 2 for HENS, where 7 of its 8 block MLPs run);
    * spectral contraction: old = block matrix rebuilt + real bmm, new = complex bmm on the
      (L, I, O)-major parameter (internal grid truncation);
    * longitude transform: SHT + inverse with the dense DFT vs rfft on the data grid (for
      721x1440 with E = 64 columns, a fraction of the width: both paths are linear in it).
    """
    from hens.forecast.grids import Grid
    from hens.models.sfno.layers import SphericalTransform, degree_major, mlp

    rows = []
    dev = platform.processor() or platform.machine()
    for name, (nlat, nlon), batch, embed in sizes:
        torch.manual_seed(0)
        h, w = (nlat // 2, nlon // 2) if name == "hens" else (nlat, nlon)
        layer = mlp(embed, 2 * embed, embed, hidden_layers=1, activation="gelu", gain=1.0, out_bias=False)
        x = torch.randn(h, w, batch, embed)

        def mlp_on(chunked: bool):
            layer.chunked = chunked
            return layer(x)

        lmax = min(h, w // 2)
        weight = torch.randn(embed, embed, lmax, dtype=torch.complex64)
        new_weight = weight.permute(2, 1, 0).contiguous()
        s_real = torch.randn(lmax, lmax * batch, 2 * embed)
        s_cplx = torch.randn(lmax, lmax * batch, embed, dtype=torch.complex64)
        cols = 64 if name == "hens" else embed
        grid = Grid(nlat, nlon)
        t_dft = SphericalTransform(grid, lmax, lmax, lon_transform="dft")  # the network's truncation
        t_fft = SphericalTransform(grid, t_dft.lmax, t_dft.mmax, lon_transform="rfft")
        g = torch.randn(nlat, nlon, batch, cols)

        def sht(t):
            return t.synthesis(degree_major(t.analysis(g)))

        with torch.inference_mode():
            reps = max(2, repeats // (8 if name == "hens" else 1))
            mlp_t = _best({"old": lambda: mlp_on(True), "new": lambda: mlp_on(False)}, reps)
            x = None  # free the activations before the next measurement
            conv_t = _best({"old": lambda: torch.bmm(s_real, _old_block_weight(weight)),
                            "new": lambda: torch.bmm(s_cplx, new_weight)}, reps)
            s_real = s_cplx = weight = new_weight = None
            lon_t = _best({"old": lambda: sht(t_dft), "new": lambda: sht(t_fft)}, reps)
        for item, t, what in [("mlp_row_chunks", mlp_t, f"{h}x{w} B={batch} E={embed}: chunked (old) vs one GEMM (new)"),
                              ("spectral_weight", conv_t, f"L=M={lmax} B={batch} E={embed}: rebuilt block + real bmm "
                                                          "(old) vs complex bmm on the parameter (new)"),
                              ("lon_transform", lon_t, f"{nlat}x{nlon} B={batch} E={cols}: SHT+ISHT dense DFT (old) "
                                                       "vs rfft (new)")]:
            row = dict(device=dev, threads=torch.get_num_threads(), size=name, item=item, what=what,
                       old_ms=round(t["old"] * 1e3, 2), new_ms=round(t["new"] * 1e3, 2),
                       old_over_new=round(t["old"] / t["new"], 3))
            rows.append(row)
            print(f"{name:>5} {item:<16} old {row['old_ms']:10.2f} ms  new {row['new_ms']:10.2f} ms  "
                  f"old/new {row['old_over_new']:.2f}   ({what})", flush=True)
    return rows


# ------------------------------------------------------------------------------------------
# The HENS network: 721x1440, embed 620, 8 layers, scale factor 2, 110 in / 74 out channels

HENS = dict(in_channels=110, out_channels=74, grid="721x1440", embed_dim=620, num_layers=8, scale_factor=2)


def hens_model(*, share_weights: bool) -> SFNO:
    """The HENS-size SFNO (today's block layout). ``share_weights``: the 8 spectral weights are
    one tensor (same cost, 7 x 1.1 GB less memory: a 2-core, 23 GB development machine)."""
    from hens.models.sfno.layers import legendre_tables

    model = SFNO(SFNOConfig(**HENS)).eval()
    legendre_tables.cache_clear()  # the float64 tables (1.5 GB at 721x1440) are not needed any more
    if share_weights:
        for block in model.blocks[1:]:
            block.conv.weight = model.blocks[0].conv.weight
    return model


class _PeakRSS:
    """Peak resident memory of this process while the context runs (sampled every 20 ms)."""

    def __enter__(self):
        import threading

        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def run_hens(steps: int) -> list[dict]:
    """Seconds and peak RSS per member-step at batch 1, FLOPs per step, FLOP rate / GEMM rate."""
    import psutil

    torch.manual_seed(0)
    model = hens_model(share_weights=True)
    weight_gb = model.blocks[0].conv.weight.numel() * 8 / 2**30
    x = torch.randn(1, HENS["in_channels"], 721, 1440)
    flops = executed_flops(model, 1)
    times = []
    with torch.inference_mode():
        rss0 = psutil.Process().memory_info().rss
        with _PeakRSS() as peak:
            for _ in range(steps):
                times.append(timed(lambda: model(x), 1))
    mm = matmul_rate()
    t = min(times)
    unshared = 7 * weight_gb  # the other seven spectral weights of a real checkpoint
    row = dict(
        device=platform.processor() or platform.machine(), threads=torch.get_num_threads(), case="hens_sfno",
        grid=HENS["grid"], embed_dim=620, layers=8, scale=2, channels_in=110, channels_out=74, batch=1,
        params_gb=round(sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30 + unshared, 2),
        seconds_per_member_step=round(t, 2), steps_timed=steps,
        rss_before_gb=round(rss0 / 2**30 + unshared, 2), peak_rss_gb=round(peak.peak / 2**30 + unshared, 2),
        gflop_per_step=round(flops / 1e9, 1), gflops=round(flops / t / 1e9, 1), matmul_gflops=round(mm / 1e9, 1),
        flop_rate_ratio=round(flops / t / mm, 3), load=os.getloadavg()[0],
    )
    print(f"HENS 721x1440 E=620 K=8 sc2 110->74, batch 1, {row['threads']} threads: {t:.1f} s/member-step, "
          f"peak RSS {row['peak_rss_gb']} GB (with distinct weights; {row['params_gb']} GB of parameters), "
          f"{flops / 1e12:.2f} TFLOP/step, {row['gflops']} GFLOP/s = {row['flop_rate_ratio']:.2f} of the "
          f"{row['matmul_gflops']} GFLOP/s float32 GEMM rate (load {row['load']:.1f})", flush=True)
    return [row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two world-size cases only")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--paths", action="store_true", help="old vs new path of MLP chunks, spectral weight, "
                        "longitude transform (demo and 721x1440); ~2 minutes and ~6 GB")
    parser.add_argument("--hens", action="store_true", help="the HENS network at batch 1: minutes and ~15 GB")
    parser.add_argument("--hens-steps", type=int, default=1)
    parser.add_argument("--paths-size", choices=[n for n, *_ in PATH_SIZES], help="only this size with --paths")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    dev = platform.processor() or platform.machine() or "cpu"
    if args.paths or args.hens:
        if args.paths:
            rows = run_paths(args.repeats, [c for c in PATH_SIZES if args.paths_size in (None, c[0])])
            if not args.no_save:
                append_rows(results_path("sfno_paths", dev), rows)
        if args.hens:
            rows = run_hens(args.hens_steps)
            if not args.no_save:
                append_rows(results_path("sfno_hens", dev), rows)
        return
    rows = run(QUICK if args.quick else CASES, args.repeats)
    if not args.no_save:
        append_rows(results_path("sfno", rows[0]["device"] or "cpu"), rows)


if __name__ == "__main__":
    main()
