"""The headline of issue 13: a HENS-size ensemble generated into one store and scored, on 2 cores.

Standalone (not pytest, ~15 minutes): ``python benchmarks/bench_hens.py [--checkpoints 29 --pairs 128] [--world PATH]``.

* The world: ``hens world`` at 32x64, 30 days after a 30-day spin-up (or ``--world``, e.g. the
  demo's).
* 29 checkpoints of the demo's deterministic SFNO recipe (``hens train`` defaults: embed 64,
  4 blocks, internal grid halved, its forcings), **built with random weights** (seeds 0..28)
  through hens' checkpoint API (``save_checkpoint``) with the world's normalisation: the
  benchmark times generation, storage and scoring, not skill, and the cost of a forward pass
  does not depend on the weights.
* 29 checkpoints x 128 hemispheric bred-vector +/- pairs (7,424 members, as Huge Ensembles), one
  initial time, 10 days 6-hourly (41 stored leads), batches of 16, ``torchrun`` with 2 ranks of
  one thread each, into one format-2 store; then ``hens score`` of the store against the world.
* The same generation with the first 4 checkpoints x 32 pairs (256 members) first, for the RSS ratio.

Printed (goals of issue 13 in brackets): generation wall, peak RSS per rank, store bytes and
files, scoring wall and peak RSS, peak RSS at 7,424 / at 256 members (<= 1.2), generation +
scoring wall (<= 900 s on 2 cores; <= 720 s in "Scoring at scale"). Peak RSS is each process's
``VmHWM``. Results append to ``results/hens_<machine>.csv`` with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from _results import append_rows, results_path  # noqa: E402

SMALL = (4, 32)  # checkpoints, pairs: 256 members
T0 = "2000-01-16T00"  # 15 days into the 30-day world: bred-vector cycles before, 10 days of truth after


def _peak_rss() -> int:
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024


def world(folder: Path) -> Path:
    from hens.pipelines.world import generate_world

    return generate_world(folder / "world.zarr", grid="32x64", days=30.0, seed=0, spinup_days=30.0,
                          start="2000-01-01T00", progress=False)


def checkpoints(folder: Path, world_path: Path, count: int) -> list[Path]:
    """The demo's deterministic SFNO recipe with random weights, saved as hens checkpoints."""
    import torch

    from hens.forecast.stats import open_world_stats
    from hens.models.checkpoint import description_sha256, save_checkpoint
    from hens.models.sfno.network import SFNO
    from hens.models.training import TrainConfig, model_config

    stats = open_world_stats(world_path)
    channels = [str(c) for c in stats["channel"].values]
    recipe = TrainConfig(data=(str(world_path),), out=folder / "unused.pt", steps=1, scale_factor=2)
    paths = []
    for seed in range(count):
        torch.manual_seed(seed)
        model = SFNO(model_config(recipe, len(channels), "32x64"))
        paths.append(save_checkpoint(
            folder / f"sfno-{seed}.pt", model, channels=channels, seed=seed,
            data_sha256=description_sha256({"data": str(world_path)}), mean=stats["mean"].values,
            std=stats["std"].values, tendency_std=stats["tendency_std"].values, forcings=recipe.forcings))
    return paths


def config(folder: Path, name: str, world_path: Path, models: list[Path], pairs: int) -> Path:
    import yaml

    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "data": str(world_path), "output": f"{name}.zarr", "init_times": [T0], "lead_hours": 240,
        "models": [str(m) for m in models], "batch_size": 16, "seed": 0, "threads": 1,
        "perturbation": {"kind": "hemispheric_bred_vector", "pairs": pairs, "cycles": 3, "amplitude": 0.35},
    }))
    return path


def rank_child(config_path: str) -> None:
    """One rank of the generation (under torchrun): run, then print this process's peak RSS."""
    from hens.pipelines.forecast.run import run_forecast

    run_forecast(config_path, progress=False)
    print(json.dumps({"rank": int(os.environ.get("RANK", "0")), "peak_rss": _peak_rss()}), flush=True)


def score_child(store: str, truth: str, out: str) -> None:
    from hens.scoring.evaluate.score import score_ensemble

    score_ensemble(store, truth, out=out, progress=False)
    print(json.dumps({"peak_rss": _peak_rss()}), flush=True)


