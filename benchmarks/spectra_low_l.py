"""Where an ensemble's members carry too much power at the largest scales (docs/models.md,
"Where the members' excess v500 power at l = 1 comes from").

Run on an ensemble store and the world it verifies against, e.g. a science run's:

    OMP_NUM_THREADS=1 python benchmarks/spectra_low_l.py science/ensembles/bred.zarr science/world.zarr

Prints, at one lead (``--lead-days``, default 10) and for every channel, the members' power
per total wavenumber l = 1..10 over the truth's, against the demo's reference (the truth
within 7 days of the valid times, :func:`hens.pipelines.demo.summary.reference_spectrum`) and
against the truth at the valid times, the ensemble mean's power over the latter, and the
l = 1 power split into m = 0 and m = 1 (sr, the units of :mod:`hens.scoring.spectra`); then,
for ``--channel`` (default v500), the l = 1, m = 1 power per initial time; last, the members
that run away (``|u500|`` above ``--runaway-speed`` m s-1 at some lead up to the chosen one; the
4-year world of docs/models.md peaks at 110) and each channel's worst members / window without them.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from hens.forecast.grids import Grid
from hens.forecast.store_reader import global_grid, open_store
from hens.pipelines.demo.summary import reference_spectrum
from hens.pipelines.world import load_world
from hens.scoring.spectra import power_spectrum

BAND = slice(1, 11)  # l = 1..10, the demo's check on the T21 world


def transform(grid: Grid) -> Any:
    """The orthonormal real SHT of ``grid`` in float64 (torch-harmonics), built once per run."""
    from torch_harmonics import RealSHT

    return RealSHT(grid.nlat, grid.nlon, grid=grid.sht_grid, norm="ortho").double()


def l1_split(fields: np.ndarray, sht: Any) -> tuple[np.ndarray, np.ndarray]:
    """Power at l = 1 in m = 0 and in m = 1 of fields ``(..., lat, lon)`` (north first), sr x units^2."""
    import torch

    c = sht(torch.from_numpy(np.ascontiguousarray(fields, dtype=np.float64)))
    return (c[..., 1, 0].abs() ** 2).numpy(), (2 * c[..., 1, 1].abs() ** 2).numpy()


def _row(label: str, values: np.ndarray) -> str:
    return f"  {label:<22}" + " ".join(f"{v:5.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store")
    parser.add_argument("world")
    parser.add_argument("--lead-days", type=int, default=10)
    parser.add_argument("--channel", default="v500")
    parser.add_argument("--runaway-speed", type=float, default=120.0)
    args = parser.parse_args()

    store = open_store(args.store)
    ds = store.sel(lead_time=np.timedelta64(24 * args.lead_days, "h"))
    sht = transform(global_grid(ds, args.store, "spectra_low_l"))
    valid = ds["init_time"].values + ds["lead_time"].values
    truth = load_world(args.world).sel(time=valid)
    window = reference_spectrum(args.world, valid)
    if args.channel not in truth["channel"].values:
        parser.error(f"--channel {args.channel} is not a channel of {args.world}")
    if "u500" not in store:
        parser.error(f"{args.store} keeps no u500, which the runaway check reads")
    print(f"{args.store}, day {args.lead_days}: power / truth's at l = 1..10")
    speed = np.abs(store["u500"].sel(lead_time=slice(None, ds["lead_time"].values)).load())
    steady = speed.max(("lead_time", "lat", "lon")) <= args.runaway_speed
    without = {}
    for ch in map(str, truth["channel"].values):
        members = ds[ch].load()
        power = power_spectrum(members)
        p_members = power.mean(("init_time", "member")).values[BAND]
        without[ch] = (power.where(steady).sum(("init_time", "member")) / steady.sum()).values[BAND]
        p_mean = power_spectrum(members.mean("member")).mean("init_time").values[BAND]
        p_valid = power_spectrum(truth.sel(channel=ch)).mean("time").values[BAND]
        p_window = window.sel(channel=ch).values[BAND]
        m0, m1 = l1_split(members.values, sht)
        t0, t1 = l1_split(truth.sel(channel=ch).values, sht)
        if ch == args.channel:  # kept for the per-initial-time lines
            per_init = (m1.mean(axis=1), l1_split(members.mean("member").values, sht)[1], t1)
        print(f"{ch}: worst |members / window - 1| {np.abs(p_members / p_window - 1).max():.3f}")
        print(_row("members / window", p_members / p_window))
        print(_row("members / valid-time", p_members / p_valid))
        print(_row("mean / valid-time", p_mean / p_valid))
        print(f"  l = 1: m = 0 members {m0.mean():.4g}, truth {t0.mean():.4g}; "
              f"m = 1 members {m1.mean():.4g}, truth {t1.mean():.4g}")
    print(f"{args.channel} l = 1, m = 1 per initial time (valid time: members, their mean, truth)")
    for t, *powers in zip(valid, *per_init):
        print(f"  {str(t)[:10]}  " + " ".join(f"{p:7.2f}" for p in powers))
    print(f"members with |u500| > {args.runaway_speed:g} m s-1 by day {args.lead_days}: "
          f"{int((~steady).sum())} of {steady.size}; without them, worst |members / window - 1| (at l = 1):")
    for ch, p in without.items():
        ratio = p / window.sel(channel=ch).values[BAND]
        print(f"  {ch}: {np.abs(ratio - 1).max():.3f} ({ratio[0]:.2f})")


if __name__ == "__main__":
    main()
