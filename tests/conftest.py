"""Fixtures shared across the test packages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: environment variable naming a ready world store (see ``world_store``)
WORLD_ENV = "HENS_TEST_WORLD"


def pytest_configure(config: pytest.Config) -> None:
    # one intra-op thread (read when torch is imported, also by subprocesses): CI has 2
    # cores shared with other test processes, and small solver steps only spin-wait on more
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def world_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a small world in the WeatherBench2 ERA5 layout: ``world.zarr``, 32x64 (T21),
    seed 0, 30 days spin-up, then 60 days (240 times of 6 h) from 2000-01-01T00, with its
    ``world.stats.zarr`` beside it. Read-only: tests that modify a store must copy it first.
    Takes ~25-40 s once per session; a pytest started by another test passes its parent's
    store in ``HENS_TEST_WORLD`` (``tests/pipelines/forecast/test_kernel_paths.py``).
    """
    from hens.pipelines.world import generate_world

    if WORLD_ENV in os.environ:
        return Path(os.environ[WORLD_ENV])
    out = tmp_path_factory.mktemp("world") / "world.zarr"
    return generate_world(out, grid="32x64", days=60.0, seed=0, spinup_days=30.0,
                          start="2000-01-01T00", progress=False)


#: channels of the world, in model order (the tiny checkpoints' channels)
_WORLD_CHANNELS = ("z500", "u500", "v500", "t2m")


@pytest.fixture(scope="session")
def tiny_checkpoints(world_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained tiny SFNO checkpoints (embed 8, 2 blocks) for the ensemble tests.

    ``stoch0``, ``stoch1``: stochastic, world grid and channels; ``det0``, ``det1``:
    deterministic; ``grid16``: stochastic on 16x32; ``three``: stochastic without ``t2m``.
    Normalisation from the world statistics. ``stoch0``/``stoch1`` take the year's phase as a
    forcing input, ``det0`` the year's and the day's, the others none.
    """
    import torch

    from hens.forecast.stats import open_world_stats
    from hens.models.checkpoint import description_sha256, save_checkpoint
    from hens.models.forcings import forcing_channels
    from hens.models.sfno.network import SFNO, SFNOConfig
    from hens.models.sfno.stochastic import StochasticSFNO, StochasticSFNOConfig

    folder = tmp_path_factory.mktemp("checkpoints")
    stats = open_world_stats(world_store)
    cases = {"stoch0": (True, "32x64", 4), "stoch1": (True, "32x64", 4), "det0": (False, "32x64", 4),
             "det1": (False, "32x64", 4), "grid16": (True, "16x32", 4), "three": (True, "32x64", 3)}
    forcings = {"stoch0": ("year_progress",), "stoch1": ("year_progress",), "det0": ("year_progress", "day_progress")}
    paths = {}
    for seed, (name, (stochastic, grid, n)) in enumerate(cases.items()):
        torch.manual_seed(seed)
        cfg = SFNOConfig(n + forcing_channels(forcings.get(name, ())), n, grid=grid, embed_dim=8, num_layers=2)
        model = StochasticSFNO(StochasticSFNOConfig(cfg)) if stochastic else SFNO(cfg)
        channels = list(_WORLD_CHANNELS[:n])
        sel = stats.sel(channel=channels)
        paths[name] = save_checkpoint(
            folder / f"{name}.pt", model, channels=channels, seed=seed,
            data_sha256=description_sha256({"data": "world"}), mean=sel["mean"].values,
            std=sel["std"].values, tendency_std=sel["tendency_std"].values, forcings=forcings.get(name, ()),
        )
    return paths


@pytest.fixture(scope="session")
def ensemble_yaml(world_store: Path, tiny_checkpoints: dict[str, Path]):
    """``write(folder, **overrides) -> Path``: a small ensemble config in ``folder/ens.yaml``.

    Default: 2 stochastic checkpoints x 2 hemispheric bred-vector pairs x 2 signs x 2 seeds
    = 16 members, batches of 4, 2 initial times, 24 h lead, output ``folder/ens.zarr``.
    """
    import yaml

    def write(folder: Path, name: str = "ens.yaml", **overrides) -> Path:
        values = {
            "data": str(world_store),
            "output": "ens.zarr",
            "init_times": ["2000-01-10T00", "2000-01-12T06"],
            "lead_hours": 24,
            "models": [str(tiny_checkpoints["stoch0"]), str(tiny_checkpoints["stoch1"])],
            "perturbation": {"kind": "hemispheric_bred_vector", "pairs": 2, "cycles": 2, "amplitude": 0.35},
            "seeds": 2,
            "batch_size": 4,
            "seed": 0,
        }
        values.update(overrides)
        path = folder / name
        path.write_text(yaml.safe_dump(values))
        return path

    return write


@pytest.fixture(scope="session")
def score_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small ensembles with known scores and their truth (``tests/ensemble_stores.py``):
    ``truth`` (with statistics beside it), ``calibrated`` (3 + 2 leads per chunk), ``perfect``,
    ``incomplete`` (calibrated, 2 leads per chunk, one batch of the first init missing);
    truths without statistics: ``truth_nostats``, ``truth_z500`` (no t2m), ``truth_short``
    (20 days).
    Takes ~4 s."""
    import ensemble_stores as es

    folder = tmp_path_factory.mktemp("score-inputs")
    truth = es.truth_values()
    return {
        "truth": es.write_truth(truth, folder / "truth.zarr"),
        "truth_nostats": es.write_truth(truth, folder / "nostats" / "truth.zarr", stats=False),
        "truth_z500": es.write_truth(truth, folder / "z500.zarr", channels=("z500",), stats=False),
        "truth_short": es.write_truth(truth, folder / "short.zarr", times=slice(0, 80), stats=False),
        "calibrated": es.write_ensemble(truth, folder / "calibrated.zarr", kind="calibrated",
                                        lead_chunk=3),
        "perfect": es.write_ensemble(truth, folder / "perfect.zarr", kind="perfect", lead_chunk=5),
        "incomplete": es.write_ensemble(truth, folder / "incomplete.zarr", kind="calibrated",
                                        skip=(0, 1), lead_chunk=2),
    }


@pytest.fixture
def hens_cli(monkeypatch, capsys):
    """``hens(*args) -> (exit code, stdout, stderr)``: the ``hens`` command run in this process."""
    import sys

    from hens.pipelines.cli import main

    def hens(*args: object) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["hens", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as err:
            code = err.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return hens

