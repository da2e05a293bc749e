"""Cosine of the solar zenith angle, as NVIDIA's published SFNO packages were trained with it.

The packages' training code evaluates a low-precision solar ephemeris (Meeus' mean anomaly,
ecliptic longitude and obliquity; Greenwich mean sidereal time as in the AIAA 2006 report)
in **float32** throughout. float32 sidereal time at a few 1e8 seconds is only good to tens of
seconds, i.e. the hour angle carries up to ~0.1 degree of rounding: a package has learnt
that rounding, so hens reproduces the float32 arithmetic step by step instead of computing a
more exact angle. Numbers below are the ephemeris' published coefficients.
"""

from __future__ import annotations

import numpy as np

_F32 = np.float32
_J2000 = np.datetime64("2000-01-01T12:00:00", "us")


def _days_since_j2000(times: np.ndarray) -> np.ndarray:
    """Days since 2000-01-01 12 UTC (microsecond resolution), float32."""
    micro = np.asarray(times, dtype="datetime64[us]") - _J2000
    return (micro / np.timedelta64(1, "D")).astype(_F32)


def _sidereal_angle(centuries: np.ndarray) -> np.ndarray:
    """Greenwich mean sidereal time in radians [0, 2 pi), float32 arithmetic."""
    seconds = _F32(67310.54841 + centuries * (876600 * 3600 + 8640184.812866
                                              + centuries * (0.093104 - centuries * 6.2 * 10e-6)))
    return (np.deg2rad(seconds / 240.0) % (2 * np.pi)).astype(_F32)


def _sun_position(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right ascension and declination of the sun (radians), float32 arithmetic."""
    c = days / 36525.0
    anomaly = np.deg2rad(357.52910 + 35999.05030 * c - 0.0001559 * c * c - 0.00000048 * c * c * c, dtype=_F32)
    mean_lon = np.deg2rad(280.46645 + 36000.76983 * c + 0.0003032 * (c**2), dtype=_F32)
    centre = np.deg2rad(
        (1.914600 - 0.004817 * c - 0.000014 * (c**2)) * np.sin(anomaly)
        + (0.019993 - 0.000101 * c) * np.sin(2 * anomaly)
        + 0.000290 * np.sin(3 * anomaly),
        dtype=_F32,
    )
    ecliptic_lon = mean_lon + centre
    c32 = c.astype(_F32)
    obliquity = np.deg2rad(
        23.0 + 26.0 / 60 + 21.406 / 3600.0
        - (46.836769 * c32 - 0.0001831 * (c32**2) + 0.00200340 * (c32**3) - 0.576e-6 * (c32**4) - 4.34e-8 * (c32**5))
        / 3600.0,
        dtype=_F32,
    )
    x = np.cos(ecliptic_lon)
    y = np.cos(obliquity) * np.sin(ecliptic_lon)
    z = np.sin(obliquity) * np.sin(ecliptic_lon)
    r = np.sqrt(1.0 - z * z)
    return _F32(2.0 * np.arctan2(y, x + r)), np.arctan2(z, r)


def cos_zenith(times: np.ndarray | np.datetime64, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Cosine of the solar zenith angle ``(T, nlat, nlon)``, float32.

    Parameters
    ----------
    times
        UTC valid times (``datetime64``), one or ``(T,)``.
    lat, lon
        Grid latitudes (degrees north, rows) and longitudes (degrees east, columns).
    """
    days = _days_since_j2000(np.atleast_1d(times)).reshape(-1, 1, 1)
    lon2d, lat2d = np.meshgrid(np.asarray(lon), np.asarray(lat))
    lon_rad = np.deg2rad(lon2d, dtype=_F32)[None]
    lat_rad = np.deg2rad(lat2d, dtype=_F32)[None]
    ascension, declination = _sun_position(days)
    hour_angle = _sidereal_angle(days / 36525.0) + lon_rad - ascension
    return (np.sin(lat_rad) * np.sin(declination)
            + np.cos(lat_rad) * np.cos(declination) * np.cos(hour_angle)).astype(_F32)
