"""Campaign validation and the batch scripts' argument logic, without a cluster.

The batch scripts run under bash with a stub `srun` that prints its command line, so what
each script would launch (array line, --resume on restart, skipped finished outputs) is
checked in milliseconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hens_packages import era5_and_packages

from hens.forecast.errors import ConfigError, HensError
from hens.pipelines.campaign.submit import load_campaign, submit_campaign

REPO = Path(__file__).resolve().parents[2]
SLURM = REPO / "slurm"
HENS = [sys.executable, "-m", "hens.pipelines.cli"]


def _values(data: Path | str, **overrides) -> dict:
    values = {
        "data": str(data), "output": "campaign", "seeds": [0, 1], "train": {"steps": 30},
        "init_times": ["2000-01-20T00", "2000-01-27T00"], "lead_hours": 48, "ranks": 2,
        "perturbation": {"kind": "hemispheric_bred_vector", "pairs": 2, "cycles": 2},
    }
    values.update(overrides)
    return values


def _write(folder: Path, values: dict) -> Path:
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.mark.parametrize(("overrides", "message"), [
    ({"foo": 1}, "unknown key 'foo'"),
    ({"seeds": [0, 0]}, "seeds: lists a seed twice"),
    ({"seeds": -1}, "seeds: must be a count or a list of seeds"),
    ({"train": {"steps": 30, "epochs": 3}}, "train: unknown key 'epochs'"),
    ({"train": {"steps": "many"}}, "train.steps: must be int"),
    ({"train": {"steps": 30, "train_period": 1.5}}, "train.train_period: must be str or int"),
    ({"forecast": {"models": ["a.pt"]}}, "forecast: unknown key 'models'"),
    ({"forecast": {"seeds": 2}}, "forecast.seeds: 2 needs stochastic models"),
    ({"forecast": {"region": {"lat": [0, 10], "lon": [0, 10]}}}, "forecast: unknown key 'region'"),
    ({"forecast": {"output_every_hours": 7}}, "forecast.output_every_hours: must be a positive integer multiple of 6"),
    ({"lead_hours": 50}, "lead_hours: must be a positive integer multiple of 6"),
    ({"perturbation": {"kind": "magic"}}, "perturbation.kind: 'magic'"),
    ({"ranks": 3, "slurm": {"nodes": 2}}, "ranks: 3 do not divide over slurm nodes 2"),
    ({"ranks": 4, "slurm": {"gpus_per_node": 2}}, "ranks: 4 != nodes 1 x gpus_per_node 2"),
    ({"slurm": {"gpu": 1}}, "slurm: unknown key 'gpu'"),
    ({"score": {"thresholds": [1.5]}}, "score.thresholds: must be a list of quantile levels"),
    ({"score": "yes"}, "score: must be true, false or a mapping of `hens score` options, got 'yes'"),
    ({"ranks": 2, "slurm": {"gpus_per_node": 2, "train_ranks": 4}}, "slurm.train_ranks: 4 > gpus_per_node 2"),
])
def test_bad_campaigns_fail_with_one_line(world_store, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_campaign(_write(tmp_path, _values(world_store, **overrides)))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"train": {"stochastic": True}}, "train: pass exactly one of --minutes M or --steps N"),
    ({"train": {"steps": 30, "channels": ["z500", "q700"]}}, "train channels q700 are not in the data"),
    ({"train": {"steps": 30, "forcings": "solar_flux"}}, "train: unknown forcing solar_flux"),
    ({"train": {"steps": 30, "train_period": 120755, "valid_period": "2000-02"}}, "not a year; quote a period"),
    ({"train": {"steps": 30, "train_period": "2000-01", "valid_period": "2000-01-20:2000-02"}}, "overlap"),
    ({"train": {"steps": 30, "train_period": "2000-01", "valid_period": "2000-02", "val_days": 9}}, "--val-days"),
    ({"init_times": ["2000-01-01T06"]}, "needs the analysis at 1999-12-31T18"),
    ({"init_times": ["2000-02-28T00"], "lead_hours": 96}, "needs the truth \\(score\\) at"),
])
def test_campaigns_are_checked_against_the_data_before_submission(world_store, tmp_path, overrides, message):
    cfg = load_campaign(_write(tmp_path, _values(world_store, **overrides)))
    with pytest.raises(ConfigError, match=message):
        submit_campaign(cfg, dry_run=True)
    assert not (tmp_path / "campaign").exists()


def test_dry_run_chains_train_forecast_score_with_gpu_settings(world_store, tmp_path):
    slurm = {"partition": "gpu", "nodes": 2, "gpus_per_node": 4, "cpus_per_task": 8, "train_ranks": 4,
             "forecast_time": "01:00:00", "sbatch_args": ["--exclusive"]}
    cfg = load_campaign(_write(tmp_path, _values(world_store, ranks=8, slurm=slurm,
                                                 train={"minutes": 50, "stochastic": True, "layers": 2,
                                                        "forcings": ["year_progress", "day_progress"]},
                                                 score={"thresholds": [0.9, 0.99]})))
    sub = submit_campaign(cfg, dry_run=True)
    train, fc, score = (sub.commands[k] for k in ("train", "forecast", "score"))
    assert {"--array=0,1", "--ntasks=4", "--gpus-per-node=4", "--time=60", "--partition=gpu",
            "--exclusive"} <= set(train)
    script = train[train.index(str(SLURM / "train.sbatch")):]
    assert script[1:4] == [str(tmp_path / "campaign" / "checkpoints"), "--data", str(world_store.resolve())]
    assert {"--minutes 50", "--layers 2", "--stochastic"} <= {" ".join(script[i:i + 2]) for i in range(4, 10)} | {
        a for a in script if a == "--stochastic"}
    assert "--forcings year_progress,day_progress" in {" ".join(script[i:i + 2]) for i in range(len(script))}
    assert {"--array=0-1", "--ntasks=8", "--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4",
            "--cpus-per-task=8", "--time=01:00:00", "--dependency=afterok:<train>"} <= set(fc)
    assert "--dependency=afterok:<forecast>" in score
    # `hens score`'s list options are repeated, one value each
    assert score[-6:] == ["--truth", str(world_store.resolve()), "--threshold", "0.9", "--threshold", "0.99"]
    first = yaml.safe_load(sub.configs[0].read_text())
    assert first["init_times"] == ["2000-01-20T00"] and first["output"] == "2000-01-20T00.zarr"
    assert first["models"] == [str(tmp_path / "campaign" / "checkpoints" / f"sfno-seed{s}.pt") for s in (0, 1)]
    assert (tmp_path / "campaign" / "forecasts.txt").read_text().split() == [str(p) for p in sub.configs]


def test_cli_reports_a_bad_campaign_in_one_line(tmp_path):
    path = tmp_path / "campaign.yaml"
    path.write_text("data: nowhere.zarr\n")
    res = subprocess.run([*HENS, "campaign", str(path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.startswith("hens: error:") and res.stderr.count("\n") == 1, res.stderr


# ---- the batch scripts, with a stub srun -------------------------------------------------

@pytest.fixture
def stub_env(tmp_path):
    """PATH with `hens` (this venv) and an `srun` that prints its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text('#!/bin/sh\necho "srun $*"\n')
    (bin_dir / "srun").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _script(name: str, *args: str, env: dict, **slurm: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SLURM / name), *args], capture_output=True, text=True, timeout=60,
                          env={**env, **slurm})


