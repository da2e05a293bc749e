"""What a training run shows: a progress bar on rank 0 and the loss curve as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hens.models.runtime import Distributed


def plot_losses(
    path: Path, train_loss: list[float], val_loss: list[list[float]], *, title: str,
    rollout: tuple[int, int] | None = None,
) -> None:
    """Training loss (raw and smoothed) and validation loss against the step, as a PNG.

    ``rollout``: ``(first step, steps unrolled)`` of the rollout phase, shaded.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    if train_loss:
        steps = np.arange(1, len(train_loss) + 1)
        ax.plot(steps, train_loss, color="0.8", lw=0.6, label="train (per step)")
        width = max(1, len(train_loss) // 50)
        smooth = np.convolve(train_loss, np.ones(width) / width, mode="valid")
        ax.plot(steps[width - 1 :], smooth, color="C0", label=f"train ({width}-step mean)")
    if val_loss:
        v = np.asarray(val_loss)
        ax.plot(v[:, 0], v[:, 1], "o-", color="C1", label="validation (one step)")
    if rollout is not None:
        ax.axvspan(rollout[0] + 1, max(len(train_loss), rollout[0] + 1), color="C2", alpha=0.12,
                   label=f"{rollout[1]}-step rollout loss")
    if min(train_loss + [v for _, v in val_loss], default=1.0) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


class Quiet:
    """Stands in for a rich progress bar on other ranks and with --no-progress."""

    def __enter__(self) -> Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


def progress_bar(show: bool, info: Distributed) -> Any:
    """A rich progress bar on rank 0 (steps, elapsed, remaining), else a silent stand-in."""
    if not (show and info.main):
        return Quiet()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
