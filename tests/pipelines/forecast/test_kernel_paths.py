"""The reproducibility tests again, with the CPU kernels forced onto other code paths.

A bit-equality that holds on one processor may hold only because of the kernels torch and MKL
pick there: an AMD processor takes MKL's AVX2 SGEMM path, which rounds a row of ``nn.Linear``
differently for another number of rows (a batch of one vs. a batch of 16 differed in the last
bits). Each test here reruns the member-recompute tests (and, on MKL's AVX2 path, the 1-vs-2-rank
and SIGKILL + resume tests) in a child pytest whose environment forces one path:

* torch's own kernels: ``ATEN_CPU_CAPABILITY`` = ``default``, ``avx2``, ``avx512``;
* MKL, torch's BLAS here: ``MKL_ENABLE_INSTRUCTIONS`` = ``SSE4_2``, ``AVX2``, ``AVX512``;
* all lowered at once (``portable``), oneDNN included (``ONEDNN_MAX_CPU_ISA``).

A probe process first checks that the path is really taken (torch's reported capability,
MKL's verbose banner); a path the processor lacks, or its own path (which the rest of the suite
already runs), is skipped with its name. The child reuses
this session's world store (``HENS_TEST_WORLD``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.dist
REPO = Path(__file__).resolve().parents[3]
MEMBER_TESTS = [
    "tests/forecast/test_engine.py::test_a_member_recomputed_from_its_batch_is_bit_equal",
    "tests/forecast/test_engine.py::test_members_of_batches_across_checkpoints_and_a_short_last_batch",
    "tests/forecast/test_engine.py::test_physics_ensemble_through_the_same_engine",
]
RANK_TESTS = [
    "tests/pipelines/forecast/test_forecast_dist.py::test_two_ranks_write_the_one_rank_store",
    "tests/pipelines/forecast/test_forecast_dist.py::test_sigkill_midway_then_resume_equals_the_uninterrupted_run",
]
#: MKL's verbose banner names its code path like this
MKL_BANNER = {"SSE4_2": "(Intel(R) SSE4.2)", "AVX2": "(Intel(R) AVX2)", "AVX512": "(Intel(R) AVX-512)"}


@dataclass(frozen=True)
class KernelPath:
    """Environment that forces a kernel path, what the probe must then report, which tests run."""

    env: dict[str, str]
    aten: str | None = None
    mkl: str | None = None
    ranks: bool = False


PATHS = {
    "aten-default": KernelPath({"ATEN_CPU_CAPABILITY": "default"}, aten="DEFAULT"),
    "aten-avx2": KernelPath({"ATEN_CPU_CAPABILITY": "avx2"}, aten="AVX2"),
    "aten-avx512": KernelPath({"ATEN_CPU_CAPABILITY": "avx512"}, aten="AVX512"),
    "mkl-sse4_2": KernelPath({"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}, mkl="SSE4_2"),
    "mkl-avx2": KernelPath({"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, mkl="AVX2", ranks=True),  # AMD's
    "mkl-avx512": KernelPath({"MKL_ENABLE_INSTRUCTIONS": "AVX512"}, mkl="AVX512"),
    "portable": KernelPath({"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                            "ONEDNN_MAX_CPU_ISA": "SSE41"}, aten="DEFAULT", mkl="SSE4_2"),
}


def _forced_env(path: KernelPath) -> dict[str, str]:
    return {**os.environ, **path.env}


def _probe(path: KernelPath) -> tuple[str, str]:
    """(torch's CPU capability, MKL's banner) in a process with ``path``'s environment."""
    code = ("import torch; a = torch.ones(64, 64); a @ a; "
            "print('aten', torch.backends.cpu.get_cpu_capability())")
    res = subprocess.run([sys.executable, "-c", code], env={**_forced_env(path), "MKL_VERBOSE": "1"},
                         capture_output=True, text=True, timeout=120, check=True)
    lines = res.stdout.splitlines()
    aten = next(line.split()[1] for line in lines if line.startswith("aten "))
    banner = next((line for line in lines if line.startswith("MKL_VERBOSE oneMKL")), "")
    return aten, banner


def _cpu_flags() -> set[str]:
    """The instruction-set flags the kernel reports for this CPU (empty where it reports none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in text.splitlines() if line.startswith("flags")), set())


@pytest.fixture(scope="module")
def native() -> tuple[str, str]:
    """The probe without forcing: the path the rest of the suite runs on."""
    return _probe(KernelPath({}))


@pytest.mark.parametrize("name", list(PATHS))
def test_reproducibility_tests_pass_on_a_forced_kernel_path(name, native, world_store, tmp_path):
    path = PATHS[name]
    aten, banner = _probe(path)
    assert banner, "MKL printed no verbose banner: is torch's BLAS still MKL?"
    if (aten, banner) == native:
        pytest.skip(f"{path.env} is this CPU's own path, on which the rest of the suite runs these tests")
    if path.aten is not None and aten != path.aten:
        pytest.skip(f"this CPU cannot run torch's {path.aten} kernels (torch chose {aten})")
    if path.aten == "AVX512" and "avx512f" not in _cpu_flags():
        # torch takes a forced capability at its word: on a CPU without AVX-512 it dies of SIGILL
        pytest.skip("this CPU has no AVX-512 (no avx512f in /proc/cpuinfo)")
    if path.mkl is not None and MKL_BANNER[path.mkl] not in banner:
        pytest.skip(f"MKL does not take its {path.mkl} path on this CPU: {banner}")
    tests = MEMBER_TESTS + (RANK_TESTS if path.ranks else [])
    env = {**_forced_env(path), "HENS_TEST_WORLD": str(world_store)}
    # its own basetemp: the child must not rotate away this session's temporary folders
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'child'}", *tests]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"on {name} ({path.env}; torch {aten}; {banner[19:]}):\n{res.stdout[-4000:]}"
    assert " passed" in res.stdout.splitlines()[-1] and "skipped" not in res.stdout.splitlines()[-1]
