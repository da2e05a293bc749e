"""The stochastic SFNO's training recipe on the world: spectral CRPS weight and rollout fine-tuning.

Run (one core per variant; ``--jobs 2`` trains two at a time):

    hens world --out world.zarr --days 730 --seed 0
    OMP_NUM_THREADS=1 python benchmarks/bench_recipe.py --data world.zarr --out bench-recipe --jobs 2

Trains one stochastic SFNO per variant with the same seed (``--seed``, default 1000), data
and number of optimizer steps (``hens train --stochastic --scale-factor 2 --steps N``, with
AR(1) noise at the encoder, the defaults), the variants differing only in the weight of
FourCastNet 3's spectral CRPS term next to the almost-fair CRPS (``--spectral-weight``) and in
the steps unrolled in the last quarter (``--rollout``). Each is then rolled out with
``--members`` members from held-out starts (every 96 h of the validation block) and scored for
z500, u500, v500 and t2m at 1, 3, 5 and 10 days: fair CRPS, spread/skill (1 = reliable) and
the members' power spectrum against the truth's at the same valid times (``max_l |member /
truth - 1|`` over l = 1..T/2 for the world's truncation T, the check of the README's results;
``hens.models.training.skill.Skill.spectrum_error``). Existing checkpoints in ``--out`` are
reused. Results append to ``benchmarks/results/recipe_<device>.csv``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _results import append_rows, results_path

#: name -> (rollout steps, spectral CRPS weight)
VARIANTS = {
    "r6-s0.1": (6, 0.1),
    "r1-s0.1": (1, 0.1),
    "r1-s0": (1, 0.0),
    "r1-s1": (1, 1.0),
    "r6-s1": (6, 1.0),
    "r6-s3": (6, 3.0),
}
CHANNELS = ("z500", "u500", "v500", "t2m")
#: training seed of the first search; other seeds' checkpoints carry theirs in the file name
DEFAULT_SEED = 1000
LEAD_DAYS = (1.0, 3.0, 5.0, 10.0)


def train(data: str, path: Path, rollout: int, weight: float, steps: int, seed: int) -> None:
    args = ["train", "--data", data, "--out", str(path), "--seed", str(seed), "--steps", str(steps), "--stochastic",
            "--scale-factor", "2", "--rollout", str(rollout), "--spectral-weight", str(weight), "--no-progress"]
    print("$ hens", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "hens.pipelines.cli", *args], check=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)


def score(data: str, path: Path, members: int) -> list[dict]:
    from hens.forecast.sources import open_source
    from hens.models.checkpoint import load_checkpoint
    from hens.models.training.skill import evaluate, held_out_starts
    from hens.pipelines.demo.summary import world_truncation

    ckpt = load_checkpoint(path)
    source = open_source(data)
    starts = held_out_starts(ckpt, source, max_lead_days=max(LEAD_DAYS), every_hours=96)
    result = evaluate(ckpt, source, starts, lead_days=LEAD_DAYS, members=members, spectra=True)
    top = (world_truncation(Path(data)) or source.grid.nlat) // 2
    rows = [{**row, "spectrum_lmax": top, "members": members, "steps": ckpt.extra["steps"],
             "train_minutes": round(ckpt.extra["wall_seconds"] / 60, 2)}
            for row in result.records(CHANNELS, spectrum_lmax=top)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="world store")
    parser.add_argument("--out", type=Path, default=Path("bench-recipe"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=1, help="variants trained side by side (one core each)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="training seed of every variant")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    paths = {n: args.out / (f"{n}.pt" if args.seed == DEFAULT_SEED else f"{n}-seed{args.seed}.pt") for n in args.variants}
    missing = [n for n in args.variants if not paths[n].exists()]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda n: train(args.data, paths[n], *VARIANTS[n], args.steps, args.seed), missing))
    stamp = {"device": platform.processor() or platform.machine(), "time": time.strftime("%Y-%m-%dT%H:%M")}
    rows = []
    for name in args.variants:
        rollout, weight = VARIANTS[name]
        found = score(args.data, paths[name], args.members)
        for c in CHANNELS:
            line = " | ".join(f"{r['crps']:.4g} ssr {r['spread_skill']:.2f} spec {r['spectrum_error']:.2f}"
                              for r in found if r["channel"] == c)
            print(f"{name:8s} {c:5s} d1/3/5/10: {line}", flush=True)
        rows += [{**stamp, "variant": name, "rollout": rollout, "spectral_weight": weight, **row, "seed": args.seed}
                 for row in found]
    append_rows(results_path("recipe", stamp["device"]), rows)


if __name__ == "__main__":
    main()
