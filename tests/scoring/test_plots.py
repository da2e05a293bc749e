"""Figures of scores: what they draw, not only that a PNG appears."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import hens.scoring.plots.comparison as comparison
import hens.scoring.plots.scores as scores


def _scores(leads_h: list[int]) -> xr.Dataset:
    lead = np.array(leads_h, dtype="timedelta64[h]").astype("timedelta64[ns]")
    rmse = np.array([1e-9] + [float(h) for h in leads_h[1:]])  # lead 0: the analysis against itself
    ssr = xr.DataArray(np.stack([0.5 / rmse, 0.4 / rmse]), dims=("channel", "lead_time"),
                       coords={"channel": ["z500", "t2m"], "lead_time": lead})
    return xr.Dataset({"spread_skill_ratio": ssr})


@pytest.mark.parametrize("draw", ["one", "comparison"])
def test_spread_skill_figures_leave_out_lead_zero(monkeypatch, tmp_path, draw):
    figures = []
    monkeypatch.setattr(scores, "save_figure", lambda fig, path: figures.append(fig) or path)
    monkeypatch.setattr(comparison, "save_figure", lambda fig, path: figures.append(fig) or path)
    ds = _scores([0, 6, 12, 18])
    if draw == "one":
        scores.plot_spread_skill(ds, tmp_path / "x.png")
        fig = figures[0]
    else:
        power = xr.DataArray(np.ones((2, 4, 5)), dims=("channel", "lead_time", "wavenumber"))
        full = ds.assign(crps=ds["spread_skill_ratio"], mae=ds["spread_skill_ratio"],
                         persistence_mae=ds["spread_skill_ratio"], channel_units=("channel", ["m2 s-2", "K"]),
                         spectrum_members=power, spectrum_ensemble_mean=power, spectrum_truth=power)
        monkeypatch.setattr(comparison, "open_scores", lambda path: full)
        comparison.plot_comparison({"a": "a.zarr"}, tmp_path)
        fig = figures[1]
    lines = [line for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]  # not the y = 1 rule
    assert lines and all(np.min(line.get_xdata()) > 0 for line in lines)
    assert max(np.max(line.get_ydata()) for line in lines) < 1.0


def test_forecast_leads_drop_lead_zero_unless_it_is_the_only_one():
    later = scores.forecast_leads(_scores([0, 6, 12]))["lead_time"].values
    assert list(later.astype("timedelta64[h]").astype(int)) == [6, 12]
    assert scores.forecast_leads(_scores([0])).sizes["lead_time"] == 1
