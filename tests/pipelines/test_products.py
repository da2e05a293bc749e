"""`hens products` as a user meets it: CF netCDF files whose numbers equal numpy's over the
completed members, provenance from the store, and one error line for bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import ensemble_stores as es
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from hens.forecast.store_reader import open_store
import hens.scoring as hs
from hens.forecast.stats import stats_path
from hens.forecast.zarr_sink import StoreSpec, open_sink
from hens.pipelines.cli import main

HENS = [sys.executable, "-m", "hens.pipelines.cli"]
QUANTILES = (0.25, 0.5, 0.75)
NAMES = ["incomplete_20000110T00.nc", "incomplete_20000115T00.nc", "incomplete_20000120T06.nc"]
PRODUCTS = ("mean", "spread", "quantile", "threshold", "probability", "efi", "sot_upper",
            "sot_lower")
DIMENSIONLESS = ("probability", "efi", "sot_upper", "sot_lower")


@pytest.fixture(scope="module")
def written(score_inputs, tmp_path_factory):
    """Products of the store whose first init misses one batch (members 4..7), by subprocess."""
    out = tmp_path_factory.mktemp("products") / "out"
    quantiles = [a for q in QUANTILES for a in ("--quantile", str(q))]
    res = subprocess.run([*HENS, "products", str(score_inputs["incomplete"]), "--out", str(out),
                          "--climatology", str(score_inputs["truth"]), *quantiles],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "wrote 3 files" in res.stderr
    return out


def _hens(monkeypatch, capsys, *args) -> tuple[int, str]:
    """Run `hens ARGS` in this process through the console entry point: (status, stderr)."""
    monkeypatch.setattr(sys, "argv", ["hens", *map(str, args)])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code, capsys.readouterr().err


def _members(store, i, channel):
    """The completed members of init ``i``: ``(member, lead, lat, lon)`` float64."""
    done = np.flatnonzero(store["completed"].values[i])
    return store[channel].isel(init_time=i, member=done).values.astype(np.float64)


def _climate(truth, valid):
    """Climate quantiles ``(time, quantile, lat, lon)`` per channel: the window whose
    day-of-year centre is nearest to each valid time (no window here is near New Year)."""
    stats = xr.open_zarr(stats_path(truth))
    doy = pd.DatetimeIndex(valid).day_of_year.to_numpy()
    window = np.abs(doy[:, None] - stats["dayofyear"].values[None, :]).argmin(axis=1)
    q = stats["climatology_quantiles"].isel(dayofyear=window)
    per_channel = {c: q.sel(channel=c).values.astype(np.float64) for c in es.CHANNELS}
    return per_channel, stats["quantile"].values


def test_one_file_per_initial_time(written):
    assert sorted(p.name for p in written.iterdir()) == NAMES


def test_moments_and_quantiles_equal_numpy_over_completed_members(written, score_inputs):
    store = open_store(score_inputs["incomplete"])
    for i, name in enumerate(NAMES):
        ds = xr.open_dataset(written / name)
        assert ds.attrs["ensemble_size"] == (12 if i == 0 else 16)  # 4 members not completed
        for c in es.CHANNELS:
            x = _members(store, i, c)
            np.testing.assert_allclose(ds[f"{c}_mean"].values, x.mean(0), rtol=1e-6)
            np.testing.assert_allclose(ds[f"{c}_spread"].values, x.std(0, ddof=1), rtol=1e-6)
            assert ds[f"{c}_spread"].attrs["ddof"] == 1
            q = ds[f"{c}_quantile"]
            assert list(q["quantile"].values) == list(QUANTILES)
            np.testing.assert_allclose(q.values, np.quantile(x, QUANTILES, axis=0), rtol=1e-6)
            assert (q.diff("quantile") >= 0).all()


def test_probabilities_are_member_fractions_above_the_climatology(written, score_inputs):
    store = open_store(score_inputs["incomplete"])
    for i, name in enumerate(NAMES):
        ds = xr.open_dataset(written / name)
        assert list(ds["threshold_quantile"].values) == [0.9, 0.99]  # the default levels
        climate, levels = _climate(score_inputs["truth"], ds["time"].values)
        for c in es.CHANNELS:
            x, p = _members(store, i, c), ds[f"{c}_probability"]
            assert p.dims == ("threshold_quantile", "time", "lat", "lon")
            assert p.notnull().all() and ((p >= 0) & (p <= 1)).all()
            for k, level in enumerate((0.9, 0.99)):
                threshold = climate[c][:, np.flatnonzero(np.isclose(levels, level))[0]]
                np.testing.assert_allclose(ds[f"{c}_threshold"].values[k], threshold, rtol=1e-6)
                np.testing.assert_allclose(p.values[k], (x > threshold).mean(0), atol=1e-6)


def test_efi_and_sot_against_the_climatology(written, score_inputs):
    store = open_store(score_inputs["incomplete"])
    ds = xr.open_dataset(written / NAMES[0])
    climate, levels = _climate(score_inputs["truth"], ds["time"].values)
    for c in es.CHANNELS:
        efi = ds[f"{c}_efi"]
        assert efi.notnull().all() and (abs(efi) <= 1).all()
        members = xr.DataArray(_members(store, 0, c), dims=("member", "time", "lat", "lon"))
        clim = xr.DataArray(climate[c], dims=("time", "quantile", "lat", "lon"),
                            coords={"quantile": levels})
        np.testing.assert_allclose(efi.values, hs.efi(members, clim).values, atol=1e-6)
        for tail in ("upper", "lower"):
            sot = ds[f"{c}_sot_{tail}"]
            assert (sot.isnull() | (abs(sot) <= 10)).all()
            np.testing.assert_allclose(sot.values, hs.sot(members, clim, tail=tail).values,
                                       atol=1e-5, equal_nan=True)


def test_cf_attributes_and_provenance(written, score_inputs):
    store = open_store(score_inputs["incomplete"])
    path = written / NAMES[0]
    ds = xr.open_dataset(path)
    assert ds.attrs["Conventions"].startswith("CF-1.")
    assert {"title", "institution", "source", "history"} <= set(ds.attrs)
    standard = {"time": "time", "forecast_period": "forecast_period", "lat": "latitude",
                "forecast_reference_time": "forecast_reference_time", "lon": "longitude"}
    for name, standard_name in standard.items():
        assert ds[name].attrs["standard_name"] == standard_name
    assert ds["lat"].attrs["units"] == "degrees_north"
    assert ds["lon"].attrs["units"] == "degrees_east"
    assert ds["forecast_reference_time"].values == np.datetime64("2000-01-10T00", "ns")
    np.testing.assert_array_equal(ds["forecast_period"].values, store["lead_time"].values)
    valid = ds["forecast_reference_time"].values + ds["forecast_period"].values
    np.testing.assert_array_equal(ds["time"].values, valid)
    fields = sorted(set(ds.data_vars) - {"realization_bnds"})  # bounds: xarray shows them as data
    assert fields == sorted(f"{c}_{p}" for c in es.CHANNELS for p in PRODUCTS)
    for name in fields:
        var, (channel, product) = ds[name], name.split("_", 1)
        expected = "1" if product in DIMENSIONLESS else {"z500": "m2 s-2", "t2m": "K"}[channel]
        assert var.attrs["units"] == expected, name
        assert var.attrs["long_name"]
    assert ds["z500_mean"].attrs["cell_methods"] == "realization: mean"
    assert ds["z500_spread"].attrs["cell_methods"] == "realization: standard_deviation"
    assert ds["z500_mean"].attrs["standard_name"] == "geopotential"
    assert ds["t2m_mean"].attrs["units_metadata"] == "temperature: on_scale"
    assert ds["t2m_spread"].attrs["units_metadata"] == "temperature: difference"
    assert ds["t2m_probability"].attrs["ancillary_variables"] == "t2m_threshold"
    assert ds["z500_probability"].attrs["ancillary_variables"] == "z500_threshold"
    done = np.flatnonzero(store["completed"].values[0])
    # the reduced member axis: a scalar realization whose bounds span the members used
    assert ds["realization"].attrs["standard_name"] == "realization"
    np.testing.assert_array_equal(ds["realization_bnds"].values, [done[0], done[-1]])
    # levels as CF scalar coordinates, each field naming its own (z500 at 500 hPa, t2m at 2 m)
    assert float(ds["plev500"]) == 50000.0 and ds["plev500"].attrs["units"] == "Pa"
    assert ds["plev500"].attrs["standard_name"] == "air_pressure"
    assert float(ds["height2m"]) == 2.0 and ds["height2m"].attrs["units"] == "m"
    assert (ds["height2m"].attrs["standard_name"], ds["height2m"].attrs["positive"]) == ("height", "up")
    for name in ds.data_vars:
        assert "level_hPa" not in ds[name].attrs
    raw = netCDF4.Dataset(path)
    for p in PRODUCTS:
        assert set(raw[f"z500_{p}"].coordinates.split()) == {
            "forecast_period", "forecast_reference_time", "plev500", "realization"}
        assert "height2m" in raw[f"t2m_{p}"].coordinates.split()
    assert "coordinates" not in raw.ncattrs()  # nothing left over for a global list
    raw.close()
    # provenance: every attribute of the store, JSON where it was not a number or text
    for key, value in store.attrs.items():
        copied = ds.attrs[f"ensemble_{key}"]
        if isinstance(value, str) and value.startswith(("{", "[")):
            assert json.loads(copied) == json.loads(value), key
        else:
            assert copied == value, key
    assert json.loads(ds.attrs["ensemble_hens_config"]) == {"kind": "calibrated"}
    runs = json.loads(ds.attrs["ensemble_members"])
    assert np.concatenate([np.arange(a, b) for a, b in runs]).tolist() == done.tolist()
    raw = netCDF4.Dataset(path)
    assert raw.data_model == "NETCDF4"
    assert raw["z500_mean"].filters()["zlib"] and raw["t2m_probability"].filters()["zlib"]
    assert raw["time"].units.startswith("hours since") and raw["forecast_period"].units == "hours"
    raw.close()


# compliance-checker 6.1 requires >= 2 dims of any bounds variable (cf_1_7.py,
# check_cell_boundaries), contradicting its own next check and CF 7.1 (dims of the coordinate
# + 1): a scalar coordinate's bounds have one. The CEDA cf-checker fixed the same bug (#46).
CHECKER_BUG = "Boundary variable realization_bnds specified by realization should have at least two"


def test_products_pass_the_newest_cf_checker(written):
    """IOOS compliance-checker, its newest CF suite: no high or medium priority failure."""
    from compliance_checker.base import BaseCheck
    from compliance_checker.runner import CheckSuite

    suite = CheckSuite()
    suite.load_all_available_checkers()
    newest = max((k for k in suite.checkers if re.fullmatch(r"cf:1\.\d+", k)),
                 key=lambda k: int(k.split(".")[1]))
    assert int(newest.split(".")[1]) >= 11  # the products declare CF-1.11
    for name in NAMES[::2]:  # a first init with members missing, and a full one
        results, crashed = suite.run_all(suite.load_dataset(str(written / name)), [newest], [])[newest]
        assert not crashed, crashed  # a check that raised checked nothing
        failed = [msg for r in results if r.weight >= BaseCheck.MEDIUM
                  and (r.value is False or (isinstance(r.value, tuple) and r.value[0] < r.value[1]))
                  for msg in r.msgs]
        assert [m for m in failed if not m.startswith(CHECKER_BUG)] == [], failed
        assert sum(r.value[1] for r in results if isinstance(r.value, tuple)) > 200  # checks ran


def test_existing_file_is_kept_without_overwrite(score_inputs, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / NAMES[1]).write_bytes(b"someone else's file")
    args = ("products", score_inputs["incomplete"], "--out", out, "--climatology",
            score_inputs["truth"], "--no-progress")
    status, err = _hens(monkeypatch, capsys, *args)
    assert status == 2
    assert err.strip() == f"hens: error: {out / NAMES[1]} exists; pass --overwrite to replace it"
    assert (out / NAMES[1]).read_bytes() == b"someone else's file"
    assert [p.name for p in out.iterdir()] == [NAMES[1]]  # nothing else written, no partial file
    status, err = _hens(monkeypatch, capsys, *args, "--overwrite")
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == NAMES
    assert xr.open_dataset(out / NAMES[1]).attrs["ensemble_size"] == 16


def _recorded_store(score_inputs, folder, data):
    """A copy of the calibrated store at ``folder/runs/cal.zarr`` whose config records
    ``data`` (relative to ``folder``, as in a YAML there with ``output: runs/cal.zarr``)."""
    path = folder / "runs" / "cal.zarr"
    shutil.copytree(score_inputs["calibrated"], path)
    zarr.open_group(path, mode="r+").attrs["hens_config"] = json.dumps(
        {"data": data, "output": "runs/cal.zarr"})
    zarr.consolidate_metadata(path)
    return path


def test_default_climatology_is_beside_the_recorded_data(score_inputs, tmp_path, monkeypatch,
                                                         capsys):
    stats = stats_path(score_inputs["truth"])
    (tmp_path / "truth.stats.zarr").symlink_to(stats)
    store = _recorded_store(score_inputs, tmp_path, "truth.zarr")
    status, err = _hens(monkeypatch, capsys, "products", store, "--out", tmp_path / "out",
                        "--no-progress", "--threshold", "0.99")
    assert status == 0, err
    ds = xr.open_dataset(tmp_path / "out" / "cal_20000110T00.nc")
    assert ds.attrs["climatology"] == str(stats.resolve())
    assert list(ds["threshold_quantile"].values) == [0.99]


@pytest.mark.parametrize("case, message", [
    ("missing store", r"nope\.zarr: no such ensemble store"),
    ("not a store", r"is not a hens ensemble store"),
    ("no completed members", r"3 of 3 initial times have fewer than 2 completed members "
                             r"\(first 2000-01-10T00: 0 of 16\).*--resume"),
    ("corrupt chunk", (r"corrupt\.zarr: array fields, chunk fields/c/2/0/0/0/0/0 is unreadable \(ValueError: "
                       r".*\); delete it and the batch's flag file completed/c/2/0, then rerun")),
    ("corrupt flag", (r"corrupt\.zarr: array completed, chunk completed/c/1/2 is unreadable \(RuntimeError: "
                      r".*\); delete that file")),
    ("no recorded data", r"records no data path .*pass --climatology"),
    ("no stats beside data", r"no climatology .*truth\.stats\.zarr beside the data truth\.zarr "
                             r"recorded in .*cal\.zarr; pass --climatology"),
    ("missing climatology", r"nowhere\.stats\.zarr does not exist; pass --climatology"),
    ("bad quantile", r"--quantile \[1\.5\]: give distinct levels in \(0, 1\)"),
    ("threshold not held", r"has no 0\.123 quantile for --threshold"),
])
def test_bad_input_is_one_error_line(score_inputs, tmp_path, monkeypatch, capsys, case, message):
    ens, extra = score_inputs["incomplete"], ["--climatology", score_inputs["truth"]]
    if case == "missing store":
        ens = tmp_path / "nope.zarr"
    elif case == "not a store":
        ens = score_inputs["truth"]
    elif case == "no completed members":
        ens = tmp_path / "empty.zarr"
        inits = tuple(np.datetime64(t, "ns") for t in es.INITS)
        spec = StoreSpec(channels=es.CHANNELS, init_times=inits, lead_hours=es.LEADS,
                         grid=es.GRID, layout=es.LAYOUT, batch_size=4, attrs={})
        open_sink(ens, spec)  # declared, never written
    elif case == "corrupt chunk":
        ens = tmp_path / "corrupt.zarr"
        shutil.copytree(score_inputs["incomplete"], ens)
        (ens / "fields" / "c" / "2" / "0" / "0" / "0" / "0" / "0").write_bytes(b"not a shard")
    elif case == "corrupt flag":
        ens = tmp_path / "corrupt.zarr"
        shutil.copytree(score_inputs["incomplete"], ens)
        (ens / "completed" / "c" / "1" / "2").write_bytes(b"not a flag")
    elif case == "no recorded data":
        extra = []
    elif case == "no stats beside data":
        ens, extra = _recorded_store(score_inputs, tmp_path, "truth.zarr"), []
    elif case == "missing climatology":
        extra = ["--climatology", tmp_path / "nowhere.zarr"]
    elif case == "bad quantile":
        extra += ["--quantile", "1.5"]
    elif case == "threshold not held":
        extra += ["--threshold", "0.123"]
    out = tmp_path / "out"
    status, err = _hens(monkeypatch, capsys, "products", ens, "--out", out, "--no-progress", *extra)
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hens: error: "), err
    assert re.search(message, lines[0]), lines[0]
    # input is checked before any file is written; a damaged chunk fails while reading:
    # the files of earlier initial times stay, and no partial file
    if case == "corrupt chunk":
        kept = ["corrupt_20000110T00.nc", "corrupt_20000115T00.nc"]
        assert sorted(p.name for p in out.iterdir()) == kept
    else:
        assert not out.exists()
