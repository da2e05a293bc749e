"""hens: huge ensembles of spherical neural weather models.

Subpackages: :mod:`hens.forecast` (grids, channels, data sources, ensemble engine),
:mod:`hens.models` (SFNO, losses, training, the shallow-water world),
:mod:`hens.scoring` (metrics, spectra, extremes) and :mod:`hens.pipelines` (CLI, workflows).
"""

__version__ = "0.1.0"
