"""The channel registry: one source of truth for hens channel names and their names in
every data layout (WeatherBench2/ARCO Zarr long names, Copernicus CDS short names).

A hens channel is a variable at one level: ``z500`` is geopotential at 500 hPa,
``t2m`` the 2 m temperature. Pressure-level channels exist for the 13 WeatherBench2 levels.
"""

from __future__ import annotations

from dataclasses import dataclass

from hens.forecast.errors import DataError

#: pressure levels (hPa) of WeatherBench2's 13-level ERA5 stores
WB2_LEVELS: tuple[int, ...] = (50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000)

#: channels of the embedded shallow-water world, in model order
WORLD_CHANNELS: tuple[str, ...] = ("z500", "u500", "v500", "t2m")


@dataclass(frozen=True)
class Channel:
    """A model channel and its names in each layout.

    Attributes
    ----------
    name
        hens name, e.g. ``"z500"``.
    long_name
        WeatherBench2 / ARCO variable name, e.g. ``"geopotential"``.
    short_name
        Copernicus CDS netCDF (cfgrib) variable name, e.g. ``"z"``.
    level
        Pressure level in hPa, or ``None`` for single-level fields.
    units
        CF units string.
    standard_name
        CF standard name.
    """

    name: str
    long_name: str
    short_name: str
    level: int | None
    units: str
    standard_name: str

    def attrs(self) -> dict[str, str | int]:
        """CF attributes for an array holding this channel."""
        out: dict[str, str | int] = {
            "units": self.units,
            "standard_name": self.standard_name,
            "long_name": self.long_name.replace("_", " "),
        }
        if self.level is not None:
            out["level_hPa"] = self.level
        return out


# (prefix, WB2 long name, CDS short name, units, CF standard name)
_PRESSURE_VARIABLES = (
    ("z", "geopotential", "z", "m2 s-2", "geopotential"),
    ("t", "temperature", "t", "K", "air_temperature"),
    ("u", "u_component_of_wind", "u", "m s-1", "eastward_wind"),
    ("v", "v_component_of_wind", "v", "m s-1", "northward_wind"),
    ("q", "specific_humidity", "q", "kg kg-1", "specific_humidity"),
    ("w", "vertical_velocity", "w", "Pa s-1", "lagrangian_tendency_of_air_pressure"),
)
_SURFACE_VARIABLES = (
    ("t2m", "2m_temperature", "t2m", "K", "air_temperature"),
    ("d2m", "2m_dewpoint_temperature", "d2m", "K", "dew_point_temperature"),
    ("u10m", "10m_u_component_of_wind", "u10", "m s-1", "eastward_wind"),
    ("v10m", "10m_v_component_of_wind", "v10", "m s-1", "northward_wind"),
    ("u100m", "100m_u_component_of_wind", "u100", "m s-1", "eastward_wind"),
    ("v100m", "100m_v_component_of_wind", "v100", "m s-1", "northward_wind"),
    ("msl", "mean_sea_level_pressure", "msl", "Pa", "air_pressure_at_mean_sea_level"),
    ("sp", "surface_pressure", "sp", "Pa", "surface_air_pressure"),
    ("tcwv", "total_column_water_vapour", "tcwv", "kg m-2", "atmosphere_mass_content_of_water_vapor"),
)


def _build() -> dict[str, Channel]:
    table: dict[str, Channel] = {}
    for prefix, long_name, short, units, std in _PRESSURE_VARIABLES:
        for level in WB2_LEVELS:
            table[f"{prefix}{level}"] = Channel(f"{prefix}{level}", long_name, short, level, units, std)
    for name, long_name, short, units, std in _SURFACE_VARIABLES:
        table[name] = Channel(name, long_name, short, None, units, std)
    return table


CHANNELS: dict[str, Channel] = _build()


def get_channel(name: str) -> Channel:
    """Look up a hens channel by name; raise :class:`DataError` naming unknown ones."""
    try:
        return CHANNELS[name]
    except KeyError:
        raise DataError(
            f"unknown channel {name!r}; hens channels look like z500, u850, t2m, u10m, msl"
        ) from None


def get_channels(names: list[str] | tuple[str, ...]) -> list[Channel]:
    """Look up several channels, rejecting duplicates."""
    if len(set(names)) != len(names):
        raise DataError(f"duplicate channels in {list(names)}")
    return [get_channel(n) for n in names]
