"""Figures of a scores store (:func:`hens.scoring.evaluate.score.score_ensemble`), as PNGs.

:func:`plot_scores` draws every figure the store has data for and returns their paths:

``errors.png``          RMSE (with spread and persistence) and CRPS (with persistence MAE,
                        the CRPS of a single forecast) against lead time, one row per channel
``spread_skill.png``    spread-skill ratio against lead time (1 = calibrated; lead 0 left out)
``rank_histograms.png`` relative frequency x (M + 1) of each rank at up to four leads (flat at 1)
``spectra_<ch>.png``    member-mean, ensemble-mean and truth spectra by lead, and their ratios
                        to the truth on log axes
``efi_<ch>.png``        EFI map of the first initial time at the longest lead
``reliability.png``     reliability diagram per channel and threshold, pooled over leads > 0,
                        with the sharpness histogram
``outliers.png``        outlier fraction against lead and against ensemble size (random
                        balanced sub-ensembles: mean and +-1 std over draws), with the
                        2 / (M + 1) expectation; best-member MAE against ensemble size
``tails.png``           HENS Part II sigma diagnostics: frequency of |y - xbar| > k s
                        (k = 2, 3, 4) against lead with the Gaussian 2 (1 - Phi(k)), and the
                        distribution of max_m |z_m| with its Gaussian expectation
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from hens.forecast.errors import DataError
from hens.scoring.plots.figure import new_figure, save_figure

_TITLE = "hens ensemble scores"


def open_scores(path: str | Path) -> xr.Dataset:
    """Open a scores store; :class:`DataError` unless it was written by ``hens score``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such scores store")
    try:
        ds = xr.open_zarr(path).load()
    except Exception as err:  # any unreadable store is a user-facing data problem
        raise DataError(f"{path} is not a readable Zarr store ({type(err).__name__}); "
                        "pass a store written by `hens score`") from None
    if ds.attrs.get("title") != _TITLE or "rmse" not in ds:
        raise DataError(f"{path} is not a hens scores store; write one with `hens score`")
    return ds


def _hours(ds: xr.Dataset) -> np.ndarray:
    return ds["lead_time"].values / np.timedelta64(1, "h")


