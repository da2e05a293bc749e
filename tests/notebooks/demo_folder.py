"""A small folder in the layout of ``make demo``'s output, for executing the notebooks.

::

    world.zarr, world.stats.zarr      links to the session's test world
    ensembles/<name>.zarr             `hens forecast` stores (2 init times)
    scores/<name>.zarr                `hens score` stores of those that are scored
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hens.forecast.stats import stats_path


@dataclass(frozen=True)
class Ensemble:
    """Checkpoint names (keys of the ``tiny_checkpoints`` fixture), layout, leads, scored or not."""

    models: tuple[str, ...]
    pairs: int
    seeds: int
    lead_hours: int
    scored: bool


#: ``bred``: 2 deterministic checkpoints x 2 bred-vector pairs x 2 signs = 8 members, 48 h,
#: scored; ``stochastic``: 2 stochastic checkpoints x 1 pair x 2 signs x 2 seeds = 8 members,
#: 24 h, not scored (scoring is most of the cost; the notebooks then skip the comparison)
ENSEMBLES = {
    "bred": Ensemble(("det0", "det1"), pairs=2, seeds=1, lead_hours=48, scored=True),
    "stochastic": Ensemble(("stoch0", "stoch1"), pairs=1, seeds=2, lead_hours=24, scored=False),
}
INIT_TIMES = ["2000-01-10T00", "2000-01-12T06"]


def build_demo_folder(out: Path, world: Path, checkpoints: dict[str, Path],
                      names: tuple[str, ...] = ("bred",)) -> Path:
    """Write the demo layout under ``out`` with the ensembles ``names`` (of :data:`ENSEMBLES`)."""
    import yaml

    from hens.pipelines.forecast.run import run_forecast
    from hens.scoring.evaluate.score import score_ensemble

    for part in ("ensembles", "scores"):
        (out / part).mkdir(parents=True, exist_ok=True)
    (out / "world.zarr").symlink_to(world.resolve(), target_is_directory=True)
    (out / "world.stats.zarr").symlink_to(stats_path(world).resolve(), target_is_directory=True)
    for name in names:
        ens = ENSEMBLES[name]
        config = out / "ensembles" / f"{name}.yaml"
        config.write_text(yaml.safe_dump({
            "data": str(out / "world.zarr"),
            "output": f"{name}.zarr",
            "init_times": INIT_TIMES,
            "lead_hours": ens.lead_hours,
            "models": [str(checkpoints[m]) for m in ens.models],
            "perturbation": {"kind": "hemispheric_bred_vector", "pairs": ens.pairs, "cycles": 2,
                             "amplitude": 0.35},
            "seeds": ens.seeds,
            "batch_size": 8,
            "seed": 0,
        }))
        store = run_forecast(config, progress=False)
        if ens.scored:
            score_ensemble(store, out / "world.zarr", out=out / "scores" / f"{name}.zarr",
                           progress=False)
    return out
