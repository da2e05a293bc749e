"""The command line as a user meets it: help texts, start-up cost, error lines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hens.pipelines.cli import app

HENS = [sys.executable, "-m", "hens.pipelines.cli"]


def _commands() -> list[str]:
    import typer.main

    return sorted(typer.main.get_command(app).commands)


def test_help_lists_every_command_with_one_line():
    wide = dict(os.environ, COLUMNS="200")  # one row per command unless a summary spans lines
    out = subprocess.run([*HENS, "--help"], capture_output=True, text=True, check=True, env=wide).stdout
    rows = [line.strip(" │") for line in out.splitlines() if line.startswith("│ ")]
    listed = [row.split()[0] for row in rows if row.split() and not row.startswith("-")]
    continued = [row for row in rows if row.split() and row.split()[0] not in _commands() and not row.startswith("-")]
    assert sorted(listed) == sorted(_commands()) and not continued, out


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
