"""`hens score` and `hens plot` as a user meets them: outputs, and one error line for bad input."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import xarray as xr

HENS = [sys.executable, "-m", "hens.pipelines.cli"]


def _run(*args):
    return subprocess.run([*HENS, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_score_then_plot(score_inputs, tmp_path):
    out = tmp_path / "perfect.scores.zarr"
    res = _run("score", "--forecast", score_inputs["perfect"], "--truth", score_inputs["truth"],
               "--out", out, "--threshold", "0.9", "--no-progress")
    assert res.returncode == 0, res.stderr
    ds = xr.open_zarr(out)
    assert list(ds["threshold"].values) == [0.9] and (ds["crps"] == 0).all()
    res = _run("plot", out, "--out", tmp_path / "figs")
    assert res.returncode == 0, res.stderr
    pngs = sorted((tmp_path / "figs").glob("*.png"))
    assert len(pngs) == 10 and all(p.stat().st_size > 0 for p in pngs)


@pytest.mark.parametrize("case, message", [
    ("exists", "exists; pass --overwrite to replace it"),
    ("not hens", "is not a hens ensemble store"),
    ("no channel", "lacks channel t2m"),
    ("no time", "lacks valid time 2000-01-21T06:00"),
    ("incomplete", "not completed .* --drop-incomplete"),
    ("thresholds", "hens.pipelines.cli score: Invalid value for '--threshold'"),
    ("old list spelling", r"No such option: --thresholds \(Possible options: --threshold\)"),
    ("thresholds out of range", r"thresholds \(0\.9, 1\.5\) must be distinct .* in \(0, 1\)"),
    ("plot other store", "is not a hens scores store"),
    ("damaged shard", (r"damaged\.zarr: array fields, chunk fields/c/1/2/0/0/0/0 is unreadable \(ValueError: "
                       r".*checksum.*\); delete it and the batch's flag file completed/c/1/2, then rerun "
                       r"`hens forecast CONFIG --resume`")),
    ("damaged flag", (r"damaged\.zarr: array completed, chunk completed/c/2/3 is unreadable \(RuntimeError: "
                      r".*\); delete that file .* --resume`, or rerun with --overwrite")),
])
def test_bad_input_is_one_error_line(score_inputs, tmp_path, case, message):
    out = tmp_path / "scores.zarr"
    forecast, truth, extra = score_inputs["perfect"], score_inputs["truth"], []
    if case == "exists":
        out.mkdir()
    elif case == "not hens":
        forecast = score_inputs["truth"]
    elif case == "no channel":
        truth = score_inputs["truth_z500"]
    elif case == "no time":
        truth = score_inputs["truth_short"]
    elif case == "incomplete":
        forecast = score_inputs["incomplete"]
    elif case.startswith("damaged"):
        forecast = shutil.copytree(score_inputs["perfect"], tmp_path / "damaged.zarr")
        key = "fields/c/1/2/0/0/0/0" if case == "damaged shard" else "completed/c/2/3"
        (forecast / key).write_bytes(b"not a chunk")
    elif case == "thresholds":
        extra = ["--threshold", "high"]
    elif case == "old list spelling":
        extra = ["--thresholds", "0.9,0.99"]
    elif case == "thresholds out of range":
        extra = ["--threshold", "0.9", "--threshold", "1.5"]
    if case == "plot other store":
        res = _run("plot", score_inputs["perfect"], "--out", tmp_path / "figs")
    else:
        res = _run("score", "--forecast", forecast, "--truth", truth, "--out", out, "--no-progress", *extra)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hens: error: "), res.stderr
    assert re.search(message, lines[0]), lines[0]
    assert case == "exists" or not out.exists()


def test_local_cluster_scores_equal_the_threaded_ones_bit_for_bit(score_inputs, tmp_path):
    """`--workers 2` (a LocalCluster of 2 processes) sums the same pieces in the same tree."""
    from hens.scoring.evaluate.score import score_ensemble

    common = {"incomplete": "drop", "progress": False}
    threads = score_ensemble(score_inputs["incomplete"], score_inputs["truth"], out=tmp_path / "t.zarr", **common)
    res = _run("score", "--forecast", score_inputs["incomplete"], "--truth", score_inputs["truth"],
               "--out", tmp_path / "c.zarr", "--workers", "2", "--drop-incomplete", "--no-progress")
    assert res.returncode == 0, res.stderr
    a, b = xr.open_zarr(threads).load(), xr.open_zarr(tmp_path / "c.zarr").load()
    assert b.attrs["scheduler"] == "LocalCluster, 2 processes"
    for name in a.data_vars:
        assert a[name].dtype == b[name].dtype and a[name].values.tobytes() == b[name].values.tobytes(), name


def test_scheduler_and_workers_exclude_each_other(score_inputs, tmp_path):
    res = _run("score", "--forecast", score_inputs["perfect"], "--truth", score_inputs["truth"], "--out",
               tmp_path / "s.zarr", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1", "--no-progress")
    assert res.returncode == 2 and "not both" in res.stderr
