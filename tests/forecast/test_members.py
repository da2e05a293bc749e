"""Member ids: bijection, pair structure, balanced prefixes, seeds from names only."""

from __future__ import annotations

import numpy as np
import pytest

from hens.forecast.errors import ConfigError
from hens.forecast.members import MemberId, MemberLayout, stream_seed


@pytest.mark.parametrize("layout", [MemberLayout(4, 8, 2), MemberLayout(1, 1, 1), MemberLayout(3, 2, 5)])
def test_index_and_member_are_inverse(layout):
    seen = set()
    for i in range(layout.size):
        mid = layout.member(i)
        assert layout.index(mid) == i
        seen.add((mid.c, mid.q, mid.sgn, mid.s))
    assert len(seen) == layout.size == layout.checkpoints * layout.pairs * 2 * layout.seeds


def test_reference_formula_and_pairs():
    layout = MemberLayout(checkpoints=4, pairs=8, seeds=1)
    # forecast/members.py: member = ((c*Q + q)*2 + sgn)*S + s
    assert layout.index(MemberId(c=2, q=3, sgn=1, s=0)) == ((2 * 8 + 3) * 2 + 1)
    for k in range(layout.size // 2):
        a, b = layout.member(2 * k), layout.member(2 * k + 1)
        assert (a.c, a.q) == (b.c, b.q) and a.sign == 1 and b.sign == -1


def test_checkpoint_blocks_are_balanced_prefixes():
    layout = MemberLayout(checkpoints=3, pairs=4, seeds=2)
    block = 2 * 4 * 2
    coords = layout.coords()
    for c in range(3):
        assert (coords["checkpoint"][c * block:(c + 1) * block] == c).all()
    prefix = coords["sign"][: 2 * block]
    assert prefix.sum() == 0  # as many + as - members


def test_out_of_range_is_a_config_error():
    layout = MemberLayout(2, 2, 1)
    with pytest.raises(ConfigError, match="outside"):
        layout.member(layout.size)
    with pytest.raises(ConfigError, match="outside"):
        layout.index(MemberId(c=2, q=0, sgn=0, s=0))
    with pytest.raises(ConfigError, match="pairs must be >= 1"):
        MemberLayout(1, 0, 1)


def test_stream_seed_depends_on_names_only():
    t = np.datetime64("2001-03-01T00")
    a = stream_seed(7, t, "bred-seed", 1, 2)
    assert a == stream_seed(7, "2001-03-01T00:00", "bred-seed", 1, 2)  # same hour, other spelling
    assert 0 <= a < 2**63
    others = {
        stream_seed(8, t, "bred-seed", 1, 2),
        stream_seed(7, t + np.timedelta64(6, "h"), "bred-seed", 1, 2),
        stream_seed(7, t, "model-noise", 1, 2),
        stream_seed(7, t, "bred-seed", 2, 1),
    }
    assert a not in others and len(others) == 4