def forecast_leads(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` without lead time 0 (unless it is the only lead): there the members are the
    perturbed analyses and the truth is the analysis, so the ensemble mean's error is 0 or
    rounding (spread/skill off any scale) and ranks, outliers and tails say nothing of skill."""
    later = ds["lead_time"] > ds["lead_time"].dtype.type(0)
    return ds.sel(lead_time=later) if bool(later.any()) else ds


def _later_leads(ds: xr.Dataset, most: int) -> list[int]:
    """Indices of up to ``most`` leads spread over the range, lead 0 left out if others exist."""
    n = ds.sizes["lead_time"]
    first = 1 if n > 1 else 0
    picks = np.unique(np.round(np.linspace(first, n - 1, min(most, n - first))).astype(int))
    return [int(i) for i in picks]


def _label(ds: xr.Dataset, channel: str) -> str:
    return f"{channel} ({ds['channel_units'].sel(channel=channel).item()})"


def plot_errors(ds: xr.Dataset, path: Path) -> Path:
    h = _hours(ds)
    channels = [str(c) for c in ds["channel"].values]
    fig = new_figure(9.0, 2.6 * len(channels))
    axes = fig.subplots(len(channels), 2, squeeze=False)
    for row, ch in zip(axes, channels, strict=True):
        s = ds.sel(channel=ch)
        row[0].plot(h, s["rmse"], "o-", label="ensemble-mean RMSE")
        row[0].plot(h, s["spread"], "s--", label="spread")
        row[0].plot(h, s["persistence_rmse"], "k:", label="persistence RMSE")
        row[1].plot(h, s["crps"], "o-", label="CRPS")
        row[1].plot(h, s["fair_crps"], "^--", label="fair CRPS")
        row[1].plot(h, s["persistence_mae"], "k:", label="persistence MAE (= CRPS)")
        for ax in row:
            ax.set(xlabel="lead time (h)", ylabel=_label(ds, ch))
            ax.legend(fontsize=7)
    axes[0, 0].set_title(f"RMSE and spread, M = {ds.attrs.get('ensemble_size')}")
    axes[0, 1].set_title("CRPS")
    return save_figure(fig, path)


def plot_spread_skill(ds: xr.Dataset, path: Path) -> Path:
    ds = forecast_leads(ds)
    fig = new_figure(5.5, 3.6)
    ax = fig.add_subplot()
    for ch in ds["channel"].values:
        ax.plot(_hours(ds), ds["spread_skill_ratio"].sel(channel=ch), "o-", label=str(ch))
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_yscale("log")  # a ratio: 2 and 0.5 equally far from 1
    ax.set(xlabel="lead time (h)", ylabel="sqrt((M+1)/M) spread / RMSE",
           title="spread-skill ratio (1 = calibrated)")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_rank_histograms(ds: xr.Dataset, path: Path) -> Path:
    leads = _later_leads(ds, 4)
    channels = [str(c) for c in ds["channel"].values]
    nbins = ds.sizes["rank"]
    fig = new_figure(2.6 * len(leads) + 0.6, 2.2 * len(channels))
    axes = fig.subplots(len(channels), len(leads), squeeze=False, sharey=True)
    for i, ch in enumerate(channels):
        for j, k in enumerate(leads):
            freq = ds["rank_histogram"].sel(channel=ch).isel(lead_time=k).values * nbins
            axes[i, j].bar(np.arange(nbins), freq, width=1.0, color="tab:blue", edgecolor="white")
            axes[i, j].axhline(1.0, color="k", lw=0.8, ls="--")
            axes[i, j].set_title(f"{ch}, {_hours(ds)[k]:g} h", fontsize=9)
            axes[i, j].set_xlabel("rank of the truth")
        axes[i, 0].set_ylabel("frequency x (M + 1)")
    return save_figure(fig, path)


def plot_channel_spectra(ds: xr.Dataset, channel: str, path: Path) -> Path:
    s = ds.sel(channel=channel)
    l = s["wavenumber"].values[1:]  # noqa: E741  (degree 0 is the mean)
    fig = new_figure(10.0, 4.0)
    ax, ratio = fig.subplots(1, 2)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for colour, k in zip(colours, _later_leads(ds, 4), strict=False):
        lead = f"{_hours(ds)[k]:g} h"
        sk = s.isel(lead_time=k)
        truth = sk["spectrum_truth"].values[1:]
        members, mean = sk["spectrum_members"].values[1:], sk["spectrum_ensemble_mean"].values[1:]
        ax.loglog(l, members, "-", color=colour, label=f"members, {lead}")
        ax.loglog(l, mean, "--", color=colour, label=f"ensemble mean, {lead}")
        ratio.loglog(l, members / truth, "-", color=colour, label=f"members / truth, {lead}")
        ratio.loglog(l, mean / truth, "--", color=colour, label=f"mean / truth, {lead}")
    ax.loglog(l, s["spectrum_truth"].isel(lead_time=-1).values[1:], "k:", label="truth (last lead)")
    ratio.axhline(1.0, color="k", lw=0.8)
    ax.set(xlabel="total wavenumber l", ylabel=f"E_l of {_label(ds, channel)}^2 sr",
           title=f"{channel}: power spectra")
    ratio.set(xlabel="total wavenumber l", ylabel="ratio to the truth spectrum",
              title="ratio to the truth (1 = same power)")
    ax.legend(fontsize=6)
    ratio.legend(fontsize=6)
    return save_figure(fig, path)


def plot_efi_map(ds: xr.Dataset, channel: str, path: Path) -> Path:
    field = ds["efi_map"].sel(channel=channel).isel(lead_time=-1)
    fig = new_figure(7.0, 3.6)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(ds["lon"].values, ds["lat"].values, field.values, shading="nearest",
                         cmap="RdBu_r", vmin=-1.0, vmax=1.0)
    fig.colorbar(mesh, ax=ax, label="EFI", shrink=0.9)
    ax.set(xlabel="longitude (deg E)", ylabel="latitude (deg N)", xlim=(0, 360), ylim=(-90, 90),
           aspect="equal", title=f"{channel} EFI, init {ds.attrs.get('first_init_time')}, "
                                 f"lead {_hours(ds)[-1]:g} h (analysis climate)")
    return save_figure(fig, path)


def plot_reliability(ds: xr.Dataset, path: Path) -> Path:
    channels = [str(c) for c in ds["channel"].values]
    levels = ds["threshold"].values
    later = forecast_leads(ds)
    fig = new_figure(3.4 * len(levels), 3.2 * len(channels))
    axes = fig.subplots(len(channels), len(levels), squeeze=False)
    for i, ch in enumerate(channels):
        for j, level in enumerate(levels):
            s = later.sel(channel=ch, threshold=level)
            count = s["reliability_count"].sum("lead_time")
            weighted = s[["reliability_forecast_probability", "reliability_observed_frequency"]]
            pooled = (weighted * s["reliability_count"]).sum("lead_time") / count
            p = pooled["reliability_forecast_probability"]
            o = pooled["reliability_observed_frequency"]
            ax = axes[i, j]
            ax.plot([0, 1], [0, 1], "k--", lw=0.8)
            ax.plot(p.values, o.values, "o-", color="tab:blue")
            ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="forecast probability",
                   ylabel="observed frequency",
                   title=f"{ch} > q{100 * level:g}")
            ax.set_box_aspect(1)
            sharp = ax.twinx()
            share = count.values / max(float(count.sum()), 1e-300)
            centre = 0.5 * (ds["bin_lower"].values + ds["bin_upper"].values)
            sharp.bar(centre, share, width=1.0 / len(centre), color="grey", alpha=0.3)
            sharp.set_yscale("log")
            sharp.set_ylabel("share of cases", fontsize=7)
    return save_figure(fig, path)


def plot_outliers(ds: xr.Dataset, path: Path) -> Path:
    fig = new_figure(13.0, 3.8)
    ax_lead, ax_size, ax_best = fig.subplots(1, 3)
    expected = ds.attrs.get("expected_outlier_fraction_full")
    sizes = ds["ensemble_size"].values
    for ch in ds["channel"].values:
        s, later = ds.sel(channel=ch), forecast_leads(ds.sel(channel=ch))
        ax_lead.plot(_hours(ds), s["outlier_fraction"], "o-", label=str(ch))
        subset = later["subset_outlier_fraction"].mean("lead_time")
        line = ax_size.loglog(sizes, subset, "o-", label=str(ch))[0]
        if "subset_outlier_fraction_spread" in s:
            err = later["subset_outlier_fraction_spread"].mean("lead_time")
            ax_size.fill_between(sizes, subset - err, subset + err, color=line.get_color(), alpha=0.2)
        best = later["best_member_mae"].mean("lead_time")
        line = ax_best.loglog(sizes, best / best.isel(ensemble_size=0), "o-", label=str(ch))[0]
        if "best_member_mae_spread" in s:
            err = later["best_member_mae_spread"].mean("lead_time")
            ax_best.fill_between(sizes, (best - err) / best.isel(ensemble_size=0),
                                 (best + err) / best.isel(ensemble_size=0), color=line.get_color(), alpha=0.2)
    if expected is not None:
        ax_lead.axhline(float(expected), color="k", ls="--", lw=0.8, label="2 / (M + 1)")
    ax_size.loglog(sizes, ds["expected_outlier_fraction"].values, "k--", label="2 / (M + 1)")
    ax_lead.set(xlabel="lead time (h)", ylabel="outlier fraction",
                title="truth outside the ensemble")
    ax_size.set(xlabel="ensemble size (balanced sub-ensembles)",
                ylabel="outlier fraction (leads > 0)", title="outliers vs ensemble size")
    ax_best.set(xlabel="ensemble size (balanced sub-ensembles)",
                ylabel=f"best-member MAE / MAE at M = {sizes[0]}", title="best-member skill")
    for ax in (ax_lead, ax_size, ax_best):
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_tails(ds: xr.Dataset, path: Path) -> Path:
    """k-sigma exceedance of the truth against lead, and the max-sigma distribution."""
    fig = new_figure(11.0, 3.8)
    ax_exc, ax_max = fig.subplots(1, 2)
    h = _hours(ds)
    for j, ch in enumerate(ds["channel"].values):
        s = ds.sel(channel=ch)
        for k, style in zip(ds["sigma"].values, ("o-", "s-", "^-"), strict=False):
            ax_exc.semilogy(h, s["sigma_exceedance"].sel(sigma=k), style, color=f"C{j}",
                            label=f"{ch}, k = {k:g}")
        hist = forecast_leads(s)["max_sigma_histogram"].mean("lead_time")
        ax_max.step(ds["sigma_bin"].values, hist, where="post", color=f"C{j}", label=str(ch))
    for k, ref in zip(ds["sigma"].values, ds["expected_sigma_exceedance"].values, strict=True):
        ax_exc.axhline(ref, color="k", ls="--", lw=0.8)
        ax_exc.annotate(f"2(1 - Phi({k:g}))", (h[0], ref), fontsize=6, va="bottom")
    expected = ds.attrs.get("expected_max_sigma_full")
    if expected is not None:
        ax_max.axvline(float(expected), color="k", ls="--", lw=0.8, label="Gaussian E max |z|")
    ax_exc.set(xlabel="lead time (h)", ylabel="share of cases", title="truth beyond k ensemble sigma")
    ax_max.set(xlabel="max_m |x_m - xbar| / s", ylabel="share of cases (leads > 0)",
               title=f"most extreme member, M = {ds.attrs.get('ensemble_size')}")
    ax_exc.legend(fontsize=6, ncol=2)
    ax_max.legend(fontsize=7)
    return save_figure(fig, path)


def plot_scores(scores: str | Path, out: str | Path) -> list[Path]:
    """Draw every figure the scores store has data for into the folder ``out`` (module
    docstring); existing PNGs of the same names are replaced. Returns the paths written."""
    ds = open_scores(scores)
    out = Path(out)
    written = [
        plot_errors(ds, out / "errors.png"),
        plot_spread_skill(ds, out / "spread_skill.png"),
        plot_rank_histograms(ds, out / "rank_histograms.png"),
        plot_outliers(ds, out / "outliers.png"),
    ]
    if "sigma_exceedance" in ds:
        written.append(plot_tails(ds, out / "tails.png"))
    if "reliability_count" in ds:
        written.append(plot_reliability(ds, out / "reliability.png"))
    for ch in map(str, ds["channel"].values):
        if "spectrum_truth" in ds:
            written.append(plot_channel_spectra(ds, ch, out / f"spectra_{ch}.png"))
        if "efi_map" in ds and np.isfinite(ds["efi_map"].sel(channel=ch).values).any():
            written.append(plot_efi_map(ds, ch, out / f"efi_{ch}.png"))
    return written
