"""Is one demo ensemble's CRPS above another's by more than the sample of initial times?
(docs/models.md, "How much of the spectral and CRPS checks is the sample of initial times").

Run on a demo or science folder (``hens demo --out DIR``):

    OMP_NUM_THREADS=1 python benchmarks/crps_by_init.py DIR

Scores every initial time of ``DIR/ensembles/{bred,stochastic}.zarr`` against ``DIR/world.zarr``
(area-weighted CRPS, :func:`hens.scoring.crps.crps`) at days 1..10 for z500 and t2m, then prints
the pooled ratio stochastic / bred (the demo's scores give the same) and the fraction of
``--draws`` paired draws of the initial times, with replacement, in which the stochastic
ensemble's mean CRPS is above the bred-vector one's (near 0 or 1: resolved; near 0.5: not).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr

from hens.forecast.store_reader import open_store
from hens.forecast.types import STEP, STEPS_PER_DAY
from hens.pipelines.world import load_world
from hens.scoring.crps import crps

CHANNELS = ("z500", "t2m")


def crps_by_init(store: Path, truth: xr.DataArray, days: range) -> dict[str, np.ndarray]:
    """Area-weighted CRPS ``(day, init_time)`` per channel of ``CHANNELS`` against ``truth`` (the
    world, :func:`hens.pipelines.world.load_world`), in the channel's units."""
    forecast = open_store(store)
    out = {}
    for ch in CHANNELS:
        rows = []
        for day in days:
            lead = STEP * STEPS_PER_DAY * day
            members = forecast[ch].sel(lead_time=lead).load()
            inits = members["init_time"].values
            verifying = (truth.sel(time=inits + lead, channel=ch, drop=True)
                         .rename(time="init_time").assign_coords(init_time=inits))
            rows.append(crps(members, verifying, "member", dim=["lat", "lon"]).values)
        out[ch] = np.stack(rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--draws", type=int, default=2000)
    args = parser.parse_args()
    days = range(1, 11)
    world = load_world(args.folder / "world.zarr")
    bred, stochastic = (crps_by_init(args.folder / "ensembles" / f"{e}.zarr", world, days)
                        for e in ("bred", "stochastic"))
    n = next(iter(bred.values())).shape[1]
    picks = np.random.default_rng(0).integers(0, n, size=(args.draws, n))
    print(f"{args.folder}: stochastic / bred CRPS at days {days.start}-{days.stop - 1}; fraction of "
          f"{args.draws} draws of the {n} initial times with stochastic > bred")
    for ch in CHANNELS:
        b, s = bred[ch], stochastic[ch]
        above = (s[:, picks].mean(-1) > b[:, picks].mean(-1)).mean(-1)
        print(f"  {ch} ratio    " + " ".join(f"{r:6.3f}" for r in s.mean(1) / b.mean(1)))
        print(f"  {ch} P(above) " + " ".join(f"{p:6.2f}" for p in above))


if __name__ == "__main__":
    main()
