"""`hens calibrate` on the test world with a tiny untrained checkpoint: the tuned amplitude gives
the target spread/skill when the ensemble is run and scored for real, a higher target needs a
higher amplitude, the ensemble's own verification block is refused, bad input is one line.

The untrained network's error is large and its spread saturates near SSR 0.9 (at 20x the
usual amplitude), so the targets here are 0.6 and 0.3: what is tested is reaching a target."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml

from hens.pipelines.calibrate.tune import Trial, calibrate, calibrated_yaml, next_value, search

#: initial times of the ensembles below: late in the 60-day world, so that days 3-5 of the
#: calibration runs fit before them (data before 2000-02-15) and after them (2000-02-24)
VERIFIED = ["2000-02-20T00"]
TARGET = 0.6


@pytest.fixture(scope="module")
def det_yaml(ensemble_yaml, tiny_checkpoints, tmp_path_factory):
    """One deterministic checkpoint x 4 bred pairs (8 members): all the spread is the perturbation's."""
    folder = tmp_path_factory.mktemp("calibrate")
    return ensemble_yaml(folder, init_times=VERIFIED, lead_hours=48, models=[str(tiny_checkpoints["det0"])],
                         seeds=1, batch_size=8,
                         perturbation={"kind": "hemispheric_bred_vector", "pairs": 4, "cycles": 2, "amplitude": 0.35})


@pytest.fixture(scope="module")
def calibrated(det_yaml):
    """The calibration for SSR 0.6 on two initial times of the data (a few runs)."""
    return calibrate(det_yaml, target=TARGET, inits=2, tolerance=0.05, max_iterations=6)


def test_the_tuned_amplitude_gives_the_target_ssr_when_run_and_scored(calibrated, det_yaml, world_store, tmp_path):
    from hens.pipelines.forecast.run import run_forecast
    from hens.scoring.evaluate.score import score_ensemble
    from hens.scoring.plots.scores import open_scores

    assert calibrated.converged and abs(calibrated.best.ssr / TARGET - 1.0) <= 0.05
    values = yaml.safe_load(calibrated_yaml(det_yaml, calibrated))
    block = values["calibration"]
    assert values["perturbation"]["amplitude"] == block["value"] == calibrated.best.value
    assert block["init_times"] == ["2000-01-02T00", "2000-02-24T00"]  # clear of 2000-02-19T12 .. 2000-02-22T00
    # the tuned YAML's ensemble on the calibration's own times, through hens forecast and hens score
    values.update(init_times=block["init_times"], lead_hours=120, output_every_hours=24,
                  data=str(world_store), output=str(tmp_path / "check.zarr"))
    config = tmp_path / "check.yaml"
    config.write_text(yaml.safe_dump(values, sort_keys=False))
    store = run_forecast(config, progress=False)
    scores = open_scores(score_ensemble(store, world_store, out=tmp_path / "check.scores.zarr", progress=False))
    days_3_to_5 = np.array([72, 96, 120], dtype="timedelta64[h]").astype("timedelta64[ns]")
    ssr = scores["spread_skill_ratio"].sel(channel=["z500", "t2m"], lead_time=days_3_to_5)
    assert scores.attrs["ensemble_size"] == calibrated.members == 8
    assert abs(float(ssr.mean()) / TARGET - 1.0) <= 0.05, ssr.values


def test_a_higher_target_needs_a_higher_amplitude(calibrated, det_yaml):
    low = calibrate(det_yaml, target=TARGET / 2, inits=2, tolerance=0.05, max_iterations=6)
    assert low.converged and abs(low.best.ssr / (TARGET / 2) - 1.0) <= 0.05
    assert low.best.value < calibrated.best.value
    assert low.trials[0].ssr == calibrated.trials[0].ssr  # the same members: the start is measured the same


def test_noise_scale_widens_a_stochastic_ensemble(ensemble_yaml, tiny_checkpoints, tmp_path):
    config = ensemble_yaml(tmp_path, init_times=VERIFIED, lead_hours=48, models=[str(tiny_checkpoints["stoch0"])],
                           perturbation={"kind": "none"}, seeds=4, batch_size=8)
    result = calibrate(config, inits=1, max_iterations=2)
    assert result.parameter == "noise_scale" and result.members == 8
    first, second = result.trials
    assert second.value > first.value == 1.0 and second.ssr > first.ssr


def test_the_search_reaches_a_target_that_spread_only_approaches():
    """SSR = 0.3 + a^0.8 (model spread at a = 0, growth slower than linear): bracketed in a few steps."""
    def ssr(a):
        return 0.3 + a ** 0.8, {}

    trials, converged = search(ssr, 0.35, target=1.0, tolerance=0.01, max_iterations=8)
    assert converged and len(trials) <= 6 and abs(trials[-1].ssr - 1.0) <= 0.01
    flat = [Trial(0.35, 2.0, {}), Trial(0.0875, 1.99, {})]
    assert next_value(flat, 1.0) == pytest.approx(0.0875 / 4, rel=0.01)  # at most x4 per step


