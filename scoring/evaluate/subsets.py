"""Random balanced sub-ensembles of whole (checkpoint, pair) units (HENS Part II).

A unit is the 2 x seeds members of one checkpoint's +/- pair (member coordinates
``checkpoint``, ``pair``; :mod:`hens.forecast.members`). A *draw* is a random order of the
units in rounds: each round takes one unit of every checkpoint that has one left, the
checkpoints in a fresh random order and each checkpoint's pairs in a random order. Every
prefix of a draw is therefore balanced (its checkpoints differ by at most one pair) and a
sub-ensemble of n units is the first n units of the draw, so the sizes of one draw are
nested. Repeating the draw gives the sampling spread of a score at a given size.

Sizes (in members): 1, 2, 4, ... units, the number of units closest to 50 members (the
ECMWF/IFS ensemble size that Part II compares against), and all units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: members of the operational ensemble Part II compares huge ensembles with
IFS_SIZE = 50
#: random draws per sub-ensemble size
DRAWS = 8


@dataclass(frozen=True)
class SubsetPlan:
    """Units and draws of the sub-ensemble diagnostics.

    Attributes
    ----------
    units
        Member positions (along the scored ``member`` dim) of each complete unit, ``(U, size)``.
    orders
        One random balanced order of the units per draw, ``(draws, U)``.
    counts
        Units per sub-ensemble, increasing, the last = U.
    """

    units: np.ndarray
    orders: np.ndarray
    counts: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        """Sub-ensemble sizes in members."""
        return self.counts * self.units.shape[1]


def _units(checkpoint: np.ndarray, pair: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted({(int(c), int(q)) for c, q in zip(checkpoint, pair, strict=True)})
    units = [np.flatnonzero((checkpoint == c) & (pair == q)) for c, q in keys]
    full = max(u.size for u in units)
    kept = [(k, u) for k, u in zip(keys, units, strict=True) if u.size == full]  # incomplete units out
    return np.array([k[0] for k, _ in kept]), np.stack([u for _, u in kept])


def balanced_order(checkpoints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order of units (given each unit's checkpoint) whose every prefix is balanced."""
    queues = {int(c): list(rng.permutation(np.flatnonzero(checkpoints == c))) for c in np.unique(checkpoints)}
    order: list[int] = []
    while queues:
        for c in rng.permutation(sorted(queues)):
            order.append(int(queues[int(c)].pop()))
            if not queues[int(c)]:
                del queues[int(c)]
    return np.array(order)


def subset_plan(
    checkpoint: np.ndarray, pair: np.ndarray, *, draws: int = DRAWS, seed: int = 0
) -> SubsetPlan:
    """Units, ``draws`` random balanced orders and the sizes (module docstring).

    Parameters
    ----------
    checkpoint, pair
        Member coordinates of the scored members.
    draws
        Random draws (>= 1); the full ensemble is the same in every draw.
    seed
        Seed of the draws (the plan is recorded by its seed in the scores' attributes).
    """
    ckpt, units = _units(np.asarray(checkpoint), np.asarray(pair))
    n = units.shape[0]
    rng = np.random.default_rng([seed, n])
    orders = np.stack([balanced_order(ckpt, rng) for _ in range(draws)])
    ifs = max(1, round(IFS_SIZE / units.shape[1]))
    counts = sorted({*(2**k for k in range(n.bit_length()) if 2**k <= n), *([ifs] if ifs <= n else []), n})
    return SubsetPlan(units=units, orders=orders, counts=np.array(counts))

