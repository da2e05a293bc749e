"""Stochastic SFNO noise on the world: where it enters (input / norm / both) and its time correlation.

Run (about 20 minutes on one busy core with the defaults):

    OMP_NUM_THREADS=1 python benchmarks/bench_noise.py --data world.zarr --out bench-noise

Trains one stochastic SFNO per variant with the same seed, data, steps and recipe (``hens
train --stochastic --scale-factor 2 --rollout 4 --steps N``, width ``--embed-dim``), the
variants differing only in ``--injection`` and ``--noise-decorrelation-hours``; then rolls
``--members`` members out from held-out starts (every 48 h of the validation block) and
scores z500 and t2m at 1, 3 and 5 days: fair CRPS, ensemble-mean RMSE and spread/skill (1 =
reliable). Existing checkpoints in ``--out`` are reused. Results append to
``benchmarks/results/noise_<device>.csv``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from _results import append_rows, results_path

#: name -> (injection, decorrelation hours); "input-white" is the noise of earlier versions
VARIANTS = {
    "input-white": ("input", 0.0),
    "input": ("input", 6.0),
    "norm": ("norm", 6.0),
    "both": ("both", 6.0),
}


def train(data: str, path: Path, injection: str, hours: float, steps: int, embed_dim: int) -> None:
    args = ["train", "--data", data, "--out", str(path), "--seed", "0", "--steps", str(steps), "--stochastic",
            "--scale-factor", "2", "--rollout", "4", "--embed-dim", str(embed_dim), "--injection", injection,
            "--noise-decorrelation-hours", str(hours), "--no-progress"]
    print("$ hens", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "hens.pipelines.cli", *args], check=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})


def score(data: str, path: Path, members: int) -> list[dict]:
    from hens.forecast.sources import open_source
    from hens.models.checkpoint import load_checkpoint
    from hens.models.training.skill import evaluate, held_out_starts

    ckpt = load_checkpoint(path)
    source = open_source(data)
    starts = held_out_starts(ckpt, source, max_lead_days=5.0, every_hours=48)
    result = evaluate(ckpt, source, starts, members=members)
    print(result.table(["z500", "t2m"]), flush=True)
    rows = [{**row, "members": members, "steps": ckpt.extra["steps"],
             "train_minutes": round(ckpt.extra["wall_seconds"] / 60, 2)} for row in result.records(["z500", "t2m"])]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="world store")
    parser.add_argument("--out", type=Path, default=Path("bench-noise"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--embed-dim", type=int, default=32)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = {"device": platform.processor() or platform.machine(), "time": time.strftime("%Y-%m-%dT%H:%M")}
    rows = []
    for name in args.variants:
        injection, hours = VARIANTS[name]
        path = args.out / f"{name}.pt"
        if not path.exists():
            train(args.data, path, injection, hours, args.steps, args.embed_dim)
        print(f"--- {name}: injection {injection}, decorrelation {hours:g} h", flush=True)
        rows += [{**stamp, "variant": name, "injection": injection, "decorrelation_hours": hours, **row}
                 for row in score(args.data, path, args.members)]
    append_rows(results_path("noise", stamp["device"]), rows)


if __name__ == "__main__":
    main()
