"""Where the benchmarks keep their results, and the one way they append them.

Each benchmark appends rows to ``benchmarks/results/<bench>_<device>.csv`` (a CSV per
benchmark and machine, so runs on different machines never mix), with a header when the
file is new. Imported by the scripts as ``from _results import ...``: they run as
``python benchmarks/bench_*.py``, which puts this folder first on ``sys.path``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def results_path(bench: str, device: str) -> Path:
    """``results/<bench>_<device>.csv``, the device name reduced to a safe file name.

    Parameters
    ----------
    bench
        Short name of the benchmark (``"reader"``, ``"sfno"``...).
    device
        The machine's name as the rows record it; characters other than letters and digits
        become ``_`` and it is cut to 40 characters.
    """
    name = "".join(c if c.isalnum() else "_" for c in device)[:40]
    return RESULTS / f"{bench}_{name}.csv"


def append_rows(path: Path, rows: Sequence[Mapping[str, object]]) -> None:
    """Append ``rows`` to the CSV ``path`` and say so; the header is the first row's keys.

    Parameters
    ----------
    path
        The CSV file; it and its folder are created when missing (then with a header). When
        the rows bring new columns, the file is rewritten with them (older rows left blank).
    rows
        Rows with the same keys, in column order; nothing is written when empty.
    """
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(rows[0])
    old: list[dict[str, str]] = []
    if path.exists():
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            old = list(reader)
            columns += [c for c in reader.fieldnames or [] if c not in columns]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows([*old, *rows])
    print(f"appended {len(rows)} rows to {path}")
