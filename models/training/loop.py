"""``hens train``'s loop: claim the output, build the :class:`Run`, step until the plan is done.

A run saves a checkpoint and its resume file every :data:`CHECKPOINT_INTERVAL_S` seconds (after
a validation) and once at the end; a ``--minutes`` run fixes its number of steps on the way
(:mod:`hens.models.training.budget`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from hens.forecast.allocator import tune_cpu_allocator
from hens.forecast.errors import HensError, OutputExists
from hens.models.runtime import Distributed, all_reduce_mean, setup_distributed, teardown
from hens.models.training.budget import CHECKPOINT_INTERVAL_S, MinutesBudget
from hens.models.training.config import TrainConfig
from hens.models.training.progress import progress_bar
from hens.models.training.run import Run


def _claim_output(cfg: TrainConfig, info: Distributed) -> bool:
    """Whether to resume; refuses to overwrite a finished checkpoint without --overwrite."""
    if cfg.overwrite:
        if info.main:
            cfg.resume_path.unlink(missing_ok=True)
        return False
    if cfg.resume_path.exists():
        return True
    if cfg.out.exists():
        raise OutputExists(f"{cfg.out} exists; pass --overwrite to train again")
    return False


def train(cfg: TrainConfig, *, source: Any = None, in_memory: bool = False) -> Path:
    """Train and write ``cfg.out`` (and its ``.loss.png``); returns the checkpoint path.

    ``source`` (any :class:`~hens.forecast.protocols.DataSource`) replaces opening
    ``cfg.data``; ``in_memory`` loads the data up front (see :class:`Run`). Raises
    :class:`HensError` subclasses for bad inputs (data, options, existing outputs).
    """
    tune_cpu_allocator()
    info = setup_distributed()
    try:
        return _train(cfg, info, source, in_memory)
    finally:
        teardown(info)


def _train(cfg: TrainConfig, info: Distributed, source: Any, in_memory: bool) -> Path:
    resume = _claim_output(cfg, info)
    run = Run(cfg, info, source, in_memory=in_memory)
    try:
        return _loop(cfg, info, run, resume)
    finally:
        run.close()


def _loop(cfg: TrainConfig, info: Distributed, run: Run, resume: bool) -> Path:
    if resume:
        try:
            state = torch.load(cfg.resume_path, map_location="cpu", weights_only=True)  # generator states must stay on CPU
        except Exception as err:  # noqa: BLE001 - any unreadable resume file: one clear line
            raise HensError(f"cannot read {cfg.resume_path} ({type(err).__name__}); pass --overwrite") from None
        run.load_resume(state)
    progress = progress_bar(cfg.progress, info)
    budget = MinutesBudget(cfg)
    start = time.perf_counter() - run.wall
    last_save = run.wall
    with progress:
        task = progress.add_task("train", total=run.total)
        while run.total is None or run.step < run.total:
            value, wall = run.train_step(time.perf_counter() - start)
            if budget.after_step(run, wall):
                progress.update(task, total=run.total)
            run.wall = time.perf_counter() - start
            progress.update(task, completed=run.step, description=f"train loss {value:.4g}")
            if wall - last_save > CHECKPOINT_INTERVAL_S and (run.total is None or run.step < run.total):
                last_save = wall  # ranks agree on ``wall`` (all-reduced), so all of them save
                began = time.perf_counter()
                if info.main:
                    run.validate()
                run.save(final=False)
                took = torch.tensor([time.perf_counter() - began if info.main else 0.0], dtype=torch.float64)
                all_reduce_mean([took], info)
                budget.after_save(float(took) * info.world_size)  # rank 0's duration on every rank
            if budget.overran(wall):
                break  # hard stop, agreed by all ranks: the plan overran the budget (a loaded machine)
    if info.main:
        run.validate()
    run.wall = time.perf_counter() - start
    run.save(final=True)
    return cfg.out
