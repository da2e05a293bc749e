"""The scorer's compiled loops (and copy_rows' transposition) give the same bits whatever instruction set numba compiles them for
(their sums run in a fixed order without fast-math): host, AVX2 (haswell) and baseline x86-64."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = """
import sys
import numpy as np
from hens.scoring.crps import copy_rows
from hens.scoring.evaluate import kernels
rng = np.random.default_rng(0)
block = np.sort(rng.standard_normal((50, 7423)).astype(np.float32) * 50 + 5000, -1)
y = rng.standard_normal(50).astype(np.float32) + 5000
sums = [np.empty(50) for _ in range(4)]
kernels.sorted_row_sums(block, y, 0, *sums)
counts = np.empty((50, 3), dtype=np.int64)
kernels.count_le(block, np.sort(rng.standard_normal((50, 3)).astype(np.float32) * 50 + 5000, -1), counts)
units = rng.random((300, 512)).astype(np.float32)
best, outliers = np.empty(5), np.empty(5)
kernels.prefix_extremes(units, units - 0.5, units + 0.5, rng.permutation(300), np.array([1, 4, 16, 64, 256]),
                        rng.random(512) * 2 - 0.5, rng.random(512), best, outliers)
cells = np.empty((40, 300), dtype=np.float32)
copy_rows(units[:, 10:50].T, cells)
np.save(sys.argv[1], np.concatenate([*sums, counts.ravel(), best, outliers, cells.ravel()]))
"""


def _run(cpu: str | None, tmp_path) -> np.ndarray:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / f"cache-{cpu}")}
    if cpu:
        env["NUMBA_CPU_NAME"] = cpu
    out = tmp_path / f"{cpu}.npy"
    subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=env, check=True, capture_output=True)
    return np.load(out)


@pytest.mark.parametrize("cpu", ["generic", "haswell"])
def test_compiled_loops_give_the_hosts_bits_on_other_instruction_sets(cpu, tmp_path):
    host = _run(None, tmp_path)
    assert np.isfinite(host).all() and host[-1] != 0
    np.testing.assert_array_equal(_run(cpu, tmp_path), host)
