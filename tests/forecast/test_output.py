"""Storing only what users keep: ``output_channels``, ``region``, ``output_every_hours``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from hens.forecast.errors import ConfigError, DataError
from hens.forecast.store_reader import open_store
from hens.pipelines.forecast.plan import plan_run
from hens.pipelines.forecast.run import compute_member, run_forecast
from hens.scoring.evaluate.score import score_ensemble

KEEP = {"output_channels": ["t2m", "z500"], "region": {"lat": [10.0, 60.0], "lon": [350.0, 40.0]},
        "output_every_hours": 12}


def test_a_kept_subset_equals_the_full_run_there_bit_for_bit(ensemble_yaml, world_store, tmp_path):
    full_cfg = ensemble_yaml(tmp_path, name="full.yaml", output="full.zarr", init_times=["2000-01-10T00"])
    kept_cfg = ensemble_yaml(tmp_path, name="kept.yaml", output="kept.zarr", init_times=["2000-01-10T00"], **KEEP)
    run_forecast(full_cfg, progress=False)
    plan = plan_run(kept_cfg)
    run_forecast(kept_cfg, progress=False)
    full, kept = open_store(tmp_path / "full.zarr"), open_store(tmp_path / "kept.zarr")
    assert [v for v in kept.data_vars if v != "completed"] == ["t2m", "z500"]
    assert kept["lead_time"].values.astype("timedelta64[h]").astype(int).tolist() == [0, 12, 24]
    lat, lon = kept["lat"].values, kept["lon"].values
    assert lat.min() >= 10 and lat.max() <= 60 and np.all(np.diff(lat) < 0)
    assert lon[0] >= 350 and lon[-1] <= 40 and ((lon >= 350) | (lon <= 40)).all()  # across 0 degrees
    for name in ("t2m", "z500"):
        expected = full[name].sel(lat=lat, lon=lon, lead_time=kept["lead_time"]).values
        assert np.array_equal(kept[name].values, expected), name
    alone = compute_member(kept_cfg, "2000-01-10T00", 5)
    assert np.array_equal(alone["t2m"].values, kept["t2m"].isel(init_time=0, member=5).values)
    raw = xr.open_zarr(tmp_path / "kept.zarr")
    assert plan.bytes == raw["fields"].nbytes + raw["completed"].nbytes and plan.channels == 2 and plan.leads == 3
    assert json.loads(raw.attrs["hens_config"])["region"] == KEEP["region"]  # provenance


def test_a_regional_store_is_not_scored_but_refused_with_one_line(ensemble_yaml, world_store, tmp_path):
    config = ensemble_yaml(tmp_path, init_times=["2000-01-10T00"], lead_hours=12, **KEEP)
    run_forecast(config, progress=False)
    with pytest.raises(DataError, match="keeps a latitude/longitude box"):
        score_ensemble(tmp_path / "ens.zarr", world_store, out=tmp_path / "s.zarr", progress=False)


@pytest.mark.parametrize("overrides, message", [
    ({"output_channels": ["t2m", "msl"]}, "output_channels must list distinct channels of the models"),
    ({"output_channels": "t2m"}, "output_channels: must be a non-empty list of channel names, got 't2m'"),
    ({"region": {"lat": [60, 10], "lon": [0, 40]}}, "region lat"),
    ({"region": {"lat": [10, 60]}}, "region must be"),
    ({"region": {"lat": [89.9, 90], "lon": [0, 1]}}, "holds no point"),
    ({"output_every_hours": 9}, "output_every_hours: must be a positive integer multiple of 6, got 9"),
    ({"output_every_hours": 48}, "output_every_hours: must be a multiple of 6 up to lead_hours, got 48"),
])
def test_bad_output_keys_are_one_error_before_the_store(ensemble_yaml, tmp_path, overrides, message):
    config = ensemble_yaml(tmp_path, **overrides)
    with pytest.raises(ConfigError, match=message):
        run_forecast(config, progress=False)
    assert not (tmp_path / "ens.zarr").exists()
