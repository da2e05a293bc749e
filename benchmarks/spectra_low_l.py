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
4-year world of docs/models.md peaks at 110) and each channel's worst members / window without them;
the zonal mean of ``--channel`` (a zonal-mean meridional wind for v500) against the truth's
from lead 0 to the chosen lead (docs/models.md, "Input noise"); with ``--bootstrap N``, how much
of each channel's worst members / window is the sample of initial times: its 5, 50 and 95 %
points over N draws of the initial times with replacement (the window then the mean of the
drawn times' own windows) and the fraction of draws above the demo's 20 %.
"""

from __future__ import annotations

import argparse

import numpy as np
import xarray as xr

from hens.forecast.store_reader import global_grid, open_store
from hens.forecast.types import STEP, STEPS_PER_DAY
from hens.pipelines.demo.summary import SPECTRUM_TOLERANCE, reference_spectrum, resampled_spectrum_errors
from hens.pipelines.world import load_world
from hens.scoring.spectra import power_spectrum
from hens.scoring.weights import area_weights

BAND = slice(1, 11)  # l = 1..10, the demo's check on the T21 world


def l1_split(field: xr.DataArray, total: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Power at l = 1 in m = 0 and in m = 1 of ``field`` (sr x units^2), given its total
    spectrum ``total`` (:func:`hens.scoring.spectra.power_spectrum`): with l <= 1 the zonal
    spectrum's m = 1 is l = 1's alone, and m = 0 is the rest of l = 1."""
    m1 = power_spectrum(field, kind="zonal", lmax=2).isel(wavenumber=1)
    return total.isel(wavenumber=1) - m1, m1


def zonal_mean_rms(field: xr.DataArray) -> float:
    """Area-weighted rms of the zonal mean of ``field`` over every other dim (its units)."""
    zonal = field.mean("lon")
    return float(np.sqrt((zonal**2).weighted(area_weights(zonal["lat"])).mean()))


def _row(label: str, values: np.ndarray) -> str:
    return f"  {label:<22}" + " ".join(f"{v:5.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store")
    parser.add_argument("world")
    parser.add_argument("--lead-days", type=int, default=10)
    parser.add_argument("--channel", default="v500")
    parser.add_argument("--runaway-speed", type=float, default=120.0)
    parser.add_argument("--bootstrap", type=int, default=0, help="draws of the initial times (0: none)")
    args = parser.parse_args()

    store = open_store(args.store)
    if "u500" not in store:
        parser.error(f"{args.store} keeps no u500, which the runaway check reads")
    ds = store.sel(lead_time=np.timedelta64(24 * args.lead_days, "h"))
    global_grid(ds, args.store, "spectra_low_l")  # one line for a regional store
    valid = ds["init_time"].values + ds["lead_time"].values
    world = load_world(args.world)
    truth = world.sel(time=valid)
    if args.channel not in truth["channel"].values:
        parser.error(f"--channel {args.channel} is not a channel of {args.world}")
    window = reference_spectrum(args.world, valid)
    print(f"{args.store}, day {args.lead_days}: power / truth's at l = 1..10")
    speed = np.abs(store["u500"].sel(lead_time=slice(None, ds["lead_time"].values)).load())
    steady = speed.max(("lead_time", "lat", "lon")) <= args.runaway_speed
    without = {}
    for ch in map(str, truth["channel"].values):
        members = ds[ch].load()
        mean, valid_truth = members.mean("member"), truth.sel(channel=ch)
        power, power_mean, power_valid = map(power_spectrum, (members, mean, valid_truth))
        p_window = window.sel(channel=ch).values[BAND]
        p_members = power.mean(("init_time", "member")).values[BAND]
        without[ch] = power.where(steady).mean(("init_time", "member")).values[BAND] / p_window
        p_valid = power_valid.mean("time").values[BAND]
        m0, m1 = l1_split(members, power)
        t0, t1 = l1_split(valid_truth, power_valid)
        if ch == args.channel:  # kept for the per-initial-time lines
            per_init = (m1.mean("member").values, l1_split(mean, power_mean)[1].values, t1.values)
        print(f"{ch}: worst |members / window - 1| {np.abs(p_members / p_window - 1).max():.3f}")
        print(_row("members / window", p_members / p_window))
        print(_row("members / valid-time", p_members / p_valid))
        print(_row("mean / valid-time", power_mean.mean("init_time").values[BAND] / p_valid))
        print(f"  l = 1: m = 0 members {float(m0.mean()):.4g}, truth {float(t0.mean()):.4g}; "
              f"m = 1 members {float(m1.mean()):.4g}, truth {float(t1.mean()):.4g}")
    print(f"{args.channel} l = 1, m = 1 per initial time (valid time: members, their mean, truth)")
    for t, *powers in zip(valid, *per_init):
        print(f"  {str(t)[:10]}  " + " ".join(f"{p:7.2f}" for p in powers))
    print(f"members with |u500| > {args.runaway_speed:g} m s-1 by day {args.lead_days}: "
          f"{int((~steady).sum())} of {steady.size}; without them, worst |members / window - 1| (at l = 1):")
    for ch, ratio in without.items():
        print(f"  {ch}: {np.abs(ratio - 1).max():.3f} ({ratio[0]:.2f})")
    print(f"zonal-mean {args.channel}, area-weighted rms (lead: members, truth)")
    for lead in np.unique(STEP * np.array([0, 1, STEPS_PER_DAY, STEPS_PER_DAY * args.lead_days])):
        at = store[args.channel].sel(lead_time=lead).load()
        truth_at = world.sel(time=at["init_time"].values + lead, channel=args.channel)
        print(f"  {int(lead / np.timedelta64(1, 'h')):4d} h  {zonal_mean_rms(at):6.3f}  {zonal_mean_rms(truth_at):6.3f}")
    if args.bootstrap > 0:
        bootstrap(args.store, args.world, list(map(str, truth["channel"].values)), args.bootstrap, ds["lead_time"].values)


def bootstrap(store: str, world: str, channels: list[str], draws: int, lead: np.timedelta64) -> None:
    """Print the 5 / 50 / 95 % points of each channel's worst |members / window - 1| over
    ``draws`` resamples of the initial times at ``lead``, and the fraction of draws above the demo's
    tolerance (:func:`hens.pipelines.demo.summary.resampled_spectrum_errors`)."""
    worst = resampled_spectrum_errors(store, world, channels, band=BAND, draws=draws, lead=lead)
    print(f"worst |members / window - 1| over {draws} draws of the initial times: "
          f"5 / 50 / 95 %, fraction of draws > {SPECTRUM_TOLERANCE}")
    for ch, w in worst.items():
        lo, mid, hi = np.percentile(w.values, [5, 50, 95])
        print(f"  {ch}: {lo:.3f} / {mid:.3f} / {hi:.3f}, {float((w > SPECTRUM_TOLERANCE).mean()):.2f}")

if __name__ == "__main__":
    main()
