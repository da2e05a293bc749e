"""``hens calibrate``: tune a perturbation amplitude or a model's noise for spread/skill ~1.

Modules: :mod:`~hens.pipelines.calibrate.tune` (the search and the calibrated YAML),
:mod:`~hens.pipelines.calibrate.times` (initial times held out from training),
:mod:`~hens.pipelines.calibrate.runs` (the in-memory trial ensembles) and
:mod:`~hens.pipelines.calibrate.command` (the command line).
"""

from hens.lazy import lazy_exports

__all__ = ["DEFAULT_CHANNELS", "LEADS", "MIN_MEMBERS", "TUNED_KEYS", "Calibration", "Trial", "calibrate",
           "calibrated_yaml", "check_output", "choose_channels", "default_pairs", "default_parameter", "next_value",
           "search", "write_calibrated"]
__getattr__ = lazy_exports(__name__, {
    name: "tune" for name in __all__
})
