"""`score_ensemble` on stores with known answers (``tests/ensemble_stores.py``), and its figures.

The calibrated ensemble draws members exactly like the truth: signal + N(0, sigma^2). Then
spread -> sigma, RMSE -> sigma sqrt(1 + 1/M), fair CRPS -> sigma / sqrt(pi), standard CRPS ->
sigma / sqrt(pi) (1 + 1/M), spread-skill -> 1, ranks uniform on 0..M, outliers 2 / (M + 1).
Each lead pools 3 inits x 512 cells, so the tolerances below are ~4 standard errors.
"""

from __future__ import annotations

import ensemble_stores as es
import numpy as np
import pytest
import xarray as xr

from hens.forecast.errors import ConfigError, DataError, OutputExists
from hens.forecast.store_reader import open_store
from hens.scoring.evaluate.score import score_ensemble
from hens.scoring.evaluate.store import open_ensemble
from hens.scoring.plots.scores import plot_scores

M = es.LAYOUT.size


@pytest.fixture(scope="module")
def calibrated(score_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("scores") / "calibrated.scores.zarr"
    score_ensemble(score_inputs["calibrated"], score_inputs["truth"], out=out, progress=False)
    return out, xr.open_zarr(out).load()


@pytest.fixture(scope="module")
def perfect(score_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("scores") / "perfect.scores.zarr"
    score_ensemble(score_inputs["perfect"], score_inputs["truth"], out=out, progress=False)
    return xr.open_zarr(out).load()


@pytest.mark.parametrize("channel", es.CHANNELS)
def test_calibrated_ensemble_moments_and_crps(calibrated, channel):
    ds = calibrated[1].sel(channel=channel)
    sigma = es.SCALES[channel][2]
    np.testing.assert_allclose(ds["spread"], sigma, rtol=0.04)
    np.testing.assert_allclose(ds["rmse"], sigma * np.sqrt(1 + 1 / M), rtol=0.08)
    np.testing.assert_allclose(ds["spread_skill_ratio"], 1.0, atol=0.1)
    np.testing.assert_allclose(ds["fair_crps"], sigma / np.sqrt(np.pi), rtol=0.06)
    np.testing.assert_allclose(ds["crps"] / ds["fair_crps"], 1 + 1 / M, rtol=0.02)
    # persistence: no error at lead 0, then worse than the ensemble mean as the wave moves on
    assert ds["persistence_rmse"].isel(lead_time=0) == 0
    later = ds.isel(lead_time=slice(1, None))
    assert (later["persistence_rmse"] > later["rmse"]).all() and (ds["persistence_rmse"].diff("lead_time") > 0).all()


def test_calibrated_ensemble_ranks_outliers_and_subsets(calibrated):
    ds = calibrated[1]
    assert ds.sizes["rank"] == M + 1
    np.testing.assert_allclose(ds["rank_histogram"].sum("rank"), 1.0)
    pooled = ds["rank_histogram"].mean("lead_time") * (M + 1)
    assert float(abs(pooled - 1).max()) < 0.25, pooled.values
    np.testing.assert_allclose(ds["outlier_fraction"], 2 / (M + 1), atol=0.035)
    # balanced sub-ensembles of whole +/- pairs: 1, 2, 4, 8 (checkpoint, pair) units of 2
    np.testing.assert_array_equal(ds["ensemble_size"], [2, 4, 8, 16])
    np.testing.assert_allclose(ds["subset_outlier_fraction"].mean("lead_time"),
                               np.broadcast_to(ds["expected_outlier_fraction"], (2, 4)), atol=0.04)
    assert (ds["best_member_mae"].diff("ensemble_size") < 0).all()


def test_calibrated_ensemble_thresholds_extremes_spectra(calibrated):
    ds = calibrated[1]
    assert list(ds["threshold"].values) == [0.9, 0.99]
    assert ((ds["event_frequency"].sel(threshold=0.9) > 0.05) & (ds["event_frequency"].sel(threshold=0.9) < 0.16)).all()
    assert (ds["fair_brier_score"] <= ds["brier_score"]).all() and (ds["brier_score"] >= 0).all()
    assert (ds["roc_auc"] > 0.6).all() and (ds["roc_auc"] <= 1).all()
    count = ds["reliability_count"]
    assert ds.sizes["probability_bin"] == M + 1 and float(count.min()) >= 0
    efi = ds["efi_map"]
    assert efi.dims == ("channel", "lead_time", "lat", "lon") and float(abs(efi).max()) <= 1
    assert np.isfinite(ds["efi_mean"]).all() and np.isfinite(ds["sot_upper_mean"]).all()
    # Jensen: the mean of the spectra is at least the spectrum of the mean, at every l
    members, mean = ds["spectrum_members"], ds["spectrum_ensemble_mean"]
    assert (members >= mean * (1 - 1e-9)).all() and (ds["spectrum_truth"] > 0).all()
    attrs = calibrated[1].attrs
    assert attrs["ensemble_size"] == M and attrs["notes"] == "none"
    assert "legendre-gauss" in attrs["weights"] and "analysis climatology" in attrs["efi_model_climate"]
    assert ds["crps"].attrs["estimator"].startswith("standard") and ds["crps"].attrs["ensemble_size"] == M


def test_stored_rmse_spread_mae_match_a_hand_computation(calibrated, score_inputs):
    scores = calibrated[1].sel(channel="z500").isel(lead_time=2)
    ens = open_store(score_inputs["calibrated"])["z500"].isel(lead_time=2).values.astype(np.float64)
    inits = np.array(es.INITS, dtype="datetime64[ns]")
    truth = es.truth_values().sel(channel="z500")
    y = truth.sel(time=inits + np.timedelta64(24, "h")).values.astype(np.float64)
    y0 = truth.sel(time=inits).values.astype(np.float64)
    w = es.GRID.quadrature_weights[:, None] / es.GRID.quadrature_weights.mean()  # mean-1 area weights

    def area_time_mean(f):  # spatial mean per init first, then the mean over inits
        return (f * w).mean(axis=(-2, -1)).mean()

    xbar = ens.mean(axis=1)
    assert float(scores["rmse"]) == pytest.approx(np.sqrt(area_time_mean((xbar - y) ** 2)), rel=1e-5)
    assert float(scores["mae"]) == pytest.approx(area_time_mean(abs(xbar - y)), rel=1e-5)
    assert float(scores["spread"]) == pytest.approx(np.sqrt(area_time_mean(ens.var(axis=1, ddof=1))), rel=1e-5)
    assert float(scores["persistence_rmse"]) == pytest.approx(np.sqrt(area_time_mean((y0 - y) ** 2)), rel=1e-5)


def test_perfect_ensemble_scores_zero(perfect):
    assert (perfect["crps"] == 0).all() and (perfect["fair_crps"] == 0).all()
    assert (perfect["outlier_fraction"] == 0).all() and (perfect["brier_score"] == 0).all()
    assert (perfect["roc_auc"] == 1).all()
    scale = np.array([es.SCALES[c][0] for c in perfect["channel"].values])[:, None]
    assert (perfect["rmse"] / scale < 1e-6).all()  # float32 rounding of the member mean only
    assert (perfect["best_member_mae"] == 0).all()


def test_incomplete_members_are_refused_unless_dropped(score_inputs, tmp_path, monkeypatch):
    ens, truth = score_inputs["incomplete"], score_inputs["truth"]
    with pytest.raises(DataError, match=r"not completed .*--resume.*--drop-incomplete"):
        score_ensemble(ens, truth, out=tmp_path / "s.zarr", progress=False)
    assert not (tmp_path / "s.zarr").exists()
    score_ensemble(ens, truth, out=tmp_path / "s.zarr", incomplete="drop", progress=False)
    ds = xr.open_zarr(tmp_path / "s.zarr").load()
    assert ds.attrs["ensemble_size"] == 12 and ds.attrs["members_dropped_incomplete"] == 4
    assert ds.sizes["rank"] == 13
    np.testing.assert_array_equal(ds["ensemble_size"], [2, 4, 8, 12])  # whole units only
    # one block per stored lead chunk (3) and latitude bands of 8 rows (dask chunks of all
    # members) instead of one block of whole fields give the same scores ...
    monkeypatch.setattr("hens.scoring.evaluate.store.BAND_BYTES", 12 * 32 * 4 * 8)
    monkeypatch.setattr("hens.scoring.evaluate.store.BLOCK_BYTES", 1)
    store = open_ensemble(ens, incomplete="drop")
    assert store.band() == 8 and store.lead_blocks() == [slice(0, 2), slice(2, 4), slice(4, 5)]
    score_ensemble(ens, truth, out=tmp_path / "band.zarr", incomplete="drop", progress=False)
    banded = xr.open_zarr(tmp_path / "band.zarr").load()
    # ... up to ties of float32 values, broken at random per chunk (one case moves a rank)
    xr.testing.assert_allclose(banded.drop_vars("rank_histogram"), ds.drop_vars("rank_histogram"),
                               rtol=1e-9)
    xr.testing.assert_allclose(banded["rank_histogram"], ds["rank_histogram"], atol=2e-3)


def test_without_climatology_threshold_scores_are_skipped(score_inputs, tmp_path):
    out = score_ensemble(score_inputs["perfect"], score_inputs["truth_nostats"], out=tmp_path / "s.zarr",
                         progress=False)
    ds = xr.open_zarr(out)
    assert "brier_score" not in ds and "efi_map" not in ds and "threshold" not in ds.dims
    assert "no climatology store" in ds.attrs["notes"] and "rmse" in ds


@pytest.mark.parametrize("case, error, message", [
    ("not hens", DataError, "is not a hens ensemble store"),
    ("no t2m", DataError, "lacks channel t2m"),
    ("short", DataError, r"lacks valid time 2000-01-21T06:00 \(init 2000-01-20T06:00 \+ 24 h; 3 valid times"),
    ("thresholds", ConfigError, "quantile levels in"),
    ("exists", OutputExists, "exists; pass --overwrite"),
])
def test_bad_input_raises_one_clear_error(score_inputs, tmp_path, case, error, message):
    forecast = score_inputs["truth" if case == "not hens" else "perfect"]
    truth = score_inputs[{"no t2m": "truth_z500", "short": "truth_short"}.get(case, "truth")]
    out = tmp_path / "s.zarr"
    if case == "exists":
        out.mkdir()
    with pytest.raises(error, match=message) as info:
        score_ensemble(forecast, truth, out=out, thresholds=(0.9, 1.5) if case == "thresholds" else (0.9,),
                       progress=False)
    assert "\n" not in str(info.value)


def test_figures_are_written(calibrated, score_inputs, tmp_path):
    paths = plot_scores(calibrated[0], tmp_path / "figs")
    names = {p.name for p in paths}
    expected = {"errors.png", "spread_skill.png", "rank_histograms.png", "outliers.png", "reliability.png",
                "tails.png",
                *(f"spectra_{c}.png" for c in es.CHANNELS), *(f"efi_{c}.png" for c in es.CHANNELS)}
    assert names == expected
    assert all(p.stat().st_size > 10_000 for p in paths)
    with pytest.raises(DataError, match="not a hens scores store"):
        plot_scores(score_inputs["perfect"], tmp_path / "x")


def test_banded_spectra_use_the_sample_of_whole_batches_and_all_members_for_the_mean(
        score_inputs, calibrated, tmp_path, monkeypatch):
    """Latitude bands (a read budget of 8 rows) and a spectrum sample of 5 members: the sample is
    whole stored batches spread over the ensemble, the mean member spectrum is its members' mean
    spectrum, and the ensemble-mean spectrum (from the bands' mean maps) is the unbanded one."""
    from hens.scoring.spectra import power_spectrum

    monkeypatch.setattr("hens.scoring.evaluate.store.BAND_BYTES", M * 32 * 4 * 8)
    monkeypatch.setattr("hens.scoring.evaluate.store.SPECTRUM_MEMBERS", 5)
    store = open_ensemble(score_inputs["calibrated"])
    sample = store.spectrum_sample()
    batch = store.stored_batch
    assert store.band() == 8 and sample.size >= 5 and sample.size % batch == 0
    assert sample[0] == 0 and sample[-1] == M - 1  # the first and the last batch: spread out
    banded = xr.open_zarr(score_ensemble(score_inputs["calibrated"], score_inputs["truth"],
                                         out=tmp_path / "b.zarr", progress=False)).load()
    fields = open_store(score_inputs["calibrated"]).isel(member=sample)
    for c, channel in enumerate(es.CHANNELS):
        want = power_spectrum(fields[channel].astype(np.float64)).mean(["init_time", "member"])
        np.testing.assert_allclose(banded["spectrum_members"][c], want.transpose("lead_time", ...), rtol=1e-9)
    xr.testing.assert_allclose(banded["spectrum_ensemble_mean"], calibrated[1]["spectrum_ensemble_mean"], rtol=1e-9)
    assert f"{sample.size} of {M} members" in banded.attrs["spectrum_members_sample"]