def test_forecast_script_takes_its_array_line_and_resumes_an_existing_store(ensemble_yaml, stub_env, tmp_path):
    configs = [ensemble_yaml(tmp_path, name=f"ens{i}.yaml", output=f"ens{i}.zarr") for i in range(2)]
    listing = tmp_path / "configs.txt"
    listing.write_text("".join(f"{c}\n" for c in configs))
    res = _script("forecast.sbatch", str(listing), env=stub_env, SLURM_ARRAY_TASK_ID="1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == f"srun --kill-on-bad-exit=1 hens forecast {configs[1]} --no-progress"
    (tmp_path / "ens1.zarr").mkdir()  # a store from before: requeued, preempted, resubmitted
    res = _script("forecast.sbatch", str(listing), "--overwrite", env=stub_env, SLURM_ARRAY_TASK_ID="1",
                  SLURM_RESTART_COUNT="1")
    assert res.stdout.splitlines()[-1].endswith(f"forecast {configs[1]} --no-progress --resume"), res.stdout
    res = _script("forecast.sbatch", str(configs[1]), "--overwrite", env=stub_env)  # a first run may replace
    assert res.stdout.splitlines()[-1].endswith("--no-progress --overwrite"), res.stdout
    res = _script("forecast.sbatch", str(listing), env=stub_env, SLURM_ARRAY_TASK_ID="2")
    assert res.returncode == 2 and "has no line 3" in res.stderr


def test_forecast_script_stops_on_a_bad_config_in_one_line(stub_env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: nowhere.zarr\n")
    res = _script("forecast.sbatch", str(bad), env=stub_env)
    assert res.returncode != 0 and "srun" not in res.stdout
    assert res.stderr.strip().startswith("hens: error:") and res.stderr.strip().count("\n") == 0, res.stderr


def test_train_script_trains_its_seed_and_keeps_a_finished_checkpoint(stub_env, tmp_path):
    res = _script("train.sbatch", str(tmp_path / "ck"), "--data", "w.zarr", "--steps", "5", "--overwrite",
                  env=stub_env, SLURM_ARRAY_TASK_ID="3", SLURM_RESTART_COUNT="1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == (f"srun --kill-on-bad-exit=1 hens train --out {tmp_path}/ck/sfno-seed3.pt "
                                           "--seed 3 --no-progress --data w.zarr --steps 5")
    (tmp_path / "ck" / "sfno-seed3.pt").write_bytes(b"done")
    res = _script("train.sbatch", str(tmp_path / "ck"), "--data", "w.zarr", env=stub_env, SLURM_ARRAY_TASK_ID="3")
    assert res.returncode == 0 and "is finished" in res.stdout and "srun" not in res.stdout


def test_score_script_scores_its_store_once(stub_env, tmp_path):
    stores = tmp_path / "stores.txt"
    stores.write_text(f"{tmp_path}/a.zarr\n{tmp_path}/b.zarr\n")
    res = _script("score.sbatch", str(stores), "--truth", "w.zarr", env=stub_env, SLURM_ARRAY_TASK_ID="1")
    assert res.stdout.splitlines()[-1] == (f"srun hens score --forecast {tmp_path}/b.zarr --out "
                                           f"{tmp_path}/b.scores.zarr --no-progress --truth w.zarr")
    (tmp_path / "b.scores.zarr").mkdir()
    res = _script("score.sbatch", str(stores), "--truth", "w.zarr", env=stub_env, SLURM_ARRAY_TASK_ID="1")
    assert res.returncode == 0 and "is finished" in res.stdout and "srun" not in res.stdout


def test_score_script_starts_a_dask_cluster_across_its_nodes(stub_env, tmp_path):
    """Several nodes: a scheduler on the batch host, workers by srun, `hens score --scheduler`."""
    bin_dir = tmp_path / "bin"
    (bin_dir / "dask").write_text(  # a scheduler that writes its file, a worker that says so
        '#!/bin/sh\nif [ "$1" = scheduler ]; then echo \'{"type": "Scheduler", "address": "tcp://10.1.2.3:8786"}\' > "$3"; '
        'else echo "dask $*"; fi\n')
    (bin_dir / "hens").write_text('#!/bin/sh\necho "hens $*"\n')
    for name in ("dask", "hens"):
        (bin_dir / name).chmod(0o755)
    res = _script("score.sbatch", str(tmp_path / "a.zarr"), "--truth", "w.zarr", env=stub_env,
                  SLURM_NNODES="2", SLURM_NTASKS="8", SLURM_CPUS_PER_TASK="4", SLURM_JOB_ID="77")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert (f"srun --kill-on-bad-exit=0 dask worker --scheduler-file {tmp_path}/.hens-dask-77.json --nworkers 1 "
            "--nthreads 4 --no-dashboard") in lines
    assert lines[-1] == (f"hens score --forecast {tmp_path}/a.zarr --out {tmp_path}/a.scores.zarr --no-progress "
                         "--scheduler tcp://10.1.2.3:8786 --truth w.zarr")
    assert not (tmp_path / ".hens-dask-77.json").exists()  # removed on exit


def test_urls_stay_urls_through_the_campaign(world_store, tmp_path):
    """A data URL reaches hens train, the forecast YAMLs and hens score as written."""
    import uuid

    import fsspec

    name = f"/{uuid.uuid4().hex}/world.zarr"
    fsspec.filesystem("memory").put(str(world_store), name, recursive=True)
    url = f"memory:/{name}"  # checked against the data in this process, as a bucket would be
    cfg = load_campaign(_write(tmp_path, _values(url)))
    sub = submit_campaign(cfg, dry_run=True)
    train, score = sub.commands["train"], sub.commands["score"]
    assert train[train.index("--data") + 1] == url
    assert score[-2:] == ["--truth", url]
    assert all(yaml.safe_load(p.read_text())["data"] == [url] for p in sub.configs)


def test_a_campaign_of_given_models_submits_no_training(tmp_path):
    era5, packages = era5_and_packages(tmp_path)
    values = _values(era5, init_times=["2021-03-13T00", "2021-03-14T00"], lead_hours=24,
                     models=[p.name for p in packages])
    for key in ("seeds", "train"):
        values.pop(key)
    cfg = load_campaign(_write(tmp_path, values))
    sub = submit_campaign(cfg, dry_run=True)
    assert list(sub.commands) == ["forecast", "score"]
    assert not any(a.startswith("--dependency") for a in sub.commands["forecast"])
    first = yaml.safe_load(sub.configs[0].read_text())
    assert first["models"] == [str(p.resolve()) for p in packages]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda v: v, "a campaign trains \\(seeds:, train:\\) or takes models:, not both"),
    (lambda v: {k: x for k, x in v.items() if k not in ("seeds", "train", "models")},
     "needs seeds: and train: .* or models:"),
    (lambda v: {**{k: x for k, x in v.items() if k not in ("seeds", "train")}, "models": ["missing_package"]},
     "models: checkpoint missing_package does not exist"),
])
def test_bad_model_campaigns_fail_with_one_line(tmp_path, edit, message):
    era5, packages = era5_and_packages(tmp_path)
    values = edit(_values(era5, models=[p.name for p in packages]))
    with pytest.raises(ConfigError, match=message) as err:
        load_campaign(_write(tmp_path, values))
    assert "\n" not in str(err.value)


