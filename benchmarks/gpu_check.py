"""GPU acceptance check of hens' forward and engine (run by benchmarks/gpu_check.sh).

Sections, each printing PASS/FAIL/SKIP lines and going on after a failure:

1. transforms: both longitude paths equal torch-harmonics' RealSHT/InverseRealSHT on the device;
2. noise: per-member generators on the device give a member the same bits alone or in a batch;
3. throughput: the HENS network (721x1440, embed 620, 8 layers, scale factor 2, 110 -> 74
   channels) at batch 1, 2, 4 in float32 and bfloat16 autocast: member-steps/s and peak memory;
4. rerun: the same forward twice gives the same bits (deterministic algorithms on);
5. NCCL: a 1-rank NCCL process group and an all_reduce on it.

``--setup-forecast DIR`` and ``--compare A B`` are the helpers of the script's ``hens forecast`` part.

``--device cpu --quick`` runs the same code on a tiny network (a CPU smoke test of this script).
Results also go to ``benchmarks/results/gpu_check_<device>.csv``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
import warnings

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _results import append_rows, results_path  # noqa: E402

FAILED: list[str] = []


def report(name: str, ok: bool | None, detail: str = "") -> None:
    tag = {True: "PASS", False: "FAIL", None: "SKIP"}[ok]
    if ok is False:
        FAILED.append(name)
    print(f"[{tag}] {name}: {detail}", flush=True)


def section(name: str, fn, *args) -> None:
    print(f"\n== {name}", flush=True)
    try:
        fn(*args)
    except Exception as err:  # keep going: the next section may still tell something
        report(name, False, f"{type(err).__name__}: {err}")
        traceback.print_exc()


def check_transforms(device: torch.device) -> None:
    from torch_harmonics import InverseRealSHT, RealSHT

    from hens.forecast.grids import Grid
    from hens.models.sfno.layers import SphericalTransform, degree_major, uses_rfft

    for grid, lmax in [(Grid(32, 64), 32), (Grid(91, 180, "equiangular"), 46), (Grid(181, 360), 180)]:
        kw = dict(lmax=lmax, mmax=lmax, grid=grid.sht_grid, norm="ortho")
        sht, isht = RealSHT(grid.nlat, grid.nlon, **kw).to(device), InverseRealSHT(grid.nlat, grid.nlon, **kw).to(device)
        x = torch.randn(2, 3, grid.nlat, grid.nlon, device=device)
        ref = torch.view_as_real(sht(x)).permute(3, 2, 0, 1, 4)
        for lon in ("dft", "rfft"):
            t = SphericalTransform(grid, lmax, lmax, lon_transform=lon).to(device)
            ours = t.analysis(x.permute(2, 3, 0, 1))
            back = t.synthesis(degree_major(ours)).permute(2, 3, 0, 1)
            err = max((ours - ref).abs().max().item(), (back - isht(sht(x))).abs().max().item())
            report(f"SHT {grid.spec} {lon}", err < 1e-4, f"max |hens - torch-harmonics| = {err:.2e} (float32)")
    report("auto picks rfft on this device", uses_rfft(device, 64) == (device.type != "cpu"), f"device {device}")


def check_noise(device: torch.device) -> None:
    from hens.models.sfno.noise import amplitude_table, draw_coefficients, make_generator

    amps = amplitude_table(180, (500.0, 1000.0, 2000.0, 4000.0)).to(device)
    alone = [make_generator(7, device)]
    batch = [make_generator(3, device), make_generator(7, device), make_generator(9, device)]
    same = True
    for _ in range(3):
        a, b = draw_coefficients(amps, alone, 1), draw_coefficients(amps, batch, 3)
        same &= a.device.type == device.type and torch.equal(a[0], b[1])
    report("noise of member 7 alone == in a batch, 3 steps, on device", same, f"drawn on {a.device}")


def _hens_model(quick: bool):
    from hens.models.sfno.layers import legendre_tables
    from hens.models.sfno.network import SFNO, SFNOConfig

    cfg = (dict(in_channels=110, out_channels=74, grid="32x64", embed_dim=32, num_layers=2, scale_factor=2) if quick
           else dict(in_channels=110, out_channels=74, grid="721x1440", embed_dim=620, num_layers=8, scale_factor=2))
    t0 = time.perf_counter()
    model = SFNO(SFNOConfig(**cfg)).eval()
    legendre_tables.cache_clear()
    print(f"built {cfg['grid']} E={cfg['embed_dim']} K={cfg['num_layers']} in {time.perf_counter() - t0:.0f} s "
          f"({sum(p.numel() for p in model.parameters()) / 1e9:.2f} G parameters)", flush=True)
    return model, cfg


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_throughput(device: torch.device, quick: bool, rows: list) -> None:
    model, cfg = _hens_model(quick)
    model = model.to(device)
    nlat, nlon = (int(v) for v in cfg["grid"].split("x"))
    inputs = torch.randn(4, cfg["in_channels"], nlat, nlon, generator=torch.Generator().manual_seed(0))
    outputs = {}
    for dtype in ("float32", "bfloat16"):
        for batch in (1, 2, 4):
            name = f"HENS-size forward {dtype} batch {batch}"
            try:
                x = inputs[:batch].to(device)  # the same states for both precisions
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats(device)
                ac = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16")
                with torch.inference_mode(), ac:
                    y = model(x)  # warm-up (cuFFT plans, cuBLAS handles)
                    _sync(device)
                    times = []
                    for _ in range(2 if quick else 3):
                        t0 = time.perf_counter()
                        y = model(x)
                        _sync(device)
                        times.append(time.perf_counter() - t0)
                t = min(times)
                peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
                ok = bool(torch.isfinite(y).all())
                report(name, ok, f"{batch / t:.2f} member-steps/s ({t * 1e3:.0f} ms/step), peak {peak:.1f} GiB")
                rows.append(dict(device=_device_name(device), grid=cfg["grid"], embed_dim=cfg["embed_dim"],
                                 layers=cfg["num_layers"], precision=dtype, batch=batch,
                                 member_steps_per_s=round(batch / t, 3), ms_per_step=round(t * 1e3, 1),
                                 peak_gib=round(peak, 2), torch=torch.__version__))
                if batch == 1:
                    outputs[dtype] = y.float()
                del x, y
            except torch.cuda.OutOfMemoryError:
                report(name, None, "out of GPU memory: a smaller batch is the limit on this GPU")
                torch.cuda.empty_cache()
    if len(outputs) == 2:
        ref = outputs["float32"]
        rel = ((outputs["bfloat16"] - ref).norm() / ref.norm()).item()
        report("bfloat16 vs float32 output, 1 step (random weights)", rel < 0.1, f"relative L2 difference {rel:.3e}")
    section("rerun bit-equality", check_rerun, model, device, cfg)


def check_rerun(model, device: torch.device, cfg: dict) -> None:
    nlat, nlon = (int(v) for v in cfg["grid"].split("x"))
    x = torch.randn(2, cfg["in_channels"], nlat, nlon, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.inference_mode():
        a, b = model(x), model(x)
    report("same input twice -> same bits (batch 2)", torch.equal(a, b),
           f"max |diff| = {(a - b).abs().max().item():.1e}")


def check_nccl(device: torch.device) -> None:
    import torch.distributed as dist

    if device.type != "cuda" or not dist.is_nccl_available():
        report("1-rank NCCL all_reduce", None, "needs CUDA and NCCL")
        return
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29517")
    dist.init_process_group("nccl", rank=0, world_size=1, device_id=device)
    try:
        t = torch.tensor([3], device=device)
        dist.all_reduce(t)
        report("1-rank NCCL all_reduce", int(t.item()) == 3, f"backend {dist.get_backend()}")
    finally:
        dist.destroy_process_group()


def setup_forecast(folder: str) -> None:
    """A tiny world (32x64, a few days), one tiny stochastic checkpoint and ``ens.yaml`` in ``folder``."""
    from pathlib import Path

    import yaml

    from hens.forecast.stats import open_world_stats
    from hens.models.checkpoint import description_sha256, save_checkpoint
    from hens.models.sfno.network import SFNOConfig
    from hens.models.sfno.stochastic import StochasticSFNO, StochasticSFNOConfig
    from hens.pipelines.world import generate_world

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    world = generate_world(out / "world.zarr", grid="32x64", days=4.0, seed=0, spinup_days=2.0,
                           start="2000-01-01T00", progress=False)
    channels = ["z500", "u500", "v500", "t2m"]
    sel = open_world_stats(world).sel(channel=channels)
    torch.manual_seed(0)
    model = StochasticSFNO(StochasticSFNOConfig(SFNOConfig(4, 4, grid="32x64", embed_dim=16, num_layers=2)))
    ck = save_checkpoint(out / "ck0.pt", model, channels=channels, seed=0, data_sha256=description_sha256({"data": "w"}),
                         mean=sel["mean"].values, std=sel["std"].values, tendency_std=sel["tendency_std"].values)
    for name, extra in [("ens.yaml", {}), ("ens_bf16.yaml", {"precision": "bfloat16"})]:
        values = {"data": str(world), "output": name.replace(".yaml", ".zarr"), "init_times": ["2000-01-03T00"],
                  "lead_hours": 24, "models": [str(ck)], "seeds": 2, "batch_size": 4, "seed": 0,
                  "perturbation": {"kind": "gaussian", "pairs": 2, "amplitude": 0.35}, **extra}
        (out / name).write_text(yaml.safe_dump(values))
    print(f"tiny forecast inputs in {out}")


def compare_stores(a: str, b: str) -> int:
    import numpy as np

    from hens.forecast.store_reader import open_store

    da, db = open_store(a), open_store(b)
    bad = [n for n in da.variables if not np.array_equal(da[n].values, db[n].values, equal_nan=True)]
    report(f"store {b} == {a}", not bad, f"{len(da.variables)} arrays" + (f", differ: {bad}" if bad else ""))
    return 1 if bad else 0


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny network instead of the HENS size")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--setup-forecast", metavar="DIR", help="only write a tiny world, checkpoint and YAMLs")
    parser.add_argument("--compare", nargs=2, metavar="STORE", help="only compare two stores bit for bit")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.setup_forecast:
        setup_forecast(args.setup_forecast)
        return 0
    if args.compare:
        return compare_stores(*args.compare)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available to this torch build/driver: nothing to check on a GPU "
              "(run with --device cpu --quick for the CPU smoke test)")
        return 2
    device = torch.device(args.device)
    if device.type == "cuda":
        device = torch.device("cuda", device.index or 0)
        torch.cuda.set_device(device)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    torch.use_deterministic_algorithms(True)
    rows: list = []
    section("transforms vs torch-harmonics", check_transforms, device)
    section("noise on the device", check_noise, device)
    section("HENS-size throughput", check_throughput, device, args.quick, rows)
    section("NCCL", check_nccl, device)
    if rows and not args.no_save:
        append_rows(results_path("gpu_check", rows[0]["device"]), rows)
    print(f"\n{len(FAILED)} failed" + (f": {', '.join(FAILED)}" if FAILED else ""))
    return 1 if FAILED else 0


if __name__ == "__main__":
    raise SystemExit(main())
