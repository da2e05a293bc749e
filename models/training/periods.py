"""Training and validation periods: ``--train-period 1979:2015 --valid-period 2016:2017``.

A period is ``FIRST:LAST`` (or one bound for both), each bound a year ``1979``, a month
``2000-03``, a day ``2000-03-31`` or an hour ``2000-03-31T18``; both ends are inclusive at
their own precision (``2000-01-01:2000-03-31`` ends with the last time of 31 March). Kept
free of torch: the campaign config checks periods without importing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from hens.forecast.errors import ConfigError

_BOUND = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2})?)?)?$")
#: the form of a period, for help texts and error messages
PERIOD_FORM = "FIRST:LAST with years (1979:2015) or dates (2000-01-01:2000-03-31), both inclusive"


@dataclass(frozen=True)
class Period:
    """Valid times ``start <= t < stop`` (``datetime64[ns]``) and the text they came from."""

    text: str
    start: np.datetime64
    stop: np.datetime64

    def select(self, times: np.ndarray) -> np.ndarray:
        """The ``times`` inside the period."""
        return times[(times >= self.start) & (times < self.stop)]

    def overlaps(self, other: Period) -> bool:
        return bool(self.start < other.stop and other.start < self.stop)


def parse_period(text: str | int, *, option: str) -> Period:
    """A :class:`Period` from ``FIRST:LAST`` (see the module notes).

    Parameters
    ----------
    text
        The period; an int is one year.
    option
        The option's name for messages, e.g. ``"--train-period"``.

    Raises
    ------
    ConfigError
        A malformed bound, or a first bound after the last.
    """
    if isinstance(text, int) and not 1000 <= text <= 9999:
        raise ConfigError(f"{option} {text} is not a year; quote a period in YAML ('1979:2015'): "
                          "unquoted, 1979:2015 reads as a base-60 number")
    value = str(text).strip()
    bounds = value.split(":")
    if len(bounds) == 1:
        bounds = bounds * 2
    if len(bounds) != 2 or not all(_BOUND.match(b.strip()) for b in bounds):
        raise ConfigError(f"{option} {value!r}: expected {PERIOD_FORM}")
    try:
        first, last = (np.datetime64(b.strip()) for b in bounds)
        start = first.astype("datetime64[ns]")
        stop = (last + np.timedelta64(1, np.datetime_data(last.dtype)[0])).astype("datetime64[ns]")
    except ValueError as err:  # a month 13, a day 32
        raise ConfigError(f"{option} {value!r}: {err}") from None
    if stop <= start:
        raise ConfigError(f"{option} {value!r} ends before it starts; write FIRST:LAST")
    return Period(value, start, stop)


def check_periods(train: str | int | None, valid: str | int | None, *, val_days: float | None) -> None:
    """Raise :class:`ConfigError` unless the period options go together (see :func:`parse_period`)."""
    if (train is None) != (valid is None):
        raise ConfigError("pass --train-period and --valid-period together (or neither: the split by --val-days)")
    if train is None:
        return
    if val_days is not None:
        raise ConfigError("--val-days splits the record by itself; leave it out with --train-period/--valid-period")
    t, v = parse_period(train, option="--train-period"), parse_period(valid, option="--valid-period")
    if t.overlaps(v):
        raise ConfigError(f"--train-period {t.text} and --valid-period {v.text} overlap; "
                          "validation must be on times never trained on")
