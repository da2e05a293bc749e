"""The campaign's sbatch command lines and their submission as a chain of job arrays.

Each step (train, forecast, score) is one job array; each is submitted ``afterok`` on the
one before it, so a failed training never starts forecasts. Nothing here validates the
campaign: :func:`hens.pipelines.campaign.submit.submit_campaign` does that first.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

from hens.forecast.errors import ConfigError
from hens.pipelines.campaign.config import CampaignConfig

#: a step's sbatch options and its batch script with the script's arguments
JobArray = tuple[list[str], list[str]]


def job_arrays(cfg: CampaignConfig, out: Path, scripts: Path, *, forecasts: int, stores: int) -> dict[str, JobArray]:
    """The job array of each step, in submission order (no ``train`` for given ``models``, no
    ``score`` when not scoring).

    Parameters
    ----------
    cfg
        The validated campaign.
    out
        The campaign's output folder, absolute (``checkpoints/``, ``logs/``, the listings).
    scripts
        Folder of ``train.sbatch``, ``forecast.sbatch`` and ``score.sbatch``.
    forecasts, stores
        Number of lines of ``forecasts.txt`` and ``stores.txt``: the forecast and score
        array sizes.
    """
    s, name = cfg.slurm, out.name
    minutes = cfg.train_options.get("minutes")
    train_time = s.train_time or (f"{math.ceil(minutes) + 10}" if minutes is not None else None)
    train_res = [f"--ntasks={s.train_ranks}", f"--cpus-per-task={s.cpus_per_task}"]
    if s.gpus_per_node:
        train_res += ["--nodes=1", f"--ntasks-per-node={s.train_ranks}", f"--gpus-per-node={s.train_ranks}"]
    fc_res = [f"--ntasks={cfg.ranks}", f"--nodes={s.nodes}", f"--cpus-per-task={s.cpus_per_task}"]
    if s.nodes > 1 or s.gpus_per_node:
        fc_res.append(f"--ntasks-per-node={cfg.ranks // s.nodes}")
    if s.gpus_per_node:
        fc_res.append(f"--gpus-per-node={s.gpus_per_node}")
    steps: dict[str, JobArray] = {}
    if cfg.trains:
        steps["train"] = ([f"--job-name={name}-train", "--array=" + ",".join(map(str, cfg.seeds)),
                           f"--output={out}/logs/train-%A_%a.out", *train_res, *_time(train_time)],
                          [str(scripts / "train.sbatch"), str(out / "checkpoints"), *cfg.train_args()])
    steps["forecast"] = ([f"--job-name={name}-forecast", f"--array=0-{forecasts - 1}",
                          f"--output={out}/logs/forecast-%A_%a.out", *fc_res, *_time(s.forecast_time)],
                         [str(scripts / "forecast.sbatch"), str(out / "forecasts.txt")])
    if cfg.scoring:
        steps["score"] = ([f"--job-name={name}-score", f"--array=0-{stores - 1}",
                           f"--output={out}/logs/score-%A_%a.out", f"--cpus-per-task={s.cpus_per_task}",
                           *_time(s.score_time)],
                          [str(scripts / "score.sbatch"), str(out / "stores.txt"), *cfg.score_args()])
    return steps


def submit_chain(
    steps: dict[str, JobArray], *, chdir: Path, common: list[str], dry_run: bool = False
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Submit the job arrays in order, each ``afterok`` on the one before it.

    Parameters
    ----------
    steps
        Step name -> job array, in submission order (:func:`job_arrays`).
    chdir
        Working directory of the jobs.
    common
        sbatch options of every step (partition, account, extra arguments).
    dry_run
        Submit nothing; the job ids are placeholders ``<step>``.

    Returns
    -------
    The job id and the command line of each step.

    Raises
    ------
    ConfigError
        When sbatch refuses a step; the steps submitted before it are cancelled.
    """
    jobs: dict[str, str] = {}
    commands: dict[str, list[str]] = {}
    for step, (options, script) in steps.items():
        # each step after the one before it (an array job id: after all of its tasks)
        after = [f"--dependency=afterok:{list(jobs.values())[-1]}", "--kill-on-invalid-dep=yes"] if jobs else []
        cmd = ["sbatch", "--parsable", f"--chdir={chdir}", *common, *options, *after, *script]
        commands[step] = cmd
        jobs[step] = f"<{step}>" if dry_run else _sbatch(cmd, step, submitted=list(jobs.values()))
    return jobs, commands


def _time(value: str | None) -> list[str]:
    return [f"--time={value}"] if value else []


def _sbatch(cmd: list[str], step: str, *, submitted: list[str]) -> str:
    """Submit; on refusal cancel the jobs already submitted and raise one line."""
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        if submitted:
            subprocess.run(["scancel", *submitted], capture_output=True)
        reason = (res.stderr.strip().splitlines() or ["no message"])[-1]
        raise ConfigError(f"sbatch refused the {step} job ({reason})"
                          + (f"; cancelled job(s) {', '.join(submitted)}" if submitted else ""))
    return res.stdout.strip().split(";")[0]
