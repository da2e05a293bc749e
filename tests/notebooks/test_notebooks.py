"""The notebooks in ``notebooks/`` run headless against a small demo-shaped folder.

Each notebook asserts its own numbers (bounds, Parseval, agreement with the scores store...);
a failing assertion or any other cell error fails the test. Kernels run the interpreter of
this test process (a kernelspec written for ``sys.executable``), with ``HENS_DEMO_DIR`` set and
matplotlib's Agg backend, all notebooks at once (two cores: imports overlap).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import nbformat
import pytest
from demo_folder import build_demo_folder
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ("01_open_ensemble", "02_calibration_and_spectra", "03_extremes")
KERNEL = "hens-test-python"


@pytest.fixture(scope="module")
def demo_dirs(world_store, tiny_checkpoints, tmp_path_factory) -> dict[str, Path]:
    """``full``: bred and stochastic ensembles with their scores (no physics);
    ``bred``: the bred ensemble alone (links into ``full``)."""
    full = build_demo_folder(tmp_path_factory.mktemp("demo-full"), world_store, tiny_checkpoints,
                             names=("bred", "stochastic"))
    bred = tmp_path_factory.mktemp("demo-bred")
    for part in ("world.zarr", "world.stats.zarr", "ensembles/bred.zarr", "scores/bred.zarr"):
        (bred / part).parent.mkdir(exist_ok=True)
        (bred / part).symlink_to((full / part).resolve(), target_is_directory=True)
    return {"full": full, "bred": bred}


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory) -> KernelSpecManager:
    """A kernelspec running this interpreter, whatever other python3 kernels are installed."""
    folder = tmp_path_factory.mktemp("kernels")
    (folder / KERNEL).mkdir()
    (folder / KERNEL / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "hens tests", "language": "python",
    }))
    return KernelSpecManager(kernel_dirs=[str(folder)])


def _client(name: str, specs: KernelSpecManager) -> NotebookClient:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    # first, make sure the kernel is this interpreter
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        f"import sys\nassert sys.executable == {sys.executable!r}, sys.executable"))
    km = AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    return NotebookClient(nb, km=km, kernel_name=KERNEL, timeout=300,
                          resources={"metadata": {"path": str(NOTEBOOKS)}})


def _execute(names: tuple[str, ...], specs: KernelSpecManager) -> None:
    """Run the notebooks concurrently; fail naming every notebook with a failing cell."""
    async def run() -> list:
        return await asyncio.gather(*(_client(name, specs).async_execute() for name in names),
                                    return_exceptions=True)

    failed = [f"{name}.ipynb: {err}" for name, err in zip(names, asyncio.run(run()))
              if isinstance(err, BaseException)]
    if failed:
        pytest.fail("\n\n".join(failed), pytrace=False)


@pytest.mark.parametrize("folder, names", [
    ("full", NAMES),  # bred and stochastic (unscored, shorter leads); physics absent
    ("bred", NAMES[1:]),  # bred alone: 01 reads nothing else, 02 and 03 loop over what is there
], ids=["bred+stochastic", "bred-only"])
def test_notebooks_run_on_demo_output(demo_dirs, kernel_specs, monkeypatch, folder, names):
    monkeypatch.setenv("HENS_DEMO_DIR", str(demo_dirs[folder]))  # kernels inherit the environment
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    _execute(names, kernel_specs)


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_are_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert nb.cells[0].cell_type == "markdown"
