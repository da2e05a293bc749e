"""``hens campaign``: a hindcast campaign on SLURM (train -> forecast -> score) from one YAML.

Example (``campaign.yaml``; relative paths are relative to its folder)::

    data: world.zarr                 # anything hens.forecast.open_source accepts
    output: campaign                 # folder of checkpoints/, forecasts/, logs/
    seeds: [0, 1, 2, 3]              # one checkpoint per seed (or a count: 4 -> 0..3)
    train: {steps: 20000, stochastic: true, rollout: 4}   # `hens train` options (budget: steps or minutes)
    init_times: ["2000-03-01T00", "2000-03-08T00"]        # one forecast job (array task) each
    lead_hours: 240
    ranks: 4                         # torch.distributed ranks per forecast job
    perturbation: {kind: hemispheric_bred_vector, pairs: 8, cycles: 3, amplitude: 0.35}
    forecast: {seeds: 2, batch_size: 16, seed: 0, threads: 1}   # further keys of the forecast YAML
    score: {thresholds: [0.9, 0.99]}  # `hens score` of every store (truth: data); false: no scoring
    slurm: {partition: gpu, nodes: 1, gpus_per_node: 4, cpus_per_task: 8,
            train_time: "12:00:00", forecast_time: "02:00:00", score_time: "01:00:00"}

Instead of ``seeds`` and ``train``, ``models: [sfno_seed1, sfno_seed2, ...]`` runs given
checkpoints or published SFNO packages (docs/packages.md): no training job, the forecasts
are the first step.

:func:`submit_campaign` validates everything first (one :class:`ConfigError` line; the data
must hold every initial time and its breeding window, the truth every valid time), then
writes one forecast YAML per initial time under ``output/forecasts/`` and submits
``slurm/train.sbatch`` as a job array over the seeds (unless ``models`` are given), ``slurm/forecast.sbatch`` as a job array
over the initial times (``--dependency=afterok:`` on the training) and ``slurm/score.sbatch``
as a job array over the stores (``afterok`` on the forecasts). All are requeue-safe (training
resumes, forecasts ``--resume``, finished scores are kept), so resubmitting the same campaign
continues it.

The work is split by job: :mod:`~hens.pipelines.campaign.config` reads and validates the
YAML, :mod:`~hens.pipelines.campaign.check` checks it against the data,
:mod:`~hens.pipelines.campaign.sbatch` builds and submits the sbatch command lines; this
module writes the forecast configs and chains the three.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from hens.forecast.errors import ConfigError
from hens.pipelines.campaign.check import check_campaign
from hens.pipelines.campaign.config import CampaignConfig, SlurmOptions, load_campaign
from hens.pipelines.campaign.sbatch import job_arrays, submit_chain


@dataclass(frozen=True)
class Submission:
    """What :func:`submit_campaign` submitted: ``jobs`` (step -> job id) and the sbatch command lines."""

    jobs: dict[str, str]
    commands: dict[str, list[str]]
    configs: tuple[Path, ...]
    stores: tuple[Path, ...]


def default_scripts() -> Path:
    """The repository's ``slurm/`` folder (hens installed from a checkout)."""
    return Path(__file__).resolve().parents[2] / "slurm"


def submit_campaign(cfg: CampaignConfig, *, scripts: Path | None = None, dry_run: bool = False) -> Submission:
    """Validate, write the forecast configs, submit train -> forecast -> score (``afterok``).

    Parameters
    ----------
    cfg
        A campaign from :func:`load_campaign`.
    scripts
        Folder of ``train.sbatch``, ``forecast.sbatch`` and ``score.sbatch`` (default:
        :func:`default_scripts`).
    dry_run
        Validate and write the forecast configs but submit nothing; the job ids are
        placeholders.

    Returns
    -------
    Submission
        The job ids, the sbatch command lines, the forecast configs and their stores.

    Raises
    ------
    ConfigError
        A missing script or sbatch, a campaign that does not fit its data (nothing is
        written then), or a refused submission (the jobs submitted before it are cancelled).
    """
    scripts = Path(scripts) if scripts is not None else default_scripts()
    for name in ("train.sbatch", "forecast.sbatch", "score.sbatch"):
        if not (scripts / name).is_file():
            raise ConfigError(f"no {name} in {scripts}; pass --scripts with the slurm/ folder of a hens checkout")
    if not dry_run and shutil.which("sbatch") is None:
        raise ConfigError("sbatch not found: run on a SLURM login node (or start slurm/cluster.sh)")
    check_campaign(cfg)
    out = cfg.output_path.resolve()
    for sub in ("checkpoints", "forecasts", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    configs, stores = _write_forecasts(cfg, out / "forecasts")
    (out / "forecasts.txt").write_text("".join(f"{p}\n" for p in configs))
    (out / "stores.txt").write_text("".join(f"{p}\n" for p in stores))
    steps = job_arrays(cfg, out, scripts, forecasts=len(configs), stores=len(stores))
    jobs, commands = submit_chain(steps, chdir=out, common=cfg.slurm.common(), dry_run=dry_run)
    if not dry_run:
        (out / "campaign.json").write_text(json.dumps({"jobs": jobs, "commands": commands}, indent=1))
    return Submission(jobs, commands, tuple(configs), tuple(stores))


def _write_forecasts(cfg: CampaignConfig, folder: Path) -> tuple[list[Path], list[Path]]:
    import yaml

    configs, stores = [], []
    for t in cfg.init_times:
        values = cfg.forecast_values((t,))
        path = folder / f"{values['init_times'][0]}.yaml"
        path.write_text(yaml.safe_dump(values, sort_keys=False))
        configs.append(path)
        stores.append(folder / values["output"])
    return configs, stores


__all__ = ["CampaignConfig", "SlurmOptions", "Submission", "check_campaign", "load_campaign", "submit_campaign"]