def _run(args: list[str], *, ranks: int | None = None) -> tuple[float, list[dict]]:
    """(wall seconds, the JSON lines the children printed)."""
    prefix = [sys.executable] if ranks is None else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                     f"--nproc_per_node={ranks}"]
    start = time.perf_counter()
    res = subprocess.run([*prefix, __file__, *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if res.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    # the ranks print at the same time: their objects may share a line
    return wall, [json.loads(obj) for obj in re.findall(r"\{[^{}]*\}", res.stdout)]


def generate(folder: Path, name: str, world_path: Path, models: list[Path], pairs: int) -> dict:
    cfg = config(folder, name, world_path, models, pairs)
    wall, ranks = _run(["--rank-child", str(cfg)], ranks=2)
    store = folder / f"{name}.zarr"
    files = [f for f in store.rglob("*") if f.is_file()]
    return {"members": len(models) * pairs * 2, "wall": wall, "rss": sorted(r["peak_rss"] for r in ranks),
            "bytes": sum(f.stat().st_size for f in files), "files": len(files), "store": store}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=29, help="independent checkpoints (29 in Huge Ensembles)")
    parser.add_argument("--pairs", type=int, default=128, help="bred-vector pairs per checkpoint (128: 7,424 members)")
    parser.add_argument("--world", type=Path, help="a 32x64 world with statistics covering the init time +- 10 days")
    parser.add_argument("--rank-child", help=argparse.SUPPRESS)
    parser.add_argument("--score-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_child:
        return rank_child(args.rank_child)
    if args.score_child:
        return score_child(*args.score_child)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the disk of the working directory
        folder = Path(tmp)
        t = time.perf_counter()
        world_path = args.world.resolve() if args.world else world(folder)
        models = checkpoints(folder, world_path, max(args.checkpoints, SMALL[0]))
        print(f"world and {len(models)} random-weight checkpoints: {time.perf_counter() - t:.0f} s", flush=True)
        small = generate(folder, "small", world_path, models[:SMALL[0]], SMALL[1])
        print(f"256 members: generation {small['wall']:.0f} s, peak RSS per rank "
              f"{', '.join(f'{r / 1e9:.2f}' for r in small['rss'])} GB", flush=True)
        big = generate(folder, "big", world_path, models[:args.checkpoints], args.pairs)
        load_mid = os.getloadavg()
        print(f"{big['members']} members: generation {big['wall']:.0f} s, peak RSS per rank "
              f"{', '.join(f'{r / 1e9:.2f}' for r in big['rss'])} GB; store {big['bytes'] / 1e9:.2f} GB in "
              f"{big['files']} files", flush=True)
        score_wall, (score,) = _run(["--score-child", str(big["store"]), str(world_path), str(folder / "scores.zarr")])
        print(f"hens score: {score_wall:.0f} s, peak RSS {score['peak_rss'] / 1e9:.2f} GB", flush=True)
    load_after = os.getloadavg()
    ratio = max(big["rss"]) / max(small["rss"])
    total = big["wall"] + score_wall
    print(f"peak RSS {big['members']} / 256 members: {ratio:.3f} (goal <= 1.2)")
    print(f"generation + scoring: {total:.0f} s = {total / 60:.1f} min "
          "(goals on 2 cores: <= 15 min, 'Huge for real'; <= 12 min, 'Scoring at scale')")
    print(f"load average before {load_before[0]:.2f}, after generation {load_mid[0]:.2f}, "
          f"after scoring {load_after[0]:.2f} (1 min); {load_after[2]:.2f} (15 min) at the end")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    append_rows(results_path("hens", platform.machine()), [{
        "device": platform.machine(), "cpu": cpu, "cores": os.cpu_count(),
        "load_before": f"{load_before[0]:.2f}", "load_after_generation": f"{load_mid[0]:.2f}",
        "load_after_15min": f"{load_after[2]:.2f}", "members": big["members"],
        "generation_s": f"{big['wall']:.1f}", "rank_peak_rss_gb": " ".join(f"{r / 1e9:.3f}" for r in big["rss"]),
        "store_gb": f"{big['bytes'] / 1e9:.3f}", "files": big["files"], "score_s": f"{score_wall:.1f}",
        "score_peak_rss_gb": f"{score['peak_rss'] / 1e9:.3f}", "generation_256_s": f"{small['wall']:.1f}",
        "rank_peak_rss_256_gb": " ".join(f"{r / 1e9:.3f}" for r in small["rss"]),
        "rss_ratio": f"{ratio:.3f}", "total_s": f"{total:.1f}"}])


if __name__ == "__main__":
    main()
