"""``hens forecast --plan``: the files and bytes a small run writes, its memory to 25 %."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import xarray as xr

from hens.pipelines.cli import main
from hens.pipelines.forecast.plan import plan_run
from hens.pipelines.forecast.run import run_forecast


def _files(store):
    return sum(1 for f in store.rglob("*") if f.is_file())


@pytest.mark.parametrize("overrides", [{}, {"batch_size": 6, "lead_hours": 48, "seeds": 1,
                                            "perturbation": {"kind": "gaussian", "pairs": 1}}])
def test_plan_gives_the_files_and_bytes_of_the_run(ensemble_yaml, tmp_path, overrides):
    config = ensemble_yaml(tmp_path, **overrides)
    plan = plan_run(config, ranks=2)
    run_forecast(config, progress=False)
    store = tmp_path / "ens.zarr"
    raw = xr.open_zarr(store)
    assert plan.members == raw.sizes["member"] and plan.init_times == raw.sizes["init_time"]
    assert plan.files == _files(store)
    assert plan.bytes == raw["fields"].nbytes + raw["completed"].nbytes
    shards = sum(1 for f in (store / "fields" / "c").rglob("*") if f.is_file())
    assert shards + plan.init_times * plan.batches_per_init == plan.files_per_init * plan.init_times
    assert plan.batches_per_rank == -(-plan.init_times * plan.batches_per_init // 2)


def test_plan_json_on_the_command_line(ensemble_yaml, tmp_path, monkeypatch, capsys):
    config = ensemble_yaml(tmp_path)
    monkeypatch.setattr(sys, "argv", ["hens", "forecast", str(config), "--plan", "--json", "--ranks", "4"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 0
    plan = json.loads(capsys.readouterr().out)
    assert {"members", "init_times", "files", "bytes", "rank_memory_bytes", "seconds_estimate"} <= set(plan)
    assert plan["seconds_estimate"] is None and plan["step_seconds"] is None and plan["ranks"] == 4 and plan["members"] == 16
    assert not (tmp_path / "ens.zarr").exists()  # nothing run


_PEAK = """
import sys
from hens.pipelines.forecast.run import run_forecast
run_forecast(sys.argv[1], progress=False)
status = open("/proc/self/status").read().splitlines()
print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024)
"""


def test_plan_memory_is_within_a_quarter_of_the_peak_rss(ensemble_yaml, tmp_path):
    config = ensemble_yaml(tmp_path, batch_size=16, lead_hours=48)
    plan = plan_run(config)
    res = subprocess.run([sys.executable, "-c", _PEAK, str(config)], capture_output=True, text=True,
                         timeout=300, check=True)
    peak = int(res.stdout.split()[-1])
    assert abs(plan.rank_memory_bytes - peak) <= 0.25 * peak, (plan.rank_memory_bytes, peak)


def test_timed_plan_estimates_a_wall_time_that_grows_with_members(ensemble_yaml, tiny_checkpoints, tmp_path):
    """--time: one timed batch step, scaled by the steps of each rank (an estimate, not checked
    against a run's wall; the scaling is checked with one step time for both sizes)."""
    from hens.pipelines.forecast.plan import wall_estimate

    small = plan_run(ensemble_yaml(tmp_path, name="small.yaml"), ranks=2, time=True)
    assert small.step_seconds > 0 and small.seconds_estimate > 0
    # 24 h of 6-hourly steps; breeding 2 cycles of two rows (control, perturbed) per pair, half the batch's rows
    assert small.steps_per_batch == 4 + 2
    deterministic = plan_run(ensemble_yaml(tmp_path, name="det.yaml", models=[str(tiny_checkpoints["det0"])], seeds=1))
    assert deterministic.steps_per_batch == 4 + 1  # one row per pair after the shared control runs
    big = plan_run(ensemble_yaml(tmp_path, name="big.yaml", perturbation={
        "kind": "hemispheric_bred_vector", "pairs": 8, "cycles": 2, "amplitude": 0.35}), ranks=2)
    assert big.seconds_estimate is None and big.members == 4 * small.members
    ratio = wall_estimate(big, small.step_seconds) / small.seconds_estimate
    assert 3 < ratio <= 4  # 4x the batches per rank; the last batch's write is not multiplied
    assert wall_estimate(big, small.step_seconds) > wall_estimate(replace(big, batches_per_rank=2), small.step_seconds)
