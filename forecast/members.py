"""Member ids: the one formula between a member index and what makes the member.

For C checkpoints, Q hemispheric-centred pairs (P = 2Q perturbations) and S noise seeds::

    member = ((c * Q + q) * 2 + sgn) * S + s     c < C, q < Q, sgn in {0, 1}, s < S
    sign   = +1 if sgn == 0 else -1              perturbation index p = 2 q + sgn

so members 2k and 2k+1 (S = 1) form a +/- pair, consecutive blocks of 2 Q S members share a
checkpoint, and any prefix of whole checkpoint blocks is a balanced sub-ensemble. Seeds of
random streams are hashes of names (never of batch or rank), see :func:`stream_seed`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from hens.forecast.errors import ConfigError

class Stream(StrEnum):
    """The random streams; a stream's name is hashed into its seeds (:func:`stream_seed`), so
    these strings are part of every store's bits and never change."""

    #: the initial-condition seed field of a pair (bred vectors and Gaussian perturbations)
    BRED_SEED = "bred-seed"
    #: the model noise while breeding a pair (shared by its control and perturbed runs)
    BRED_NOISE = "bred-noise"
    #: the per-member noise of a stochastic SFNO
    MODEL_NOISE = "model-noise"
    #: the per-member noise of the world's forcing
    PHYSICS_NOISE = "physics-noise"


@dataclass(frozen=True)
class MemberId:
    """What makes one member: checkpoint ``c``, pair ``q``, sign bit ``sgn``, seed ``s``."""

    c: int
    q: int
    sgn: int
    s: int

    @property
    def sign(self) -> int:
        """+1 for the first member of a pair, -1 for the second."""
        return 1 - 2 * self.sgn

    @property
    def perturbation(self) -> int:
        """Perturbation index p = 2 q + sgn."""
        return 2 * self.q + self.sgn


@dataclass(frozen=True)
class MemberLayout:
    """The design of an ensemble: ``checkpoints`` x ``pairs`` x 2 signs x ``seeds``."""

    checkpoints: int
    pairs: int
    seeds: int = 1

    def __post_init__(self) -> None:
        for name in ("checkpoints", "pairs", "seeds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def size(self) -> int:
        """Number of members."""
        return self.checkpoints * self.pairs * 2 * self.seeds

    def index(self, mid: MemberId) -> int:
        """Member index of ``mid``."""
        if not (0 <= mid.c < self.checkpoints and 0 <= mid.q < self.pairs
                and mid.sgn in (0, 1) and 0 <= mid.s < self.seeds):
            raise ConfigError(f"{mid} is outside the ensemble layout {self}")
        return ((mid.c * self.pairs + mid.q) * 2 + mid.sgn) * self.seeds + mid.s

    def member(self, index: int) -> MemberId:
        """Inverse of :meth:`index`."""
        if not 0 <= index < self.size:
            raise ConfigError(f"member {index} is outside 0..{self.size - 1}")
        s = index % self.seeds
        r = index // self.seeds
        sgn = r % 2
        r //= 2
        return MemberId(c=r // self.pairs, q=r % self.pairs, sgn=sgn, s=s)

    def coords(self) -> dict[str, np.ndarray]:
        """Integer coordinates along ``member``: checkpoint, pair, sign (+1/-1), seed."""
        ids = [self.member(i) for i in range(self.size)]
        return {
            "checkpoint": np.array([m.c for m in ids], dtype=np.int32),
            "pair": np.array([m.q for m in ids], dtype=np.int32),
            "sign": np.array([m.sign for m in ids], dtype=np.int8),
            "seed": np.array([m.s for m in ids], dtype=np.int32),
        }


def stream_seed(base_seed: int, init_time: np.datetime64 | str, stream: Stream, *keys: int) -> int:
    """A 63-bit seed for one random stream, a pure function of names (docs/reproducibility.md).

    Parameters
    ----------
    base_seed
        The run's seed.
    init_time
        Initial time; formatted to the hour.
    stream
        Which random stream, see :data:`Stream`.
    *keys
        Integers identifying the member's share of the stream, e.g. ``(c, q)`` for bred seeds.
    """
    stamp = np.datetime_as_string(np.datetime64(init_time, "h"), unit="h")
    key = "|".join([str(int(base_seed)), stamp, stream, *(str(int(k)) for k in keys)])
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") & (2**63 - 1)
