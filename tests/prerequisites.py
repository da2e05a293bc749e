"""Tests whose prerequisites are missing skip on a workstation and fail in CI.

A green CI must mean that every test ran: with ``CI=true`` (``.ci/run`` sets it) a missing
prerequisite (root, SLURM, an optional package) is a failure, not a silent skip.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """Whether the suite runs in CI (``CI=true``, as CI services and ``.ci/run`` set it)."""
    return os.environ.get("CI", "").lower() in {"true", "1", "yes"}


def require(ok: bool, missing: str) -> None:
    """Skip the test (fail it in CI) unless ``ok``; ``missing`` says what is missing."""
    if not ok:
        if in_ci():
            pytest.fail(f"CI=true, so this test must run, but {missing}")
        pytest.skip(missing)