def _cli(monkeypatch, capsys, *args):
    from hens.pipelines.cli import main

    monkeypatch.setattr("sys.argv", ["hens", "calibrate", *map(str, args), "--no-progress"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr()


def test_initial_times_in_the_verification_block_are_refused(det_yaml, monkeypatch, capsys):
    code, out = _cli(monkeypatch, capsys, det_yaml, "--init-times", "2000-01-05T00,2000-02-17T00")
    lines = out.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and out.out == ""
    assert lines[0] == ("hens: error: calibration init time 2000-02-17T00 uses 2000-02-16T12 .. 2000-02-22T00, which "
                        "meets the ensemble's verification block 2000-02-19T12 .. 2000-02-22T00 (its init_times, "
                        "breeding analyses and 48 h of leads); choose times outside it")


@pytest.mark.parametrize("case, args, message", [
    ("missing yaml", ("{folder}/nope.yaml",), "cannot read config .*nope.yaml"),
    ("no noise", ("{yaml}", "--tune", "noise_scale"), "these models have no noise to scale"),
    ("unknown tune", ("{yaml}", "--tune", "spread"), "--tune='spread' is not an option"),
    ("channel", ("{yaml}", "--channels", "q850"), "channel 'q850' is not a channel of the models"),
    ("period", ("{yaml}", "--period", "2000-02-16:2000-02-23"), "no 00 UTC initial time in --period"),
    ("bad time", ("{yaml}", "--init-times", "soon"), "--init-times: cannot read 'soon'"),
    ("not in data", ("{yaml}", "--init-times", "1999-06-01T00"), "needs the analysis of 1999-05-31T12"),
    ("target", ("{yaml}", "--target-ssr", "0"), "--target-ssr must be a positive number"),
    ("out exists", ("{yaml}", "--out", "{yaml}"), "exists; pass --force to replace it"),
])
def test_bad_input_is_one_line(det_yaml, monkeypatch, capsys, case, args, message):
    args = [a.format(folder=det_yaml.parent, yaml=det_yaml) for a in args]
    code, out = _cli(monkeypatch, capsys, *args)
    lines = out.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("hens: error: "), out.err
    assert re.search(message, lines[0]), lines[0]


def test_noise_scale_in_the_yaml_scales_a_stochastic_models_noise(ensemble_yaml, tiny_checkpoints, tmp_path):
    from hens.forecast.errors import ConfigError
    from hens.pipelines.forecast.config import load_config
    from hens.pipelines.forecast.run import compute_member

    common = {"init_times": VERIFIED, "lead_hours": 12, "seeds": 2, "batch_size": 2, "perturbation": {"kind": "none"}}
    stochastic = [str(tiny_checkpoints["stoch0"])]
    base = ensemble_yaml(tmp_path, name="base.yaml", models=stochastic, **common)
    scaled = ensemble_yaml(tmp_path, name="scaled.yaml", models=stochastic, noise_scale=2.0, **common)
    assert "noise_scale" not in load_config(base).to_dict()  # stores written before the key still resume
    assert load_config(scaled).to_dict()["noise_scale"] == 2.0
    a, b = (compute_member(c, VERIFIED[0], 1)["z500"].values for c in (base, scaled))
    assert (a[0] == b[0]).all() and not np.allclose(a[1:], b[1:])
    deterministic = ensemble_yaml(tmp_path, name="det.yaml", models=[str(tiny_checkpoints["det0"])], noise_scale=2.0,
                                  **dict(common, seeds=1, perturbation={"kind": "gaussian"}))
    with pytest.raises(ConfigError, match="noise_scale: 2.0 scales the noise of stochastic checkpoints"):
        compute_member(deterministic, VERIFIED[0], 0)


def test_times_come_from_the_validation_period_then_the_training_period_then_the_data():
    from types import SimpleNamespace

    from hens.pipelines.calibrate.times import calibration_times

    def ns(text):
        return np.datetime64(text, "ns")

    # only what calibration_times reads of a ForecastConfig: the verification block's ends
    cfg = SimpleNamespace(init_times=[ns("2000-03-20T00")], lead_hours=48,
                          perturbation=SimpleNamespace(cycles=2, bred=True))
    data = np.arange(ns("2000-01-01T00"), ns("2000-04-01T00"), np.timedelta64(6, "h"))
    split = {"train": ["2000-01-01T00", "2000-02-15T18", 188], "val": ["2000-02-20T00", "2000-03-31T18", 168]}
    block = (ns("2000-03-19T12"), ns("2000-03-22T00"))
    got = calibration_times(cfg, data, last_lead=120, splits=[split, split], count=3)
    assert got.origin == "the checkpoints' validation period 2000-02-20T00 .. 2000-03-31T18"
    assert len(got.times) == 3
    for t in got.times:  # the whole window held out from training and clear of the verified cases
        first, last = t - np.timedelta64(12, "h"), t + np.timedelta64(120, "h")
        assert ns("2000-02-20T00") <= first and last <= ns("2000-03-31T18")
        assert last < block[0] or first > block[1]
    # a validation period the verification block leaves no room in: the training period
    short = dict(split, val=["2000-03-16T00", "2000-03-26T00", 40])
    got = calibration_times(cfg, data, last_lead=120, splits=[short], count=2)
    assert got.origin.startswith("the checkpoints' training period 2000-01-01T00")
    assert all(t + np.timedelta64(120, "h") <= ns("2000-02-15T18") for t in got.times)
    # checkpoints that record no split (published packages): the data's record
    got = calibration_times(cfg, data, last_lead=120, splits=[{}], count=2)
    assert got.origin.startswith("the data") and got.times[0] == ns("2000-01-02T00")
