"""Training benchmarks on the world: step time with 2 ranks vs 1, and skill after a budget.

Run (about 35 minutes with the defaults):

    OMP_NUM_THREADS=1 python benchmarks/bench_train.py --data world.zarr --out bench-train

0. ``lazy``: the demo's deterministic training step (width 64, 4 blocks, ``--scale-factor 2``,
   ``--loss amse``, global batch 8, one thread) with batches read from the store (with the
   background prefetch and ``--cache-mb`` default) and with the whole block in memory, in the
   same process, alternated in rounds of 50 steps (300 each; the world's training block fits
   in the cache, which the statistics pass fills); prints both mean step times and the ratio
   lazy / in-memory (1 = as fast; the 1-minute load average is recorded with it: a shared
   machine shows in both).

1. ``ddp``: the same 60 steps (global batch 8) with one process and with two gloo ranks
   (torchrun); prints the mean time per optimizer step (data loading and saves excluded)
   and the ratio 2 ranks / 1 rank (ideal 0.5 on two idle cores; other load on a shared
   machine shows up directly in it).
2. ``deterministic``: ``hens train --minutes 15 --rollout 4`` (width 64, 4 blocks, full
   resolution); area-weighted RMSE of z500 and t2m at 1, 3 and 5 days on the held-out block
   (starts every 12 h) against persistence and climatology (ratios < 1 beat them).
3. ``stochastic``: ``hens train --stochastic --minutes 15 --rollout 6 --scale-factor 2``; 16
   noise seeds per start (starts every 48 h); spread/skill at 1, 3 and 5 days (1 = reliable).

Existing checkpoints in ``--out`` are reused (delete them to retrain). Results append to
``benchmarks/results/train_<device>.csv``.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from _results import append_rows, results_path


def hens(args: list[str], ranks: int = 1) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if ranks == 1:
        cmd = [sys.executable, "-m", "hens.pipelines.cli", *args]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ranks}",
               f"--master_port={port}", "-m", "hens.pipelines.cli", *args]
    print("$", " ".join(cmd[-len(args) - 1 :]), flush=True)
    subprocess.run(cmd, env=env, check=True)


def ddp(data: str, out: Path, steps: int) -> dict:
    from hens.models.checkpoint import load_checkpoint

    per_step = {}
    for ranks in (1, 2):
        path = out / f"ddp{ranks}.pt"
        hens(["train", "--data", data, "--out", str(path), "--steps", str(steps), "--batch", "8",
              "--no-progress", "--overwrite"], ranks=ranks)
        per_step[ranks] = load_checkpoint(path).extra["seconds_per_step"]  # excludes loading and saving
    ratio = per_step[2] / per_step[1]
    print(f"training step, global batch 8: 1 rank {per_step[1]:.3f} s, 2 ranks {per_step[2]:.3f} s, ratio {ratio:.2f}")
    return {"step_s_1rank": round(per_step[1], 4), "step_s_2ranks": round(per_step[2], 4), "ddp_ratio": round(ratio, 3)}


def lazy_vs_memory(data: str, out: Path, steps: int, rounds: int = 6) -> dict:
    """Mean step time of lazy and in-memory batches, the same runs alternated in rounds."""
    import torch

    from hens.forecast.sources import open_source
    from hens.models.runtime import Distributed
    from hens.models.training import Run, TrainConfig

    torch.set_num_threads(1)
    source = open_source(data)
    cfg = TrainConfig(data=(data,), out=out / "lazy.pt", steps=10**6, loss="amse", scale_factor=2, progress=False)
    runs = {name: Run(cfg, Distributed(), source, in_memory=name == "memory") for name in ("lazy", "memory")}
    seconds = {name: 0.0 for name in runs}
    for name, run in runs.items():  # warm-up: allocator, first prefetches
        for _ in range(5):
            run.train_step()
    for _ in range(rounds):
        for name, run in runs.items():
            began = time.perf_counter()
            for _ in range(steps):
                run.train_step()
            seconds[name] += time.perf_counter() - began
    for run in runs.values():
        run.close()
    assert runs["lazy"].train_loss == runs["memory"].train_loss  # the reference: the same batches to the bit
    lazy, memory = (seconds[n] / (rounds * steps) for n in ("lazy", "memory"))
    load = os.getloadavg()[0]
    print(f"training step (demo size): lazy {lazy:.4f} s, in memory {memory:.4f} s, ratio {lazy / memory:.3f} "
          f"(load average {load:.2f} on {os.cpu_count()} cores)")
    return {"lazy_step_s": round(lazy, 4), "memory_step_s": round(memory, 4), "lazy_over_memory": round(lazy / memory, 3),
            "lazy_load_1min": round(load, 2)}


RECIPES = {
    "deterministic": (["--rollout", "4"], 1, 12),
    "stochastic": (["--stochastic", "--rollout", "6", "--scale-factor", "2"], 16, 48),
}


def skill(data: str, ckpt_path: Path, members: int, every_hours: int) -> dict:
    from hens.forecast.sources import open_source
    from hens.forecast.stats import open_world_stats
    from hens.models.checkpoint import load_checkpoint
    from hens.models.training.skill import evaluate, held_out_starts, world_climatology

    ckpt = load_checkpoint(ckpt_path)
    source = open_source(data)
    starts = held_out_starts(ckpt, source, max_lead_days=5.0, every_hours=every_hours)
    result = evaluate(ckpt, source, starts, members=members,
                      climatology=world_climatology(open_world_stats(data), ckpt.channels))
    print(result.table(["z500", "t2m"]))
    row = {"steps": ckpt.extra["steps"], "train_minutes": round(ckpt.extra["wall_seconds"] / 60, 2)}
    for c in ("z500", "t2m"):
        k = result.channels.index(c)
        for i, lead in enumerate(result.lead_days):
            tag = f"{c}_{lead:g}d"
            row[f"{tag}_vs_persistence"] = round(float(result.model[i, k] / result.persistence[i, k]), 3)
            row[f"{tag}_vs_climatology"] = round(float(result.model[i, k] / result.climatology[i, k]), 3)
            if result.spread is not None:
                row[f"{tag}_spread_skill"] = round(float(result.spread_skill[i, k]), 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="world store (with its .stats.zarr)")
    parser.add_argument("--out", type=Path, default=Path("bench-train"))
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--ddp-steps", type=int, default=60)
    parser.add_argument("--lazy-steps", type=int, default=50, help="steps per round of the lazy section (6 rounds)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["lazy", "ddp", "deterministic", "stochastic"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    row: dict = {"device": platform.processor() or platform.machine(), "time": time.strftime("%Y-%m-%dT%H:%M")}
    if "lazy" not in args.skip:
        row.update(lazy_vs_memory(args.data, args.out, args.lazy_steps))
    if "ddp" not in args.skip:
        row.update(ddp(args.data, args.out, args.ddp_steps))
    for kind in ("deterministic", "stochastic"):
        if kind in args.skip:
            continue
        path = args.out / f"{kind}.pt"
        options, members, every_hours = RECIPES[kind]
        if not path.exists():
            hens(["train", "--data", args.data, "--out", str(path), "--seed", "0", "--minutes", str(args.minutes),
                  "--no-progress", *options])
        print(f"--- {kind}")
        row.update({f"{kind}_{k}": v for k, v in skill(args.data, path, members, every_hours).items()})
    # long format: one metric per row, so any subset of the sections shares one header
    metrics = [{"device": row["device"], "time": row["time"], "metric": key, "value": value}
               for key, value in row.items() if key not in ("device", "time")]
    append_rows(results_path("train", row["device"]), metrics)


if __name__ == "__main__":
    main()
