"""Ground sampling distance (metres per pixel) from a georeference.

The classical detector works in metres (smoothing scale, smallest object), so it needs the pixel size. A
projected CRS gives it directly from the transform (times the unit's size in metres); a geographic CRS
(EPSG:4326 and other lon/lat systems) gives degrees, which are turned into metres geodesically on the CRS's
ellipsoid at the raster's reference point. One number per pair: the geometric mean of the x and y pixel sizes,
so a 9 × 11 m Sentinel-2 pixel at 34° N counts as about 10 m.
"""

from __future__ import annotations

import math

from pyproj import CRS, Geod

from tools.crs import metres_per_unit
from tools.raster import Georef, InputError


def geod_of(crs: CRS) -> Geod:
    """The ellipsoid geodesic sizes and areas are measured on (WGS84 when the CRS names none)."""
    return Geod(ellps="WGS84") if crs.ellipsoid is None else crs.get_geod()


GSD_RANGE_M = (1e-3, 1e5)
"""Pixel sizes a pair can have, in metres: a millimetre (lab and close-range photos) to 100 km (the coarsest
weather grids). Outside it a number is a typo or a unit slip, and its areas would read "0 m²" or "nan m²"."""


def check_gsd(value: object, what: str = "ground sampling distance") -> float:
    """``value`` as metres per pixel, or an InputError: not a boolean, a finite number within GSD_RANGE_M."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"the {what} must be a number of metres per pixel, not {value!r}")
    low, high = GSD_RANGE_M
    if not math.isfinite(value) or not low <= value <= high:
        raise InputError(
            f"the {what} must be a positive number of metres per pixel between {low:g} and {high:g}, not {value!r}"
        )
    return float(value)


def gsd_from_georef(georef: Georef) -> float | None:
    """Metres per pixel of ``georef``, or None when its CRS has no usable unit (e.g. a local engineering CRS)."""
    a, b, c, d, e, f = georef.transform
    x_size = math.hypot(a, d)
    y_size = math.hypot(b, e)
    if x_size <= 0 or y_size <= 0:
        return None
    crs = georef.crs
    if crs.is_geographic:
        return _geodesic_pixel_size(crs, (a, b, c, d, e, f))
    unit = metres_per_unit(crs)
    return None if unit is None else math.sqrt(x_size * y_size) * unit


def _geodesic_pixel_size(crs: CRS, transform: tuple[float, float, float, float, float, float]) -> float:
    """Geodesic width × height of the pixel at the transform's origin, as one size in metres."""
    a, b, c, d, e, f = transform
    geod = geod_of(crs)
    lon0, lat0 = c, f
    lat0 = max(min(lat0, 89.9), -89.9)
    _, _, width = geod.inv(lon0, lat0, lon0 + a, lat0 + d)
    _, _, height = geod.inv(lon0, lat0, lon0 + b, lat0 + e)
    return math.sqrt(abs(width) * abs(height))


def describe_gsd(gsd_m: float | None) -> str:
    """How an answer names the pixel size: "10 m", "0.5 m", or "unknown"."""
    if gsd_m is None:
        return "unknown"
    return f"{gsd_m:.0f} m" if gsd_m >= 3 else f"{gsd_m:.2g} m"