def test_given_models_are_checked_against_each_other_and_the_data(world_store, tmp_path):
    _, packages = era5_and_packages(tmp_path)
    values = _values(world_store, models=[str(p) for p in packages])
    for key in ("seeds", "train"):
        values.pop(key)
    cfg = load_campaign(_write(tmp_path, values))
    with pytest.raises(HensError, match="sfno_seed1 is for grid 9x16:equiangular"):
        submit_campaign(cfg, dry_run=True)


def test_forecast_options_are_the_forecast_yamls_own(world_store, tmp_path):
    """forecast: keys are checked by the forecast YAML's own fields and reach each forecast YAML."""
    from hens.pipelines.campaign.config import FORECAST_OPTIONS, ForecastOptions

    assert tuple(ForecastOptions.model_fields) == FORECAST_OPTIONS
    cfg = load_campaign(_write(tmp_path, _values(world_store, forecast={"precision": "bfloat16", "batch_size": 8})))
    values = cfg.forecast_values(cfg.init_times)
    assert values["precision"] == "bfloat16" and values["batch_size"] == 8 and "seeds" not in values


def test_training_periods_pass_through_the_campaign(world_store, tmp_path):
    """The campaign's train: keys are `hens train`'s own options (its signature), periods too."""
    from hens.pipelines import cli
    from hens.pipelines.campaign.config import TRAIN_OPTIONS

    import inspect

    params = set(inspect.signature(cli.train).parameters) - {"data", "out", "seed", "overwrite", "progress"}
    assert set(TRAIN_OPTIONS) == params and TRAIN_OPTIONS["train_period"] == (str, int)
    train = {"steps": 30, "train_period": "2000-01-01:2000-01-31", "valid_period": "2000-02-10:2000-02-29"}
    sub = submit_campaign(load_campaign(_write(tmp_path, _values(world_store, train=train))), dry_run=True)
    pairs = {" ".join(sub.commands["train"][i:i + 2]) for i in range(len(sub.commands["train"]))}
    assert {"--train-period 2000-01-01:2000-01-31", "--valid-period 2000-02-10:2000-02-29"} <= pairs
    bad = {**train, "train_period": "1999"}
    with pytest.raises(HensError, match="--train-period 1999 holds 0 time"):
        submit_campaign(load_campaign(_write(tmp_path, _values(world_store, train=bad))), dry_run=True)
