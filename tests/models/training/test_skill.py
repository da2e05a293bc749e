"""Quick skill (hens.models.training.skill): the spectra it gathers and the spectrum check it reports."""

from __future__ import annotations

import numpy as np
import pytest

from hens.models.training.skill import Skill


def test_evaluate_gathers_the_truth_spectrum_of_the_valid_times(world_store, tiny_checkpoints):
    from hens.forecast.sources import open_source
    from hens.models.checkpoint import load_checkpoint
    from hens.models.training.skill import evaluate
    from hens.scoring.spectra import power_spectrum

    ckpt = load_checkpoint(tiny_checkpoints["stoch0"])
    source = open_source(world_store)
    starts = source.times[[40, 52]]
    skill = evaluate(ckpt, source, starts, lead_days=(0.5, 1.0), members=3, spectra=True)
    assert skill.member_power.shape == skill.truth_power.shape == (2, 4, 32)
    for i, lead in enumerate(skill.lead_days):
        valid = starts + np.timedelta64(int(lead * 24), "h")
        expected = power_spectrum(source(valid, list(skill.channels))).mean("time")
        np.testing.assert_allclose(skill.truth_power[i], expected.transpose("channel", "wavenumber").values,
                                   rtol=1e-10)
    rows = skill.records(["t2m"], spectrum_lmax=10)
    assert [(r["channel"], r["lead_days"]) for r in rows] == [("t2m", 0.5), ("t2m", 1.0)]
    assert [r["spectrum_error"] for r in rows] == [round(float(e), 3) for e in skill.spectrum_error(lmax=10)[:, 3]]
    assert [r["crps"] for r in rows] == [round(float(c), 4) for c in skill.crps[:, 3]]
    # untrained members are not the truth: their spectra differ, and the check says so
    assert (skill.spectrum_error() > 0.05).all()


def test_spectrum_error_is_the_largest_deviation_over_l_1_to_half_the_degrees():
    truth = np.ones((1, 1, 32))
    member = truth.copy()
    member[..., 0] = 5.0  # l = 0 (the mean) is not checked
    member[..., 1:17] = 1.1
    member[..., 9] = 0.7  # the largest deviation inside the window
    member[..., 17:] = 3.0  # beyond L/2 = 16, not checked
    skill = Skill((10.0,), ("z500",), np.ones((1, 1)), np.ones((1, 1)), None, np.ones((1, 1)), 8, 1,
                  member_power=member, truth_power=truth)
    assert skill.spectrum_error()[0, 0] == pytest.approx(0.3)
    assert skill.spectrum_error(lmax=31)[0, 0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="spectra=True"):
        Skill((1.0,), ("z500",), np.ones((1, 1)), np.ones((1, 1)), None, None, 1, 1).spectrum_error()
