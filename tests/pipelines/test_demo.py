"""``hens demo``: reuses a complete world and draws its plots."""

from __future__ import annotations

import pytest

from hens.forecast.errors import OutputExists
from hens.pipelines.demo import run_demo
from hens.pipelines.world import generate_world


def test_demo_reuses_the_world_and_writes_plots(tmp_path):
    world = generate_world(tmp_path / "world.zarr", days=2, seed=0, spinup_days=0, progress=False)
    stamp = world.stat().st_mtime_ns
    figures = run_demo(tmp_path, days=2)
    names = sorted(p.name for p in figures.iterdir())
    assert names == ["global_means.png", "ke_spectrum.png", "map_t2m.png", "map_u500.png", "map_v500.png",
                     "map_z500.png"]
    assert all((figures / n).stat().st_size > 10_000 for n in names)
    assert world.stat().st_mtime_ns == stamp  # reused, not regenerated
    with pytest.raises(OutputExists, match="--days 2.0"):
        run_demo(tmp_path, days=3)
