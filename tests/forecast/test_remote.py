"""Stores named by fsspec URLs: the same blocks as the local store, through open_source and
every command that reads data (memory:// lives in this process only, so those commands run
in-process; file:// runs as a user would, in a subprocess), and one error line for a missing
backend, protocol or store."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest
import xarray as xr

from hens.forecast import open_source
from hens.forecast.errors import DataError
from hens.forecast.store_reader import open_store
from hens.pipelines.cli import main

HENS = [sys.executable, "-m", "hens.pipelines.cli"]


def _to_memory(store: Path) -> str:
    """Copy a local store into fsspec's memory filesystem under a fresh name; its URL."""
    name = f"/{uuid.uuid4().hex}/{store.name}"
    fsspec.filesystem("memory").put(str(store), name, recursive=True)
    return f"memory:/{name}"


def _hens(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """``hens ARGS`` in this process: (status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["hens", *map(str, args)])
    with pytest.raises(SystemExit) as exit_:
        main()
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def test_memory_url_reads_what_the_local_store_holds(wb2_store, truth9):
    url = _to_memory(wb2_store)
    remote, local = open_source(url), open_source(wb2_store)
    assert remote.name == url and remote.grid == local.grid
    assert list(remote.channels) == list(local.channels)
    np.testing.assert_array_equal(remote.times, local.times)
    channels = list(local.channels)  # pressure levels and single-level fields
    for times in (local.times[:2], local.times[[0, 2]]):  # a contiguous run (zarr's direct read), a gap
        block = remote(times, channels)
        np.testing.assert_array_equal(block.values, local(times, channels).values)
        np.testing.assert_allclose(block.values, truth9.sel(time=times, channel=channels).values,
                                   rtol=1e-6)


def test_file_url_through_the_cli(world_store, score_inputs, tmp_path):
    res = subprocess.run([*HENS, "inspect", f"file://{world_store}"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert f"file://{world_store}" in res.stdout and "z500" in res.stdout
    out = tmp_path / "scores.zarr"
    res = subprocess.run([*HENS, "score", "--forecast", score_inputs["perfect"], "--truth",
                          f"file://{score_inputs['truth']}", "--out", out, "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (xr.open_zarr(out)["crps"] == 0).all()  # the perfect ensemble is the truth


def test_train_and_forecast_read_a_memory_url(world_store, ensemble_yaml, tmp_path,
                                             monkeypatch, capsys):
    url = _to_memory(world_store)
    ckpt = tmp_path / "ck.pt"
    code, _, err = _hens(monkeypatch, capsys, "train", "--data", url, "--out", ckpt,
                         "--steps", "2", "--embed-dim", "8", "--layers", "1", "--no-progress")
    assert code == 0, err
    stores = {}
    for name, data in (("remote", url), ("local", str(world_store))):
        config = ensemble_yaml(tmp_path, name=f"{name}.yaml", output=f"{name}.zarr", data=data,
                               models=[str(ckpt)], init_times=["2000-01-10T00"], seeds=1,
                               perturbation={"kind": "gaussian", "pairs": 1}, lead_hours=12)
        code, _, err = _hens(monkeypatch, capsys, "forecast", config, "--no-progress")
        assert code == 0, err
        stores[name] = open_store(tmp_path / f"{name}.zarr")
    assert json.loads(stores["remote"].attrs["source"]) == [url]  # the URL kept as given
    assert bool(stores["remote"]["completed"].all())
    for channel in ("z500", "t2m"):  # the same analyses, so the same members, bit for bit
        np.testing.assert_array_equal(stores["remote"][channel].values, stores["local"][channel].values)


@pytest.mark.parametrize(("url", "message"), [
    ("gs://weatherbench2/era5.zarr", r"reading gs:// needs a backend that is not installed; "
                                     r"pip install 'hens\[cloud\]'"),
    ("nosuch://era5.zarr", r"unknown protocol nosuch://"),
    ("memory://nowhere/era5.zarr", r"no Zarr store there"),
])
def test_bad_urls_are_one_error_line(url, message, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as without hens[cloud], even if installed
    for args in (["inspect", url], ["train", "--data", url, "--out", tmp_path / "ck.pt", "--steps", "1"]):
        code, _, err = _hens(monkeypatch, capsys, *args)
        assert code == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"hens: error: {url}: "), err
        assert re.search(message, lines[0]), lines[0]
    with pytest.raises(DataError, match=message):
        open_source([url])
