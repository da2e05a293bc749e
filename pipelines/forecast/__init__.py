"""``hens forecast``: the YAML, the models and perturbations it names, and the run.

Modules: :mod:`~hens.pipelines.forecast.config` (the forecast YAML),
:mod:`~hens.pipelines.forecast.components` (models, perturbation and store spec of a run),
:mod:`~hens.pipelines.forecast.steppers` (checkpoints and the world's solver behind the
engine's ``Stepper``), :mod:`~hens.pipelines.forecast.perturbation_scale` (measured
perturbation scales), :mod:`~hens.pipelines.forecast.plan` (``--plan``) and
:mod:`~hens.pipelines.forecast.run` (the run on 1..N ranks, one member again).
"""

from hens.lazy import lazy_exports

__all__ = ["ForecastConfig", "compute_member", "load_config", "parse_config", "process_settings", "run_forecast"]
__getattr__ = lazy_exports(__name__, {
    "compute_member": "run", "process_settings": "run", "run_forecast": "run",
    "ForecastConfig": "config", "load_config": "config", "parse_config": "config",
})
