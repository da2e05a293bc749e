"""``hens campaign``: a hindcast campaign on SLURM (train -> forecast -> score) from one YAML.

Modules: :mod:`~hens.pipelines.campaign.config` (the campaign YAML),
:mod:`~hens.pipelines.campaign.check` (what is checked before anything is submitted),
:mod:`~hens.pipelines.campaign.sbatch` (the job arrays and their ``afterok`` chain) and
:mod:`~hens.pipelines.campaign.submit` (writing the forecast YAMLs and submitting).
"""

from hens.lazy import lazy_exports

__all__ = ["CampaignConfig", "Submission", "default_scripts", "load_campaign", "submit_campaign"]
__getattr__ = lazy_exports(__name__, {
    "CampaignConfig": "config", "load_campaign": "config",
    "Submission": "submit", "default_scripts": "submit", "submit_campaign": "submit",
})
