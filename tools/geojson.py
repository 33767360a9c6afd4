"""GeoJSON of changed grid cells and changed objects, placed through the raster's affine transform.

CRS policy: RFC 7946 GeoJSON is WGS84 longitude/latitude, so georeferenced pairs are reprojected to
EPSG:4326 by default (QGIS, geojson.io and web maps open them as they are). ``crs="native"`` keeps
the image's own CRS and names it in the legacy ``crs`` member (GeoJSON 2008), which GDAL and QGIS
honour; use it for exact areas in a projected CRS. A pair with no georeference is exported in pixel
coordinates (x = column, y = row, origin at the top-left corner of the image), and says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio.features
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from shapely.affinity import affine_transform
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry

from deltavlm.rules import CATEGORIES, CELL_NAMES, ChangeSummary, change_mask, find_objects, grid_bounds
from tools.masks import ChangeMask
from tools.raster import Georef
from tools.verify import Verification

CrsMode = Literal["wgs84", "native"]
PIXEL_COORDINATES = "pixel (x = column, y = row, origin at the image's top-left corner)"


def to_map(geom: BaseGeometry, georef: Georef | None, crs: CrsMode) -> dict[str, Any]:
    """Pixel geometry → the output coordinates as a GeoJSON geometry dict."""
    if georef is None:
        return mapping(geom)
    a, b, c, d, e, f = georef.transform
    projected = affine_transform(geom, [a, b, d, e, c, f])
    if crs == "native":
        return mapping(projected)
    return transform_geom(CRS.from_string(georef.crs), "EPSG:4326", mapping(projected), precision=9)


def pixel_area_m2(georef: Georef | None) -> float | None:
    """Ground area of one pixel when the CRS is projected in metres; else None."""
    if georef is None:
        return None
    crs = CRS.from_string(georef.crs)
    if not crs.is_projected or (crs.linear_units or "").lower() not in ("metre", "meter", "m"):
        return None
    a, b, _, d, e, _ = georef.transform
    return abs(a * e - b * d)


def _object_polygons(class_mask: np.ndarray, category: str | None, min_pixels: int) -> list[BaseGeometry]:
    """Exact pixel-edge polygons of each 8-connected object (rasterio.features.shapes)."""
    selected = change_mask(class_mask, category).astype(np.uint8)
    polygons = []
    for geom, value in rasterio.features.shapes(selected, mask=selected.astype(bool), connectivity=8):
        if value:
            polygon = shape(geom)
            if polygon.area >= min_pixels:
                polygons.append(polygon)
    return polygons


def cell_features(
    summary: ChangeSummary,
    height: int,
    width: int,
    centroids: Mapping[str, Sequence[tuple[float, float]]],
    georef: Georef | None,
    crs: CrsMode,
    identity: Mapping[str, Any],
    provenance: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """One feature per changed 3×3 cell: fractions, whether each category changed, objects counted per layer.

    ``centroids`` maps each counted layer (the categories, or ``change`` for a mask without categories) to
    its objects' centroids; an object belongs to the cell that holds its centroid.
    """
    bounds = grid_bounds(height, width)
    features = []
    for cell in summary.cells:
        r0, r1, c0, c1 = bounds[cell]
        props: dict[str, Any] = {
            **identity,
            "feature": "cell",
            "cell": cell,
            "cell_name": CELL_NAMES[cell],
            "changed_fraction": round(summary.cell_fractions[cell], 6),
        }
        for name, points in centroids.items():
            props[f"{name}_count"] = sum(1 for x, y in points if c0 <= x < c1 and r0 <= y < r1)
            if name in summary.category_cells:
                props[f"{name}_fraction"] = round(summary.category_cell_fractions[name][cell], 6)
                props[f"{name}_changed"] = cell in summary.category_cells[name]
        props.update(provenance)
        features.append({"type": "Feature", "geometry": to_map(box(c0, r0, c1, r1), georef, crs), "properties": props})
    return features


def object_feature(
    geometry: BaseGeometry,
    label: str,
    area_px: int,
    georef: Georef | None,
    crs: CrsMode,
    identity: Mapping[str, Any],
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """One changed object, with its area in pixels and, in a metric CRS, in square metres."""
    props: dict[str, Any] = {**identity, "feature": "object", "category": label, "area_px": area_px}
    pixel_m2 = pixel_area_m2(georef)
    if pixel_m2 is not None:
        props["area_m2"] = round(area_px * pixel_m2, 2)
    props.update(provenance)
    return {"type": "Feature", "geometry": to_map(geometry, georef, crs), "properties": props}


def feature_collection(
    features: list[dict[str, Any]], georef: Georef | None, crs: CrsMode, pixel_note: str = PIXEL_COORDINATES
) -> dict[str, Any]:
    """The collection, saying which coordinates it is in: pixels, or a native CRS (legacy ``crs`` member)."""
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if georef is None:
        collection["coordinate_system"] = pixel_note
    elif crs == "native":
        epsg = CRS.from_string(georef.crs).to_epsg()
        name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else georef.crs
        collection["crs"] = {"type": "name", "properties": {"name": name}}
    return collection


def changes_geojson(
    verification: Verification,
    mask: ChangeMask,
    georef: Georef | None,
    *,
    pair_name: str = "",
    objects: bool = False,
    crs: CrsMode = "wgs84",
) -> dict[str, Any]:
    """A FeatureCollection of the changed 3×3 cells (and, with ``objects``, of each changed object)."""
    class_mask = mask.class_mask
    height, width = class_mask.shape
    summary = verification.summary
    source = verification.source
    identity = {"pair": pair_name}
    provenance = {
        "mask_provider": source.provider,
        "mask_kind": source.kind,
        "mask_confidence": source.confidence,
        "mask_categorical": source.categorical,
        "mask_detail": source.detail,
        "mask_settings": json.dumps(source.settings, sort_keys=True, default=str),
    }
    centroids = {
        name: [o.centroid for o in find_objects(change_mask(class_mask, name), name, summary.settings)]
        for name in CATEGORIES
        if summary.categorical
    }
    features = cell_features(summary, height, width, centroids, georef, crs, identity, provenance)
    if objects:
        layers = [(name, name) for name in CATEGORIES] if summary.categorical else [("change", None)]
        for label, category in layers:
            for polygon in _object_polygons(class_mask, category, summary.settings.min_object_pixels):
                features.append(object_feature(polygon, label, int(polygon.area), georef, crs, identity, provenance))
    return feature_collection(features, georef, crs)


def write_geojson(collection: dict[str, Any], path: str | Path) -> Path:
    """Write a FeatureCollection as UTF-8 JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(collection, indent=1), encoding="utf-8")
    return path
