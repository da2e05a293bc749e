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
#: (its bred-vector amplitude calibrated in 2 runs of its own 4 members from one initial time);
#: the stochastic SFNO gets the minutes sfno-1 trained
TOY = DemoSettings(days=60.0, checkpoints=2, deterministic_minutes=0.04, stochastic_checkpoints=1, pairs=1,
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
    # the spectral check's resampled column: a fraction of draws for every ensemble and channel
    checks = [row.split(" | ") for row in text.splitlines() if row.startswith("| ") and (" ok | " in row or " OUT | " in row)]
    assert "resamples above 20%" in text and len(checks) == 4 * len(ENSEMBLES)
    assert all(0.0 <= float(cells[5]) <= 1.0 for cells in checks)
    assert len(list((demo_folder / "products").glob("bred_*.nc"))) == TOY.inits  # 4 members (2 x 1 pair x 2 signs), 2 initial times
    # the bred-vector amplitude is hens calibrate's, tuned on times held out from training or the training block
    calibrated = yaml.safe_load((demo_folder / "ensembles" / "bred.yaml").read_text())
    block = calibrated["calibration"]
    assert calibrated["perturbation"]["amplitude"] == block["value"] and block["iterations"] <= 2
    assert block["init_times_from"].startswith("the checkpoints' ")  # validation period, else training
    assert "## Calibration (hens calibrate)" in text and f"perturbation.amplitude = {block['value']}" in text

    # the stochastic SFNO's training time counts that of sfno-0, which it started from; its
    # budget is what sfno-1 trained, so the stochastic ensemble has no more minutes in all
    from hens.models.checkpoint import load_checkpoint
    from hens.pipelines.demo.summary import _wall_seconds

    extras = {n: load_checkpoint(demo_folder / "checkpoints" / f"{n}.pt").extra for n in ("sfno-0", "sfno-1", "stochastic-0")}
    walls = {n: extra["wall_seconds"] for n, extra in extras.items()}
    assert _wall_seconds(demo_folder / "checkpoints" / "stochastic-0.pt") == pytest.approx(walls["sfno-0"] + walls["stochastic-0"])
    budget = extras["stochastic-0"]["options"]["minutes"]
    assert walls["sfno-1"] / 60.0 - 0.01 < budget <= walls["sfno-1"] / 60.0

    # finalize rewrites an ensemble's metadata; training rewrites its checkpoint
    products = sorted((demo_folder / "checkpoints").glob("*.pt")) + sorted(
        (demo_folder / "ensembles").glob("*.zarr/zarr.json")) + [demo_folder / "ensembles" / "bred.yaml"]
    assert len(products) == TOY.checkpoints + TOY.stochastic_checkpoints + len(ENSEMBLES) + 1
    stamps = {p: p.stat().st_mtime_ns for p in products}
    crps = xr.open_zarr(demo_folder / "scores" / "bred.zarr")["crps"].values
    run_demo(demo_folder, settings=TOY)
    assert {p: p.stat().st_mtime_ns for p in products} == stamps
    assert (xr.open_zarr(demo_folder / "scores" / "bred.zarr")["crps"].values == crps).all()

    # another budget for the deterministic SFNOs: they, the stochastic SFNO fine-tuned from
    # sfno-0, both SFNO stores, the scores and products are rebuilt; the physics store is reused

    products.append(demo_folder / "products" / "made_from.json")
    stamps = {p: p.stat().st_mtime_ns for p in products}
    other = dataclasses.replace(TOY, deterministic_minutes=0.05, deterministic_loss="mse", input_noise=0.2,
                                input_noise_degrees=1, pushforward=2)
    run_demo(demo_folder, settings=other)
    changed = {p.relative_to(demo_folder).as_posix() for p in products if p.stat().st_mtime_ns != stamps[p]}
    assert changed == {"checkpoints/sfno-0.pt", "checkpoints/sfno-1.pt", "checkpoints/stochastic-0.pt",
                       "ensembles/bred.yaml", "ensembles/bred.zarr/zarr.json", "ensembles/stochastic.zarr/zarr.json",
                       "products/made_from.json"}
    ckpt = load_checkpoint(demo_folder / "checkpoints" / "sfno-0.pt")
    assert ckpt.extra["options"]["minutes"] == 0.05 and ckpt.extra["options"]["loss"] == "mse"
    assert ckpt.extra["loss"].startswith("area-weighted MSE")
    # --input-noise and --pushforward reach the deterministic SFNOs; the stochastic fine-tuning sees
    # clean inputs from analyses
    assert ckpt.extra["input_noise"] == 0.2 == ckpt.extra["options"]["input_noise"]
    assert ckpt.extra["input_noise_degrees"] == 1 == ckpt.extra["options"]["input_noise_degrees"]
    assert ckpt.extra["pushforward"] == 2 == ckpt.extra["options"]["pushforward"]
    fine_tuned = load_checkpoint(demo_folder / "checkpoints" / "stochastic-0.pt").extra
    assert fine_tuned["input_noise"] == 0.0 and fine_tuned["pushforward"] == 1
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
        configs = _train_configs(tmp_path, tmp_path / "w.zarr", settings, stochastic_minutes=1.0)
        return {name: values["seed"] for name, values in configs.items()}

    first, second = seeds(TOY), seeds(dataclasses.replace(TOY, training_seed=1))
    assert first == {"sfno-0": 0, "sfno-1": 1, "stochastic-0": 1000}  # the documented runs' seeds
    assert set(first) == set(second) and not set(first.values()) & set(second.values())


def test_two_stochastic_sfnos_start_from_two_deterministic_ones(tmp_path):
    """The science run's design: 4 deterministic SFNOs, 2 stochastic ones fine-tuned from sfno-0
    and sfno-1, and a stochastic ensemble of 2 checkpoints x 4 pairs x 2 signs x 2 seeds."""
    from hens.forecast.members import MemberLayout
    from hens.pipelines.demo.run import _ensemble_yaml, _train_configs

    settings = DemoSettings(pairs=4)
    configs = _train_configs(tmp_path, tmp_path / "w.zarr", settings, stochastic_minutes=6.0)
    stochastic = {name: values for name, values in configs.items() if values.get("stochastic")}
    assert {n: (v["init_from"].name, v["seed"], v["minutes"]) for n, v in stochastic.items()} == {
        "stochastic-0": ("sfno-0.pt", 1000, 6.0), "stochastic-1": ("sfno-1.pt", 1001, 6.0)}
    other = _train_configs(tmp_path, tmp_path / "w.zarr", dataclasses.replace(settings, training_seed=1), 6.0)
    assert [other[n]["seed"] for n in stochastic] == [1002, 1003]

    draft = yaml.safe_load(_ensemble_yaml(tmp_path, "stochastic", tmp_path / "w.zarr", ["2000-01-01T00"],
                                          settings).read_text())
    assert draft["models"] == ["../checkpoints/stochastic-0.pt", "../checkpoints/stochastic-1.pt"]
    design = MemberLayout(checkpoints=len(draft["models"]), pairs=draft["perturbation"]["pairs"], seeds=draft["seeds"])
    assert design.size == settings.members == 32


@pytest.mark.parametrize("k", [0, 3, 4])
def test_the_demo_refuses_stochastic_checkpoints_that_do_not_divide_the_deterministic_ones(tmp_path, capsys,
                                                                                          monkeypatch, k):
    from hens.pipelines.cli import main

    monkeypatch.setattr("sys.argv", ["hens", "demo", "--out", str(tmp_path / "d"), "--stochastic-checkpoints", str(k)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "--stochastic-checkpoints" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(("options", "expected"), [([], None), (["--stochastic-minutes", "7"], 7.0)])
def test_the_stochastic_budget_is_its_own_option(monkeypatch, tmp_path, options, expected):
    from typer.testing import CliRunner

    import hens.pipelines.demo.run as demo_run
    from hens.pipelines.cli import app

    given = []
    monkeypatch.setattr(demo_run, "run_demo", lambda out, settings: given.append(settings))
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--minutes", "3", *options])
    assert res.exit_code == 0, res.output
    assert given[0].deterministic_minutes == 3.0 and given[0].stochastic_minutes == expected
    assert given[0].stochastic_checkpoints == 2
