"""Bad input to data sources: the Python error and the `hens inspect` line for each case.

Each case is checked twice with the same inputs: the exception type and message from
``open_source``/``source(...)``, and the CLI (exit status 2, exactly one stderr line
``hens: error: ...``, no traceback, no warning). The CLI runs in-process for speed; two
cases also run as a real subprocess.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from sample_layouts import TIMES, make_truth, write_cds_new

from hens.forecast import open_source
from hens.forecast.errors import DataError, GridMismatch, HensError
from hens.forecast.grids import Grid
from hens.pipelines.cli import main


@dataclass(frozen=True)
class Case:
    """Inputs (written by ``make``), what to request, and the error they must raise."""

    make: Callable[[Path, Path], list[str]]  # (tmp_path, wb2 store) -> paths
    error: type[HensError]
    match: str
    time: str | None = None
    channels: str | None = None
    grid: str | None = None


def _rewrite(src: Path, dst: Path, change: Callable[[xr.Dataset], xr.Dataset]) -> Path:
    """Copy a WB2 store with a change applied (WB2 layout kept: Zarr v2, consolidated)."""
    ds = xr.open_zarr(src).load()
    for var in ds.variables.values():
        var.encoding = {}
    change(ds).to_zarr(dst, zarr_format=2, consolidated=True, mode="w")
    return dst


def _with_value(value: float, var: str) -> Callable[[xr.Dataset], xr.Dataset]:
    def change(ds: xr.Dataset) -> xr.Dataset:
        data = ds[var].values.copy()
        data[1, ..., 3, 5] = value  # time 2020-01-01T06, every level
        return ds.assign({var: (ds[var].dims, data, ds[var].attrs)})
    return change


def _irregular_lat(ds: xr.Dataset) -> xr.Dataset:
    lat = ds["latitude"].values.copy()
    lat[1] += 1.0
    return ds.assign_coords(latitude=lat)


def _height_units(ds: xr.Dataset) -> xr.Dataset:
    ds["geopotential"].attrs["units"] = "m"
    return ds


def _corrupt_chunk(tmp: Path, store: Path) -> list[str]:
    dst = tmp / "chunk.zarr"
    shutil.copytree(store, dst)
    (dst / "2m_temperature" / "1.0.0").write_bytes(b"not a blosc frame" * 4)
    return [str(dst)]


def _corrupt_metadata(tmp: Path, store: Path) -> list[str]:
    dst = tmp / "meta.zarr"
    shutil.copytree(store, dst)
    for name in (".zmetadata", ".zgroup"):
        (dst / name).write_text("{ this is not json")
    return [str(dst)]


def _netcdf(tmp: Path, ds: xr.Dataset, name: str) -> list[str]:
    ds.to_netcdf(tmp / name)
    return [str(tmp / name)]


def _cds(tmp: Path, times: list[int], grid: Grid = Grid(9, 16, "equiangular")) -> list[Path]:
    return write_cds_new(make_truth(grid).isel(time=times), tmp / f"cds-{grid.nlat}-{times}")


def _cds_ensemble(tmp: Path, _: Path) -> list[str]:
    path = _cds(tmp, [0, 1])[1]
    ds = xr.open_dataset(path).load()
    out = tmp / "ensemble.nc"
    ds.expand_dims(number=[0, 1]).to_netcdf(out)
    return [str(out)]


CASES: dict[str, Case] = {
    "missing-path": Case(lambda t, s: [str(t / "nope.zarr")], DataError,
                         "nope.zarr: no such file or directory"),
    "glob-matches-nothing": Case(lambda t, s: [str(t / "*.nc")], DataError, "no files match"),
    "directory-not-zarr": Case(lambda t, s: [str(t)], DataError,
                               "is a directory but not a Zarr store"),
    "corrupt-zarr-metadata": Case(_corrupt_metadata, DataError,
                                  "cannot open .*meta.zarr as zarr \\(damaged or incomplete"),
    "corrupt-zarr-chunk": Case(_corrupt_chunk, DataError,
                               "cannot read 2m_temperature for t2m from .*chunk.zarr \\(damaged",
                               time="2020-01-01T06", channels="t2m"),
    "text-file": Case(lambda t, s: [str(t / "a.nc")] if (t / "a.nc").write_text("hello") else [],
                      DataError, "neither a Zarr store nor a netCDF file"),
    "netcdf-of-other-layout": Case(
        lambda t, s: _netcdf(t, xr.Dataset({"foo": (("x", "y"), np.zeros((2, 3)))}), "o.nc"),
        DataError, "unknown layout \\(dims x, y; variables foo\\)"),
    "cds-file-without-hens-channels": Case(
        lambda t, s: _netcdf(t, xr.open_dataset(_cds(t, [0])[1]).rename(t2m="z").drop_vars("msl"),
                             "orography.nc"),
        DataError, "orography.nc holds no hens channel: its variables are z"),
    "ensemble-dimension": Case(_cds_ensemble, DataError, "select or drop number first"),
    "missing-channel": Case(lambda t, s: [str(s)], DataError,
                            "channel q700 \\(specific_humidity at 700 hPa, CDS q\\) is not in "
                            ".*era5.zarr; it has z250", channels="q700"),
    "unknown-channel": Case(lambda t, s: [str(s)], DataError, "unknown channel 'zz500'",
                            channels="zz500"),
    "missing-time": Case(lambda t, s: [str(s)], DataError,
                         "time 2021-01-01T00:00 is not in .*era5.zarr; it holds 3 times: "
                         "2020-01-01T00:00 .. 2020-01-01T12:00, every 6 h", time="2021-01-01"),
    "unreadable-time": Case(lambda t, s: [str(s)], DataError, "cannot read times",
                            time="not-a-time"),
    "nan": Case(lambda t, s: [str(_rewrite(s, t / "nan.zarr",
                                           _with_value(np.nan, "2m_temperature")))],
                DataError, "NaN/Inf in t2m at 2020-01-01T06:00 in .*nan.zarr",
                time="2020-01-01T06", channels="z500,t2m"),
    "inf": Case(lambda t, s: [str(_rewrite(s, t / "inf.zarr",
                                           _with_value(np.inf, "geopotential")))],
                DataError, "NaN/Inf in z850 at 2020-01-01T06:00",
                time="2020-01-01T06", channels="t2m,z850"),
    "wrong-units": Case(lambda t, s: [str(_rewrite(s, t / "gph.zarr", _height_units))], DataError,
                        "geopotential in .*gph.zarr has units 'm'; hens channel z250 needs m2 s-2"),
    "wrong-grid": Case(lambda t, s: [str(s)], GridMismatch,
                       "is on grid 9x16:equiangular, expected 32x64", grid="32x64"),
    "bad-grid-spec": Case(lambda t, s: [str(s)], GridMismatch, "bad grid 'abc'", grid="abc"),
    "unknown-grid": Case(lambda t, s: [str(_rewrite(s, t / "odd.zarr", _irregular_lat))],
                         GridMismatch, "odd.zarr has an unknown 9x16 grid"),
    "mixed-grids": Case(lambda t, s: [str(_cds(t, [0])[0]), str(_cds(t, [0], Grid(8, 16))[1])],
                        GridMismatch, "mixes grids 8x16, 9x16:equiangular"),
    "no-common-times": Case(lambda t, s: [str(_cds(t, [0])[0]), str(_cds(t, [2])[1])],
                            DataError, "the files share no valid time"),
    "duplicate-times": Case(lambda t, s: [str(_cds(t, [0])[0])] * 2, DataError,
                            "time 2020-01-01T00:00 occurs more than once"),
}


def _request(case: Case, paths: list[str]) -> None:
    """What `hens inspect` does with the case's options, in Python."""
    source = open_source(paths if len(paths) > 1 else paths[0], grid=case.grid)
    if case.time or case.channels:
        source([case.time] if case.time else source.times[:1],
               case.channels.split(",") if case.channels else source.channels)


