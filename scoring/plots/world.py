"""Quick-look figures (matplotlib, Agg backend): channel maps, global means, energy spectra.

Each function draws one figure from hens-layout data (latitude north first) and writes a PNG.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hens.forecast.channels import get_channel
from hens.scoring.plots.figure import new_figure, save_figure

if TYPE_CHECKING:
    import xarray as xr

    from hens.forecast.grids import Grid


def plot_map(field: xr.DataArray, path: str | Path, *, title: str = "") -> Path:
    """Map of one channel ``(lat, lon)``; the colour bar is labelled with the channel's units."""
    channel = get_channel(str(field["channel"].values))
    fig = new_figure(7.0, 3.6)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(field["lon"].values, field["lat"].values, field.values, shading="nearest", cmap="RdYlBu_r")
    fig.colorbar(mesh, ax=ax, label=f"{channel.name} ({channel.units})", shrink=0.9)
    ax.set(xlabel="longitude (deg E)", ylabel="latitude (deg N)", title=title or channel.name,
           xlim=(0, 360), ylim=(-90, 90), aspect="equal")
    return save_figure(fig, path)


def plot_global_means(data: xr.DataArray, grid: Grid, path: str | Path) -> Path:
    """Area-weighted global mean of each channel of ``(time, channel, lat, lon)`` against time."""
    import xarray as xr

    weights = xr.DataArray(grid.area_weights, dims="lat")
    means = data.weighted(weights).mean(("lat", "lon")).compute()
    channels = [str(c) for c in means["channel"].values]
    fig = new_figure(8.0, 1.8 * len(channels))
    axes = fig.subplots(len(channels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, name in zip(axes, channels, strict=True):
        ax.plot(means["time"].values, means.sel(channel=name).values, lw=0.8)
        ax.set_ylabel(f"{name} ({get_channel(name).units})")
    axes[0].set_title("area-weighted global mean")
    return save_figure(fig, path)


def plot_energy_spectra(spectra: Mapping[str, np.ndarray], path: str | Path, *, ylabel: str = "kinetic energy (J kg-1)") -> Path:
    """Log-log plot of spectra per degree ``l`` (degree 0 skipped) with an ``l^-3`` guide."""
    fig = new_figure(5.5, 4.0)
    ax = fig.add_subplot()
    for label, spectrum in spectra.items():
        l = np.arange(1, len(spectrum))
        ax.loglog(l, spectrum[1:], label=label)
    first = next(iter(spectra.values()))
    l = np.arange(3, len(first))
    if l.size:
        ax.loglog(l, first[3] * (l / 3.0) ** -3.0, "k--", lw=0.8, label="l^-3")
    ax.set(xlabel="spherical harmonic degree l", ylabel=ylabel)
    ax.legend()
    return save_figure(fig, path)
