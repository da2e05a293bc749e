"""The command line as a user meets it: help texts, start-up cost, error lines."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hens.pipelines.cli import app

HENS = [sys.executable, "-m", "hens.pipelines.cli"]


def _commands() -> list[str]:
    import typer.main

    return sorted(typer.main.get_command(app).commands)


def test_help_lists_every_command_with_one_line():
    out = subprocess.run([*HENS, "--help"], capture_output=True, text=True, check=True).stdout
    for name in _commands():
        assert name in out, f"`hens --help` does not list {name}"


@pytest.mark.parametrize("name", _commands())
def test_every_command_help_has_an_example(name):
    res = subprocess.run([*HENS, name, "--help"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "Example" in res.stdout and f"hens {name}" in res.stdout


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from hens.pipelines.cli import main\n"
        "sys.argv = ['hens', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'xarray' not in sys.modules, 'heavy import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_unknown_command_is_a_usage_error():
    res = subprocess.run([*HENS, "frobnicate"], capture_output=True, text=True)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
