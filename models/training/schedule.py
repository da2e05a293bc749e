"""Learning-rate schedule and step budget of ``hens train``.

Warm-up, stable, decay: the rate rises linearly over 20 steps, stays constant, and decays
with a cosine to 1 % over the last 30 % of the steps (the multi-step rollout phase lies inside
the decay). Before the decay the rate does not depend on the total number of steps, so a
``--minutes`` run can measure its speed while the rate is constant and fix the total only
when the decay must begin (:func:`commit_total`); ``--steps`` with that total reproduces it.
"""

from __future__ import annotations

import math

WARMUP_STEPS = 20
#: fraction of the steps in the learning-rate decay; the rollout phase lies inside it
DECAY_FRACTION = 0.3


def decay_start(total: int) -> int:
    """First step of the decay: the last 30 % of ``total`` steps."""
    return total - int(round(DECAY_FRACTION * total))


def lr_at(step: int, total: int | None, lr: float) -> float:
    """Rate of ``step`` (0-based) for a run of ``total`` steps (``None``: not fixed yet)."""
    if step < WARMUP_STEPS:
        return lr * (step + 1) / WARMUP_STEPS
    if total is None or step < decay_start(total):
        return lr
    start = decay_start(total)
    frac = min(1.0, (step - start) / max(1, total - start))
    return lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * frac)))


def commit_total(step: int) -> int:
    """The largest total whose decay starts at ``step`` (every step is some total's start)."""
    total = max(step + 1, int(step / (1.0 - DECAY_FRACTION)))
    while decay_start(total + 1) <= step:
        total += 1
    while decay_start(total) > step and total > step + 1:
        total -= 1
    return total


def planned_total(
    step: int, seconds_left: float, step_seconds: float, *, rollout_fraction: float, rollout_cost: float
) -> int:
    """The largest total whose steps from ``step`` on fit ``seconds_left`` (at least ``step + 1``).

    One-step steps cost ``step_seconds``; the last ``round(rollout_fraction x total)`` steps
    (the rollout tail, all still ahead while the total is being planned) cost ``rollout_cost``
    times as much.
    """

    step_seconds = max(step_seconds, 1e-9)

    def cost(total: int) -> float:
        tail = min(int(round(rollout_fraction * total)), total - step)
        return step_seconds * ((total - step - tail) + rollout_cost * tail)

    low, high = step + 1, step + 2
    while cost(high) <= seconds_left:
        low, high = high, step + 2 * (high - step)
    while high - low > 1:  # cost grows with the total: the last total that fits lies in [low, high)
        mid = (low + high) // 2
        low, high = (mid, high) if cost(mid) <= seconds_left else (low, mid)
    return low
