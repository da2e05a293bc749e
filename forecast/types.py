"""String options of the forecast code, defined once (``Literal`` aliases, torch-free)."""

from __future__ import annotations

from typing import Literal, get_args

#: initial-condition perturbation kinds (:mod:`hens.forecast.perturb`)
PerturbationKind = Literal["none", "gaussian", "bred_vector", "hemispheric_bred_vector"]
PERTURBATION_KINDS: tuple[str, ...] = get_args(PerturbationKind)
