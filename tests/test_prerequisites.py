"""A missing prerequisite skips on a workstation and fails in CI (``tests/prerequisites.py``)."""

from __future__ import annotations

import pytest
from prerequisites import require


def test_missing_prerequisite_fails_in_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true.*needs root"):
        require(False, "needs root")
    require(True, "needs root")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        require(False, "needs root")
