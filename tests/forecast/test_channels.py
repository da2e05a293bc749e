"""Channel registry: names in every layout, units, and unambiguous reverse lookups."""

from __future__ import annotations

import pytest

from hens.forecast.channels import CHANNELS, WB2_LEVELS, WORLD_CHANNELS, get_channel, get_channels
from hens.forecast.errors import DataError

# the channel table of the data-layouts reference: hens name -> (WB2 name, level, CDS name, units)
REFERENCE = {
    "z500": ("geopotential", 500, "z", "m2 s-2"),
    "t850": ("temperature", 850, "t", "K"),
    "u500": ("u_component_of_wind", 500, "u", "m s-1"),
    "v500": ("v_component_of_wind", 500, "v", "m s-1"),
    "q700": ("specific_humidity", 700, "q", "kg kg-1"),
    "u10m": ("10m_u_component_of_wind", None, "u10", "m s-1"),
    "v10m": ("10m_v_component_of_wind", None, "v10", "m s-1"),
    "t2m": ("2m_temperature", None, "t2m", "K"),
    "msl": ("mean_sea_level_pressure", None, "msl", "Pa"),
    "tcwv": ("total_column_water_vapour", None, "tcwv", "kg m-2"),
}


@pytest.mark.parametrize("name", REFERENCE)
def test_reference_table(name):
    ch = get_channel(name)
    assert (ch.long_name, ch.level, ch.short_name, ch.units) == REFERENCE[name]
    assert ch.attrs()["units"] == ch.units
    assert ("level_hPa" in ch.attrs()) == (ch.level is not None)


def test_world_channels_and_levels_registered():
    assert all(name in CHANNELS for name in WORLD_CHANNELS)
    assert {ch.level for ch in CHANNELS.values() if ch.level is not None} == set(WB2_LEVELS)


@pytest.mark.parametrize("attr", ["long_name", "short_name"])
def test_reverse_lookup_is_unambiguous(attr):
    """A reader finds a channel from (variable name, level or none): no two may share it."""
    keys = [(getattr(ch, attr), ch.level) for ch in CHANNELS.values()]
    assert len(keys) == len(set(keys))


def test_unknown_and_duplicate_channels_raise():
    with pytest.raises(DataError, match="unknown channel 'z501'"):
        get_channel("z501")
    with pytest.raises(DataError, match="duplicate channels"):
        get_channels(["z500", "t2m", "z500"])
