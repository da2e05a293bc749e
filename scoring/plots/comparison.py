"""Figures comparing the scores of several ensembles (``hens demo``'s three), as PNGs.

``comparison_errors.png``   CRPS of each ensemble and its ensemble-mean MAE against lead,
                            with persistence MAE (the CRPS of the analysis kept fixed)
``comparison_calibration.png`` spread-skill ratio against lead (1 = calibrated; lead 0 left out)
``comparison_spectra.png``  member and ensemble-mean power spectra over the truth's at the
                            longest lead, with the +/-20 % band (the truth: the verifying
                            fields, or a given reference spectrum per ensemble)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from hens.scoring.plots.figure import new_figure, save_figure
from hens.scoring.plots.scores import forecast_leads, open_scores


def _days(ds: xr.Dataset) -> np.ndarray:
    return ds["lead_time"].values / np.timedelta64(1, "D")


def plot_comparison(
    stores: Mapping[str, str | Path], out: str | Path, *,
    references: Mapping[str, xr.DataArray] | None = None, truncation: int | None = None,
) -> list[Path]:
    """Draw the comparison figures of the scores stores ``{name: path}`` into ``out``.

    ``references``: per ensemble, a truth spectrum ``(channel, wavenumber)`` to divide by
    instead of the verifying fields' (e.g. :func:`hens.pipelines.demo.summary.reference_spectrum`);
    ``truncation``: spectra drawn for l < truncation (default: every wavenumber).
    """
    scores = {name: open_scores(path) for name, path in stores.items()}
    out = Path(out)
    first = next(iter(scores.values()))
    channels = [str(c) for c in first["channel"].values]
    colours = {name: f"C{i}" for i, name in enumerate(scores)}

    fig = new_figure(4.2 * len(channels), 3.6)
    for ax, ch in zip(fig.subplots(1, len(channels), squeeze=False)[0], channels, strict=True):
        for name, ds in scores.items():
            s = ds.sel(channel=ch)
            ax.plot(_days(ds), s["crps"], "o-", ms=3, color=colours[name], label=f"{name} CRPS")
            ax.plot(_days(ds), s["mae"], "--", color=colours[name], label=f"{name} mean MAE")
        ax.plot(_days(first), first["persistence_mae"].sel(channel=ch), "k:", label="persistence MAE")
        ax.set(xlabel="lead (days)", ylabel=f"{ch} ({first['channel_units'].sel(channel=ch).item()})", title=ch)
    ax.legend(fontsize=6)
    errors = save_figure(fig, out / "comparison_errors.png")

    fig = new_figure(5.5, 3.6)
    ax = fig.add_subplot()
    for name, ds in scores.items():
        ds = forecast_leads(ds)
        for ch, style in zip(channels, ["o-", "s--", "^-.", "v:"], strict=False):
            ax.plot(_days(ds), ds["spread_skill_ratio"].sel(channel=ch), style, ms=3, color=colours[name],
                    label=f"{name}, {ch}")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")  # a ratio: 2 and 0.5 equally far from 1
    ax.set(xlabel="lead (days)", ylabel="spread-skill ratio", title="calibration (1 = spread matches error)")
    ax.legend(fontsize=6, ncol=2)
    calibration = save_figure(fig, out / "comparison_calibration.png")

    fig = new_figure(4.2 * len(channels), 3.6)
    for ax, ch in zip(fig.subplots(1, len(channels), squeeze=False)[0], channels, strict=True):
        for name, ds in scores.items():
            s = ds.sel(channel=ch).isel(lead_time=-1, wavenumber=slice(1, truncation))  # l = 0: the mean
            truth = (references[name].sel(channel=ch).isel(wavenumber=slice(1, truncation)).values
                     if references else s["spectrum_truth"].values)
            l = s["wavenumber"].values  # noqa: E741
            ax.semilogx(l, s["spectrum_members"].values / truth, "-", color=colours[name], label=f"{name} members")
            ax.semilogx(l, s["spectrum_ensemble_mean"].values / truth, "--", color=colours[name],
                        label=f"{name} mean")
        ax.axhspan(0.8, 1.2, color="0.85", zorder=0, label="truth +/- 20 %")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set(xlabel="total wavenumber l", ylabel="power / truth power",
               title=f"{ch}, day {_days(first)[-1]:g}", ylim=(0.0, 1.6))
    ax.legend(fontsize=6)
    spectra = save_figure(fig, out / "comparison_spectra.png")
    return [errors, calibration, spectra]
