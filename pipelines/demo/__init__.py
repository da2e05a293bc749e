"""``hens demo``: the whole chain on the embedded world, from nothing to a summary table.

Modules: :mod:`~hens.pipelines.demo.run` (the stages), :mod:`~hens.pipelines.demo.tasks`
(long jobs on a small process pool), :mod:`~hens.pipelines.demo.reuse` (whether a product
can be reused) and :mod:`~hens.pipelines.demo.summary` (``summary.md``).
"""

from hens.lazy import lazy_exports

__all__ = ["CALIBRATED", "ENSEMBLES", "DemoSettings", "init_times", "run_demo"]
__getattr__ = lazy_exports(__name__, {name: "run" for name in __all__})
