"""One validator for every GeoJSON the product writes, used by the export, page, CLI and browser tests.

It checks what a GIS user relies on: a FeatureCollection whose polygons are valid (shapely), closed and wound
right-handed (RFC 7946 §3.1.6); coordinates inside the raster's footprint in the file's own coordinates (WGS84,
the native CRS, or upright pixels); run-level provenance written once as the ``changeagent`` member and features
that carry only their own facts; no absolute (server) path anywhere; and GDAL (through pyogrio) reading the file
to the same number of features inside the same footprint.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import shapely
from rasterio.crs import CRS
from rasterio.transform import Affine, array_bounds
from rasterio.warp import transform_bounds
from shapely.geometry import shape

from tools.raster import Georef

FEATURE_KEYS = {"pair", "feature", "cell", "cell_name", "changed_fraction", "category", "area_px", "area_m2", "area_ha"}
ABSOLUTE_PATH = re.compile(r"(^|[\s(\"'=:])(/[^/\s]+)+/|[A-Za-z]:\\")


def footprint(georef: Georef | None, width: int, height: int, crs: str = "wgs84") -> tuple[float, ...]:
    """The raster's bounds in the export's coordinates: upright pixels, its native CRS, or WGS84."""
    if georef is None:
        return 0.0, 0.0, float(width), float(height)
    west, south, east, north = array_bounds(height, width, Affine(*georef.transform))
    if crs == "native":
        return west, south, east, north
    return transform_bounds(
        CRS.from_user_input(georef.crs.to_wkt()), "EPSG:4326", west, south, east, north, densify_pts=21
    )


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _inside(bounds: tuple[float, ...], outer: tuple[float, ...], what: str) -> None:
    tolerance = 1e-7 * max(1.0, *(abs(v) for v in outer))
    x0, y0, x1, y1 = bounds
    ox0, oy0, ox1, oy1 = outer
    assert ox0 - tolerance <= x0 <= x1 <= ox1 + tolerance, f"{what}: x {x0}…{x1} outside {ox0}…{ox1}"
    assert oy0 - tolerance <= y0 <= y1 <= oy1 + tolerance, f"{what}: y {y0}…{y1} outside {oy0}…{oy1}"


def validate_geojson(
    path: str | Path, georef: Georef | None, width: int, height: int, crs: str = "wgs84"
) -> dict[str, Any]:
    """Check one exported file (see the module's docstring) and return it parsed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    collection = json.loads(text)
    assert collection["type"] == "FeatureCollection" and isinstance(collection["features"], list)
    for value in _strings(collection):
        assert not ABSOLUTE_PATH.search(value), f"an absolute path is written in {path.name}: {value!r}"
    member = collection.get("changeagent")
    assert member is not None and {"pair", "mask", "coordinates"} <= set(member), "run provenance is missing"
    pixel = georef is None
    assert ("coordinate_system" in collection) == pixel and ("pixel" in member["coordinates"]) == pixel
    if pixel:
        assert path.name.endswith("_pixel.geojson") or "pixel" in collection.get("name", "")
    outer = footprint(georef, width, height, crs)
    for number, feature in enumerate(collection["features"]):
        what = f"{path.name} feature {number}"
        extra = set(feature["properties"]) - FEATURE_KEYS - {k for k in feature["properties"] if _per_layer(k)}
        assert not extra, f"{what} carries run-level facts: {sorted(extra)}"
        geometry = shape(feature["geometry"])
        assert geometry.geom_type == "MultiPolygon", what  # one geometry type per layer
        assert geometry.is_valid and not geometry.is_empty and geometry.area > 0, f"{what} is not a valid polygon"
        for polygon in shapely.get_parts(geometry):
            rings = [polygon.exterior, *polygon.interiors]
            assert all(ring.coords[0] == ring.coords[-1] for ring in rings), f"{what} has an open ring"
            assert polygon.exterior.is_ccw, f"{what}: the exterior is not counter-clockwise (RFC 7946)"
            assert not any(ring.is_ccw for ring in polygon.interiors), f"{what}: a hole is not clockwise"
        _inside(geometry.bounds, outer, what)
    pyogrio = pytest.importorskip("pyogrio", reason="pip install pyogrio (the test extra): the GDAL read check")
    info = pyogrio.read_info(path)
    assert info["features"] == len(collection["features"]), "GDAL reads another number of features"
    if collection["features"]:
        if georef is not None and crs == "native":
            assert CRS.from_user_input(info["crs"]) == CRS.from_user_input(georef.crs.to_wkt())
        elif georef is not None:
            assert CRS.from_user_input(info["crs"]).to_epsg() == 4326
        _, _, wkb, _ = pyogrio.raw.read(path)
        read = shapely.from_wkb(wkb)
        assert all(g.is_valid for g in read), "GDAL read an invalid polygon"
        _inside(shapely.total_bounds(read), outer, f"{path.name} as GDAL reads it")
    return collection


def _per_layer(key: str) -> bool:
    """Counts, fractions and flags per category layer (``building_count``, ``change_count`` …) are cell facts."""
    return key.endswith(("_count", "_fraction", "_changed"))