def _cli_args(case: Case, paths: list[str]) -> list[str]:
    args = ["inspect", *paths]
    for option, value in (("--time", case.time), ("--channels", case.channels),
                          ("--grid", case.grid)):
        if value is not None:
            args += [option, value]
    return args


@pytest.mark.parametrize("name", CASES)
def test_bad_input_raises_and_cli_prints_one_line(name, tmp_path, wb2_store, monkeypatch, capsys):
    case = CASES[name]
    paths = case.make(tmp_path, wb2_store)
    with pytest.raises(case.error, match=case.match) as info:
        _request(case, paths)
    assert "\n" not in str(info.value)

    monkeypatch.setattr(sys, "argv", ["hens", *_cli_args(case, paths)])
    with warnings.catch_warnings(record=True) as caught, pytest.raises(SystemExit) as exit_info:
        warnings.simplefilter("always")
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err == f"hens: error: {info.value}\n"
    # a user sees every warning except deprecations (hidden outside __main__)
    shown = [w for w in caught if not issubclass(w.category, (DeprecationWarning,
                                                              PendingDeprecationWarning))]
    assert not shown, [str(w.message) for w in shown]


@pytest.mark.parametrize("name", ["missing-path", "missing-time"])
def test_cli_subprocess_error_is_one_line(name, tmp_path, wb2_store):
    case = CASES[name]
    paths = case.make(tmp_path, wb2_store)
    res = subprocess.run([sys.executable, "-m", "hens.pipelines.cli", *_cli_args(case, paths)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.startswith("hens: error: ") and res.stderr.count("\n") == 1, res.stderr
    assert "Traceback" not in res.stderr


def test_cli_loads_and_summarises_a_block(wb2_store, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["hens", "inspect", str(wb2_store), "--time",
                                      str(TIMES[1])[:13], "--channels", "z500,t2m"])
    try:
        main()
    except SystemExit as done:  # typer may end a successful command this way
        assert done.code in (0, None)
    out = capsys.readouterr().out
    assert "loaded 1 time(s) x 2 channel(s)" in out and "[m2 s-2]" in out and "[K]" in out
