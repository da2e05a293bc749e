"""The ``--minutes`` planner: how many steps a run takes that is given a wall-time budget.

A ``--minutes`` run trains one-step until its rollout cost is measured, then re-plans after
every step from the mean duration of the recent ones; when the planned learning-rate decay
would start now, it times the rollout cost again (the machine's load then is the one the
rollout steps will meet), re-plans, and fixes the total (:func:`~hens.models.training.schedule.commit_total`),
which the checkpoint records so that ``--steps`` reproduces the run exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hens.models.training.config import TrainConfig
from hens.models.training.schedule import commit_total, decay_start, planned_total

if TYPE_CHECKING:
    from hens.models.training.run import Run

#: seconds between checkpoint + resume-file writes (and validations)
CHECKPOINT_INTERVAL_S = 120.0
_TIMING_WINDOW = 50  # recent steps whose mean duration plans a --minutes run
_FINAL_RESERVE_S = 5.0  # kept free of a --minutes budget for the final validation and save
_PLAN_SHARE = 0.92  # a --minutes run plans its steps for this share of the budget (load varies)
_ROLLOUT_TIMING_STEP = 30  # a --minutes run times a rollout step here (after allocator warm-up)


class MinutesBudget:
    """Fixes the number of steps of a ``--minutes`` run from the wall times all ranks agree on.

    Parameters
    ----------
    cfg
        The run's options; a ``--steps`` run (``cfg.minutes`` None) is never re-planned.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.recent: list[float] = []  # agreed wall times (s) of the last steps
        self.rollout_cost: float | None = None
        self.retimed = False  # the rollout cost was timed again where the decay would begin
        self.save_seconds = 0.0  # duration (s) of the last intermediate save (with its validation), agreed

    def after_step(self, run: Run, wall: float) -> bool:
        """Re-plan after a step that ended at ``wall`` seconds; True when it fixed ``run.total``."""
        if run.total is not None:
            return False
        cfg = self.cfg
        self.recent = (self.recent + [wall])[-_TIMING_WINDOW - 1 :]
        if self.rollout_cost is None and run.step >= _ROLLOUT_TIMING_STEP:
            self.rollout_cost = run.rollout_cost()
            self.recent = []  # the timing is not a step
        if self.rollout_cost is None or len(self.recent) <= 5:
            return False
        step_seconds = (self.recent[-1] - self.recent[0]) / (len(self.recent) - 1)
        left = _PLAN_SHARE * cfg.minutes * 60.0 - _FINAL_RESERVE_S - wall
        left -= left / CHECKPOINT_INTERVAL_S * self.save_seconds  # the saves still to come
        fraction = cfg.rollout_fraction if cfg.rollout > 1 else 0.0
        planned = planned_total(run.step, left, step_seconds, rollout_fraction=fraction,
                                rollout_cost=self.rollout_cost)
        if decay_start(planned) > run.step:
            return False
        if not self.retimed and cfg.rollout > 1:  # time it again under the load the rollout steps will meet
            self.retimed = True
            self.rollout_cost = run.rollout_cost()
            self.recent = []
            return False
        run.total = commit_total(run.step)  # entering the decay: fix the total
        return True

    def after_save(self, seconds: float) -> None:
        """Record an intermediate save of ``seconds`` (rank 0's, agreed); it is not a step."""
        self.save_seconds = seconds
        self.recent = []

    def overran(self, wall: float) -> bool:
        """Whether a ``--minutes`` run at ``wall`` seconds must stop now (a loaded machine)."""
        return self.cfg.minutes is not None and wall > self.cfg.minutes * 60.0 - 0.5 * _FINAL_RESERVE_S
