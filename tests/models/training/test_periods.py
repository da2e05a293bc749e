"""--train-period/--valid-period: parsing (years, dates, inclusive ends), the split they make,
and one error line for malformed, overlapping or empty periods."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hens.forecast.errors import ConfigError, DataError
from hens.models.training.data import split_times
from hens.models.training.periods import check_periods, parse_period

SIX_HOURS = np.timedelta64(6, "h")


def _times(first: str, days: int) -> np.ndarray:
    return np.datetime64(first, "ns") + np.arange(days * 4) * SIX_HOURS


def test_years_and_dates_are_inclusive():
    p = parse_period("1979:2015", option="--train-period")
    assert p.start == np.datetime64("1979-01-01", "ns") and p.stop == np.datetime64("2016-01-01", "ns")
    q = parse_period("2000-01-01:2000-03-31", option="--train-period")
    assert q.stop == np.datetime64("2000-04-01", "ns")
    assert parse_period(2016, option="--valid-period").stop == np.datetime64("2017-01-01", "ns")
    h = parse_period("2000-03-31T18:2000-04-01T00", option="x")
    assert h.select(_times("2000-03-31", 3)).size == 2
    times = _times("2000-03-30", 4)
    assert q.select(times)[-1] == np.datetime64("2000-03-31T18", "ns")


@pytest.mark.parametrize("text, message", [
    ("1979-2015", "expected FIRST:LAST"), ("2015:1979", "ends before it starts"), ("2000-13:2001", "2000-13"),
    ("79:80", "expected FIRST:LAST"), ("1:2:3", "expected FIRST:LAST"),
])
def test_malformed_periods(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_period(text, option="--train-period")


def test_period_options_go_together_and_do_not_overlap():
    with pytest.raises(ConfigError, match="together"):
        check_periods("2000", None, val_days=None)
    with pytest.raises(ConfigError, match="--val-days"):
        check_periods("2000", "2001", val_days=10.0)
    with pytest.raises(ConfigError, match="overlap"):
        check_periods("2000:2001", "2001-12:2002", val_days=None)
    check_periods("2001:2002", "2000", val_days=None)  # validation before training is allowed


def test_split_by_periods():
    times = _times("1999-12-01", 800)
    split = split_times(times, train_period="2000", valid_period="2001-01-01:2001-02-28")
    assert split.train[0] == np.datetime64("2000-01-01", "ns") and split.train[-1] == np.datetime64("2000-12-31T18", "ns")
    assert split.val.size == 59 * 4 and split.describe()["periods"] == ["2000", "2001-01-01:2001-02-28"]
    with pytest.raises(DataError, match="--valid-period 2005 holds 0 time"):
        split_times(times, train_period="2000", valid_period="2005")


def test_cli_period_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from hens.pipelines.cli import main

    def run(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["hens", "train", "--data", "x", "--out", str(tmp_path / "x.pt"),
                                          "--steps", "1", *args])
        with pytest.raises(SystemExit) as exit_info:
            main()
        return exit_info.value.code, capsys.readouterr().err

    for args, message in [
        (("--train-period", "1979:2015", "--valid-period", "2015:2017"), "overlap"),
        (("--train-period", "1979:2015"), "together"),
        (("--train-period", "1979/2015", "--valid-period", "2016"), "expected FIRST:LAST"),
    ]:
        code, err = run(*args)
        assert code == 2 and err.startswith("hens: error:") and err.count("\n") == 1 and message in err
