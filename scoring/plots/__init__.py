"""Figures, one module per family: :mod:`~hens.scoring.plots.scores` (``hens plot``: the
figures of a scores store), :mod:`~hens.scoring.plots.comparison` (several ensembles side by
side), :mod:`~hens.scoring.plots.world` (quick looks at gridded data) and
:mod:`~hens.scoring.plots.figure` (the canvas they share).
"""

from hens.lazy import lazy_exports

__all__ = ["open_scores", "plot_comparison", "plot_global_means", "plot_map", "plot_scores"]
__getattr__ = lazy_exports(__name__, {
    "open_scores": "scores", "plot_scores": "scores", "plot_comparison": "comparison",
    "plot_global_means": "world", "plot_map": "world",
})
