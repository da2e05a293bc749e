"""``hens score``: a whole ensemble store scored against a truth source into a scores store.

Modules: :mod:`~hens.scoring.evaluate.score` (:func:`score_ensemble`, the scores store),
:mod:`~hens.scoring.evaluate.store` (reading the ensemble store),
:mod:`~hens.scoring.evaluate.truth` (truth and climatology at the valid times),
:mod:`~hens.scoring.evaluate.scorecard` (the scores' names, dims and xarray definitions),
:mod:`~hens.scoring.evaluate.tasks` (one dask task per latitude band),
:mod:`~hens.scoring.evaluate.fused` and :mod:`~hens.scoring.evaluate.partials` (the
one-sort kernel and its mergeable sums), :mod:`~hens.scoring.evaluate.subsets` (balanced
sub-ensembles) and :mod:`~hens.scoring.evaluate.cluster` (where it computes).
"""

from hens.lazy import lazy_exports

__all__ = ["AGGREGATION", "DEFAULT_THRESHOLDS", "EFI_CLIMATE", "score_ensemble"]
__getattr__ = lazy_exports(__name__, {name: "score" for name in __all__})
