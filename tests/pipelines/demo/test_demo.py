"""``hens demo`` end to end at toy size: every stage runs, products and summary are written,
a second run reuses everything (no retraining, no new forecasts, same scores), and a run
with another option rebuilds what it changes and what was made from it, nothing else."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import xarray as xr
import yaml

from hens.forecast.errors import OutputExists
from hens.forecast.stats import stats_path
from hens.pipelines.demo.run import ENSEMBLES, DemoSettings, run_demo

#: a 2 + 1 model, 1-pair, one-init, 1-day version of the demo on the session's 60-day world
#: (its bred-vector amplitude calibrated in 2 runs of its own 4 members from one initial time)
TOY = DemoSettings(days=60.0, checkpoints=2, deterministic_minutes=0.04, stochastic_minutes=0.05, pairs=1,
                   inits=2, init_spacing_days=1, lead_days=1, workers=2, calibration_inits=1,
                   calibration_iterations=2)


@pytest.fixture
def demo_folder(world_store, tmp_path):
    shutil.copytree(world_store, tmp_path / "world.zarr")
    shutil.copytree(stats_path(world_store), stats_path(tmp_path / "world.zarr"))
    return tmp_path


def test_demo_runs_the_chain_and_reuses_it(demo_folder):
    summary = run_demo(demo_folder, settings=TOY)
    text = summary.read_text()
    for name in ENSEMBLES:
        assert f"| {name} | z500 |" in text
        scores = xr.open_zarr(demo_folder / "scores" / f"{name}.zarr")
        assert scores.attrs["ensemble_size"] == TOY.members
        assert float(scores["crps"].sel(channel="z500").isel(lead_time=-1)) > 0
    for figure in ("comparison_errors.png", "comparison_spectra.png", "bred/errors.png", "world/ke_spectrum.png"):
        assert (demo_folder / "plots" / figure).stat().st_size > 10_000
    assert "| physics | 4 | 2 |" in text
    assert len(list((demo_folder / "products").glob("bred_*.nc"))) == TOY.inits  # 4 members (2 x 1 pair x 2 signs), 2 initial times
    # the bred-vector amplitude is hens calibrate's, tuned on times held out from training or the training block
    calibrated = yaml.safe_load((demo_folder / "ensembles" / "bred.yaml").read_text())
    block = calibrated["calibration"]
    assert calibrated["perturbation"]["amplitude"] == block["value"] and block["iterations"] <= 2
    assert block["init_times_from"].startswith("the checkpoints' ")  # validation period, else training
    assert "## Calibration (hens calibrate)" in text and f"perturbation.amplitude = {block['value']}" in text

    # the stochastic SFNO's training time counts that of sfno-0, which it started from
    from hens.models.checkpoint import load_checkpoint
    from hens.pipelines.demo.summary import _wall_seconds

    walls = {n: load_checkpoint(demo_folder / "checkpoints" / f"{n}.pt").extra["wall_seconds"] for n in ("sfno-0", "stochastic")}
    assert _wall_seconds(demo_folder / "checkpoints" / "stochastic.pt") == pytest.approx(sum(walls.values()))

    # finalize rewrites an ensemble's metadata; training rewrites its checkpoint
    products = sorted((demo_folder / "checkpoints").glob("*.pt")) + sorted(
        (demo_folder / "ensembles").glob("*.zarr/zarr.json")) + [demo_folder / "ensembles" / "bred.yaml"]
    assert len(products) == TOY.checkpoints + 1 + len(ENSEMBLES) + 1
    stamps = {p: p.stat().st_mtime_ns for p in products}
    crps = xr.open_zarr(demo_folder / "scores" / "bred.zarr")["crps"].values
    run_demo(demo_folder, settings=TOY)
    assert {p: p.stat().st_mtime_ns for p in products} == stamps
    assert (xr.open_zarr(demo_folder / "scores" / "bred.zarr")["crps"].values == crps).all()

    # another budget for the deterministic SFNOs: they, the stochastic SFNO fine-tuned from
    # sfno-0, both SFNO stores, the scores and products are rebuilt; the physics store is reused

    products.append(demo_folder / "products" / "made_from.json")
    stamps = {p: p.stat().st_mtime_ns for p in products}
    other = dataclasses.replace(TOY, deterministic_minutes=0.05, deterministic_loss="mse")
    run_demo(demo_folder, settings=other)
    changed = {p.relative_to(demo_folder).as_posix() for p in products if p.stat().st_mtime_ns != stamps[p]}
    assert changed == {"checkpoints/sfno-0.pt", "checkpoints/sfno-1.pt", "checkpoints/stochastic.pt",
                       "ensembles/bred.yaml", "ensembles/bred.zarr/zarr.json", "ensembles/stochastic.zarr/zarr.json",
                       "products/made_from.json"}
    ckpt = load_checkpoint(demo_folder / "checkpoints" / "sfno-0.pt")
    assert ckpt.extra["options"]["minutes"] == 0.05 and ckpt.extra["options"]["loss"] == "mse"
    assert ckpt.extra["loss"].startswith("area-weighted MSE")
    assert not (xr.open_zarr(demo_folder / "scores" / "bred.zarr")["crps"].values == crps).all()


def test_demo_refuses_an_unknown_loss_before_any_work(tmp_path, capsys, monkeypatch):
    from hens.pipelines.cli import main

    monkeypatch.setattr("sys.argv", ["hens", "demo", "--out", str(tmp_path / "d"), "--loss", "mae"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "--loss='mae' is not an option" in err
    assert not (tmp_path / "d").exists()


def test_demo_refuses_another_world_length(demo_folder):
    with pytest.raises(OutputExists, match="--days 60.0"):
        run_demo(demo_folder, settings=DemoSettings(days=90.0))


def test_another_training_seed_draws_other_models_only(tmp_path):
    from hens.pipelines.demo.run import _train_configs

    def seeds(settings):
        return {name: values["seed"] for name, values in _train_configs(tmp_path, tmp_path / "w.zarr", settings).items()}

    first, second = seeds(TOY), seeds(dataclasses.replace(TOY, training_seed=1))
    assert first == {"sfno-0": 0, "sfno-1": 1, "stochastic": 1000}  # the documented runs' seeds
    assert set(first) == set(second) and not set(first.values()) & set(second.values())


@pytest.mark.parametrize(("options", "expected"), [([], 3 * 3.0), (["--stochastic-minutes", "7"], 7.0)])
def test_the_stochastic_budget_is_its_own_option(monkeypatch, tmp_path, options, expected):
    from typer.testing import CliRunner

    import hens.pipelines.demo.run as demo_run
    from hens.pipelines.cli import app

    given = []
    monkeypatch.setattr(demo_run, "run_demo", lambda out, settings: given.append(settings))
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--minutes", "3", *options])
    assert res.exit_code == 0, res.output
    assert given[0].deterministic_minutes == 3.0 and given[0].stochastic_minutes == pytest.approx(expected)
