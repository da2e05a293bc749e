"""Channel registry: names in every layout, units, and unambiguous reverse lookups."""

from __future__ import annotations

import re

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
    assert "level_hPa" not in ch.attrs()  # not CF: the level is a scalar coordinate


@pytest.mark.parametrize("name", CHANNELS)
def test_vertical_coordinate_is_the_level_or_the_height_in_the_name(name):
    ch = get_channel(name)
    vertical = ch.vertical()
    near_surface = re.match(r"(\d+)m_", ch.long_name)  # WB2 names: 2m_temperature, 10m_u_...
    if ch.level is not None:
        assert vertical[0] == f"plev{ch.level}" and vertical[1] == 100.0 * ch.level
        assert (vertical[2]["standard_name"], vertical[2]["units"]) == ("air_pressure", "Pa")
    elif near_surface:
        assert vertical[0] == f"height{near_surface[1]}m" and vertical[1] == float(near_surface[1])
        assert vertical[2]["standard_name"] == "height" and vertical[2]["positive"] == "up"
    else:
        assert vertical is None
    assert (ch.attrs().get("units_metadata") == "temperature: on_scale") == (ch.units == "K")


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
