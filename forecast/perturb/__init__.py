"""Initial-condition perturbations of ensemble members (docs/design.md, ensemble engine).

======================== ==================================================================
kind                     member (c, q, sign) starts from
======================== ==================================================================
none                     the analysis
gaussian                 analysis + sign A_c xi_{c,q} (spherical Gaussian random field)
bred_vector              analysis + d_{c,q,sign} (one bred vector per member)
hemispheric_bred_vector  analysis + sign d_{c,q} (HENS: centred +/- pairs)
======================== ==================================================================

``A_c`` is the per-channel amplitude; bred vectors are rescaled each cycle with the
hemispheric norm (:mod:`~hens.forecast.perturb.norms`). Humidity-like channels are clipped at
0 afterwards (:mod:`~hens.forecast.perturb.bounds`). Every random draw is seeded from the
member id (:func:`~hens.forecast.members.stream_seed`), never from the batch or the rank.
"""

from __future__ import annotations

from hens.forecast.perturb.bounds import clip_physical, nonnegative_channels
from hens.forecast.perturb.bred import BredVector, breed, breeding_times
from hens.forecast.perturb.gaussian import GaussianPerturbation, NoPerturbation, seed_field
from hens.forecast.perturb.norms import band_rows, hemispheric_norm, rescale
from hens.forecast.types import PERTURBATION_KINDS, PerturbationKind

__all__ = [
    "PERTURBATION_KINDS",
    "BredVector",
    "GaussianPerturbation",
    "NoPerturbation",
    "PerturbationKind",
    "band_rows",
    "breed",
    "breeding_times",
    "clip_physical",
    "hemispheric_norm",
    "nonnegative_channels",
    "rescale",
    "seed_field",
]
