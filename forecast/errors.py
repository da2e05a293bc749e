"""The hens error tree.

Every user mistake (bad file, bad grid, bad config, existing output) raises a subclass of
:class:`HensError`; the CLI prints its message as one line on stderr and exits non-zero.
Messages name the offending thing and, where possible, the fix.
"""

from __future__ import annotations


class HensError(Exception):
    """Base class of errors caused by user input rather than by a bug in hens."""


class ConfigError(HensError):
    """A configuration file or command-line value is invalid."""


class DataError(HensError):
    """Input data is unreadable, incomplete or contains invalid values."""


class GridMismatch(DataError):
    """Data is on another grid than the one expected."""


class CheckpointError(HensError):
    """A model checkpoint is unreadable or does not match the data or the ensemble."""


class OutputExists(HensError):
    """The output already exists and neither overwrite nor resume was requested."""
