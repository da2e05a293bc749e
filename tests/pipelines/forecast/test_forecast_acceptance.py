"""Issue 5 acceptance: 4 checkpoints x 8 +/- bred-vector pairs x 2 seeds = 128 members, 10 days,
``torchrun --nproc_per_node 2`` into one store opened by ``hens.forecast.open_store`` with named dims and
CF attributes. Checkpoints: tiny stochastic SFNOs (embed 16, 2 blocks) quickly trained with
``hens train`` (300 steps each, seeds 0-3) on the session's 60-day world.

Run with ``pytest -m slow -s tests/pipelines/forecast/test_forecast_acceptance.py`` (prints the wall time).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from hens.forecast.store_reader import open_store

pytestmark = [pytest.mark.slow, pytest.mark.dist]
HENS = [sys.executable, "-m", "hens.pipelines.cli"]


def test_128_member_ten_day_ensemble_on_two_ranks(world_store, tmp_path):
    models = []
    for seed in range(4):
        out = tmp_path / f"ck{seed}.pt"
        subprocess.run([*HENS, "train", "--data", str(world_store), "--out", str(out), "--stochastic",
                        "--seed", str(seed), "--steps", "300", "--embed-dim", "16", "--layers", "2",
                        "--batch", "4", "--members", "2", "--no-progress"], check=True, capture_output=True)
        models.append(out.name)
    config = tmp_path / "ens.yaml"
    config.write_text(yaml.safe_dump({
        "data": str(world_store), "output": "ens.zarr", "init_times": ["2000-01-20T00", "2000-02-10T00"],
        "lead_hours": 240, "models": models,
        "perturbation": {"kind": "hemispheric_bred_vector", "pairs": 8, "cycles": 3, "amplitude": 0.35},
        "seeds": 2, "batch_size": 16, "seed": 0,
    }))
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "hens.pipelines.cli", "forecast", str(config), "--no-progress"],
                         capture_output=True, text=True, timeout=1800)
    wall = time.monotonic() - start
    assert res.returncode == 0, res.stderr[-3000:]
    ds = open_store(tmp_path / "ens.zarr")
    assert ds["z500"].dims == ("init_time", "member", "lead_time", "lat", "lon")
    assert ds.sizes == {"init_time": 2, "member": 128, "lead_time": 41, "lat": 32, "lon": 64}
    assert ds["z500"].attrs["units"] == "m2 s-2" and ds["lat"].attrs["standard_name"] == "latitude"
    assert ds["lead_time"].values[-1] == np.timedelta64(240, "h") and ds["completed"].values.all()
    assert np.isfinite(ds["t2m"].values).all() and ds.attrs["world_size"] == 2
    assert sorted(set(ds["checkpoint"].values)) == [0, 1, 2, 3] and len(json.loads(ds.attrs["checkpoints"])) == 4
    spread = ds["z500"].isel(init_time=0).std("member").mean(["lat", "lon"]).values
    assert spread[-1] > spread[0] > 0  # spread grows with lead time
    print(f"\n128 members x 2 init times x 10 days on 2 ranks: {wall:.1f} s wall "
          f"({ds.attrs['wall_seconds']:.1f} s in the engine); z500 spread {spread[0]:.0f} -> {spread[-1]:.0f} m2 s-2")
