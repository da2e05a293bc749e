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
    height
        Height above the surface in m of near-surface fields (2 m temperature, 10 m wind),
        else ``None``.
    """

    name: str
    long_name: str
    short_name: str
    level: int | None
    units: str
    standard_name: str
    height: float | None = None

    def attrs(self) -> dict[str, str]:
        """CF attributes for an array holding this channel (its level: :meth:`vertical`)."""
        out = {
            "units": self.units,
            "standard_name": self.standard_name,
            "long_name": self.long_name.replace("_", " "),
        }
        if self.units == "K":  # CF 1.11: a temperature says whether it is on the scale
            out["units_metadata"] = "temperature: on_scale"
        return out

    def vertical(self) -> tuple[str, float, dict[str, str]] | None:
        """CF scalar vertical coordinate: (variable name, value, attributes).

        ``("plev500", 50000.0, ...)`` (air_pressure, Pa) for z500, ``("height2m", 2.0, ...)``
        (height above the surface, m, positive up) for t2m; ``None`` for fields on no
        level (msl, sp, column totals).
        """
        if self.level is not None:
            return f"plev{self.level}", 100.0 * self.level, {
                "standard_name": "air_pressure", "long_name": "pressure", "units": "Pa",
                "positive": "down", "axis": "Z"}
        if self.height is not None:
            return f"height{self.height:g}m", float(self.height), {
                "standard_name": "height", "long_name": "height above the surface",
                "units": "m", "positive": "up", "axis": "Z"}
        return None


# (prefix, WB2 long name, CDS short name, units, CF standard name)
_PRESSURE_VARIABLES = (
    ("z", "geopotential", "z", "m2 s-2", "geopotential"),
    ("t", "temperature", "t", "K", "air_temperature"),
    ("u", "u_component_of_wind", "u", "m s-1", "eastward_wind"),
    ("v", "v_component_of_wind", "v", "m s-1", "northward_wind"),
    ("q", "specific_humidity", "q", "kg kg-1", "specific_humidity"),
    ("w", "vertical_velocity", "w", "Pa s-1", "lagrangian_tendency_of_air_pressure"),
)
# (name, WB2 long name, CDS short name, units, CF standard name, height above surface in m)
_SURFACE_VARIABLES = (
    ("t2m", "2m_temperature", "t2m", "K", "air_temperature", 2.0),
    ("d2m", "2m_dewpoint_temperature", "d2m", "K", "dew_point_temperature", 2.0),
    ("u10m", "10m_u_component_of_wind", "u10", "m s-1", "eastward_wind", 10.0),
    ("v10m", "10m_v_component_of_wind", "v10", "m s-1", "northward_wind", 10.0),
    ("u100m", "100m_u_component_of_wind", "u100", "m s-1", "eastward_wind", 100.0),
    ("v100m", "100m_v_component_of_wind", "v100", "m s-1", "northward_wind", 100.0),
    ("msl", "mean_sea_level_pressure", "msl", "Pa", "air_pressure_at_mean_sea_level", None),
    ("sp", "surface_pressure", "sp", "Pa", "surface_air_pressure", None),
    ("tcwv", "total_column_water_vapour", "tcwv", "kg m-2", "atmosphere_mass_content_of_water_vapor", None),
)


def _build() -> dict[str, Channel]:
    table: dict[str, Channel] = {}
    for prefix, long_name, short, units, std in _PRESSURE_VARIABLES:
        for level in WB2_LEVELS:
            table[f"{prefix}{level}"] = Channel(f"{prefix}{level}", long_name, short, level, units, std)
    for name, long_name, short, units, std, height in _SURFACE_VARIABLES:
        table[name] = Channel(name, long_name, short, None, units, std, height)
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


#: makani (and FourCastNet/SFNO package) channel names that differ from hens names; the
#: others (u10m, t2m, msl, tcwv, z500, q1000, ...) are hens names already
MAKANI_NAMES: dict[str, str] = {"2d": "d2m"}


def from_makani(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """hens names of makani channel names; raise :class:`DataError` naming all unknown ones."""
    hens = tuple(MAKANI_NAMES.get(str(n), str(n)) for n in names)
    unknown = [str(n) for n, h in zip(names, hens) if h not in CHANNELS]
    if unknown:
        raise DataError(
            f"unknown makani channel(s) {', '.join(unknown)}; hens channels look like z500, u850, t2m, u10m, msl"
        )
    if len(set(hens)) != len(hens):
        raise DataError(f"duplicate channels in {list(names)}")
    return hens
