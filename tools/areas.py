"""Ground area of pixels: from the georeference when there is one, from the user's ground sampling distance otherwise.

* Projected CRS: a pixel covers ``|a·e − b·d|`` square CRS units (the affine transform's determinant), converted
  to metres with the CRS's linear unit.
* Geographic CRS (EPSG:4326 and other lon/lat): a pixel's area shrinks with latitude, so each row's pixel is
  measured on the CRS's ellipsoid (``pyproj.Geod.geometry_area_perimeter``, via tools.gsd) row by row.
* A plain image has no pixel size. A user's ground sampling distance (metres per pixel side) gives
  ``gsd²`` m² per pixel. When a pair has both, the georeference wins and the answer says if they disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import shapely
from pydantic import BaseModel, Field
from shapely.geometry.base import BaseGeometry

from tools.crs import metres_per_unit
from tools.gsd import geod_of
from tools.raster import Georef, InputError

AreaUnit = Literal["m2", "ha", "km2", "acre"]
SQUARE_METRES: dict[str, float] = {"m2": 1.0, "ha": 10_000.0, "km2": 1_000_000.0, "acre": 4046.8564224}
AreaMethod = Literal["geodesic", "projected", "user_gsd", "unreadable_crs", "none"]
"""How a pixel's ground area was found: on the lon/lat CRS's ellipsoid row by row, the projected transform's
determinant, the user's ground sampling distance, nothing (the CRS could not be read / a plain image)."""
GSD_DISAGREEMENT = 0.1
"""A user's GSD that differs from the georeference's pixel side by more than this share is reported."""


class PixelArea(BaseModel):
    """How large the pixels of a pair are on the ground, and how that was found."""

    source: Literal["georeference", "user", "unknown"]
    method: AreaMethod
    crs: str | None = Field(None, description="The georeference's CRS as text, when it gave the areas.")
    crs_error: str | None = Field(None, description="Why the georeference's CRS could not be read (exception type).")
    mean_pixel_m2: float | None = None
    pixel_side_m: float | None = Field(None, description="Square root of the mean pixel area.")
    disagreeing_gsd_m: float | None = Field(
        None, description="The user's GSD when it differs from the georeference's pixel side (the georeference won)."
    )


def row_pixel_areas(georef: Georef, height: int) -> tuple[np.ndarray, AreaMethod]:
    """Ground area in m² of one pixel in each row, and how it was computed."""
    return pixel_areas_at_rows(georef, np.arange(height))


def ground_areas_m2(geometries: Sequence[BaseGeometry], georef: Georef) -> np.ndarray:
    """Area on the ground of geometries in the pair's CRS: geodesic on a lon/lat CRS, else planar × unit².

    The one area rule of the project: pixels (:func:`pixel_areas_at_rows`), exported objects' ``area_m2`` and the
    areas of interest all go through it.
    """
    crs = georef.crs
    if crs.is_geographic:
        geod = geod_of(crs)
        return np.array([0.0 if g.is_empty else abs(geod.geometry_area_perimeter(g)[0]) for g in geometries])
    unit = metres_per_unit(crs)
    if unit is None:  # the same rule as the pair's pixel size (tools.gsd): no unit, no metres
        raise InputError(f"the georeference's CRS {crs.to_string()} names no unit of length")
    return shapely.area(np.asarray(geometries, dtype=object)) * unit * unit


def ground_area_m2(geometry: BaseGeometry, georef: Georef) -> float:
    """:func:`ground_areas_m2` of one geometry."""
    return float(ground_areas_m2([geometry], georef)[0])


def pixel_areas_at_rows(georef: Georef, rows: np.ndarray) -> tuple[np.ndarray, AreaMethod]:
    """Ground area in m² of one pixel in each of ``rows`` (row indices, may be fractional), and how it was computed.

    A lon/lat pixel shrinks with latitude, so each row's (its first column's) is measured; a projected one is the
    same everywhere, so one is.
    """
    a, b, c, d, e, f = georef.transform
    geographic = georef.crs.is_geographic
    y = np.asarray(rows, dtype=float) if geographic else np.zeros(1)
    x = np.array([0.0, 1.0, 1.0, 0.0, 0.0])
    ys = y[:, None] + np.array([0.0, 0.0, 1.0, 1.0, 0.0])
    ring = np.stack([c + a * x + b * ys, f + d * x + e * ys], axis=-1)  # (rows, 5, 2): each row's pixel, closed
    areas = ground_areas_m2(list(shapely.polygons(ring)), georef)
    return (areas, "geodesic") if geographic else (np.full(len(rows), areas[0]), "projected")


def pixel_area(georef: Georef | None, height: int, gsd_m: float | None) -> tuple[PixelArea, np.ndarray | None]:
    """The pair's pixel size and, when known, each row's pixel area in m²."""
    crs_error = None
    if georef is not None:
        try:
            rows, method = row_pixel_areas(georef, height)
        except Exception as exc:  # a CRS pyproj cannot read: fall back to the user's GSD, and say so
            rows, crs_error = None, type(exc).__name__
        if rows is not None:
            mean = float(rows.mean())
            side = mean**0.5
            disagree = gsd_m is not None and abs(gsd_m - side) > GSD_DISAGREEMENT * side
            return PixelArea(
                source="georeference",
                method=method,
                crs=georef.crs.to_string(),
                mean_pixel_m2=mean,
                pixel_side_m=side,
                disagreeing_gsd_m=gsd_m if disagree else None,
            ), rows
    if gsd_m is not None:
        return PixelArea(
            source="user", method="user_gsd", crs_error=crs_error, mean_pixel_m2=gsd_m * gsd_m, pixel_side_m=gsd_m
        ), np.full(height, gsd_m * gsd_m)
    method: AreaMethod = "unreadable_crs" if crs_error else "none"
    return PixelArea(source="unknown", method=method, crs_error=crs_error), None


def convert(area_m2: float, unit: AreaUnit) -> float:
    return area_m2 / SQUARE_METRES[unit]
