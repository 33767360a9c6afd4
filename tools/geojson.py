"""GeoJSON of changed grid cells and changed objects, placed through the raster's affine transform.

CRS policy: RFC 7946 GeoJSON is WGS84 longitude/latitude, so georeferenced pairs are reprojected to
EPSG:4326 by default (QGIS, geojson.io and web maps open them as they are). ``crs="native"`` keeps
the image's own CRS and names it in the legacy ``crs`` member (GeoJSON 2008), which GDAL and QGIS
honour; use it for exact areas in a projected CRS. A pair with no georeference cannot be placed on a
map, and its export does not pretend: it is in pixel units, drawn upright (y counts rows up from the
image's bottom edge, so GIS software shows it the right way up), marked in its file name
(``…_pixel.geojson``), its layer name and its ``changeagent`` member.

Hygiene: run-level provenance (pair, mask, rules, coordinates) is written once, as the collection's
``changeagent`` foreign member; features carry their own facts and the pair they belong to (batch layers
mix pairs); no absolute path is written; every polygon is made valid and wound right-handed (RFC 7946 §3.1.6).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import rasterio.features
import shapely
from pydantic import BaseModel, ConfigDict, Field
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from shapely.affinity import affine_transform
from shapely.geometry import MultiPolygon, Polygon, box, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient
from shapely.validation import make_valid

from deltavlm.rules import CATEGORIES, CELL_NAMES, ChangeSummary, change_mask, find_objects, grid_bounds
from tools.areas import pixel_area
from tools.atomic import write_atomic
from tools.crs import crs_text
from tools.masks import ChangeMask
from tools.naming import file_safe_name
from tools.raster import Georef
from tools.verify import Verification

CrsMode = Literal["wgs84", "native"]
PIXEL_COORDINATES = (
    "pixel (x = column from the left edge, y = rows up from the bottom edge, so the image is upright; "
    "not a place on a map)"
)
PROVENANCE_MEMBER = "changeagent"
_DIRECTORIES = re.compile(r"(?:(?<![A-Za-z])[A-Za-z]:)?[\\/](?:[^\\/\s'\",;:]+[\\/])+")


def _polygonal(geom: BaseGeometry) -> list[Polygon]:
    """The polygons inside any geometry (``make_valid`` may return a collection with stray lines or points)."""
    if isinstance(geom, Polygon):
        return [geom] if not geom.is_empty else []
    if geom.geom_type in ("MultiPolygon", "GeometryCollection"):
        return [p for part in shapely.get_parts(geom) for p in _polygonal(part)]
    return []


def tidy(geom: BaseGeometry) -> MultiPolygon:
    """Valid (``make_valid``), right-hand wound (exteriors counter-clockwise, holes clockwise: RFC 7946), and
    always a MultiPolygon: one geometry type per layer, so GDAL reports it and a Shapefile takes it as it is."""
    if not geom.is_valid:
        geom = make_valid(geom)
    return MultiPolygon([orient(p, sign=1.0) for p in _polygonal(geom)])


def to_map(geom: BaseGeometry, georef: Georef | None, crs: CrsMode, image_height: int | None = None) -> dict[str, Any]:
    """Pixel geometry → the output coordinates as a tidy GeoJSON geometry dict.

    Without a georeference the geometry stays in pixels; given ``image_height`` it is flipped upright
    (y = rows up from the bottom edge), the convention of pixel exports.
    """
    if georef is None:
        placed = geom if image_height is None else affine_transform(geom, [1, 0, 0, -1, 0, image_height])
        return mapping(tidy(placed))
    a, b, c, d, e, f = georef.transform
    projected = affine_transform(geom, [a, b, d, e, c, f])
    if crs == "wgs84":
        projected = shape(
            transform_geom(CRS.from_user_input(crs_text(georef.crs)), "EPSG:4326", mapping(projected), precision=9)
        )
    return mapping(tidy(projected))


def portable(value: Any) -> Any:
    """Settings as a file may show them: any path (an upload on the server, a model file) by its name only."""
    if isinstance(value, str):
        return _DIRECTORIES.sub("", value)
    if isinstance(value, Mapping):
        return {str(k): portable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [portable(v) for v in value]
    return value


def geojson_file_name(pair_name: str, turn: int | None, georef: Georef | None) -> str:
    """``<pair>_turn<N>_changes.geojson``; pixel exports end ``_pixel.geojson`` so nobody mistakes them for a map."""
    turn_part = f"_turn{turn}" if turn is not None else ""
    suffix = "_pixel" if georef is None else ""
    return f"{file_safe_name(pair_name, 'pair')}{turn_part}_changes{suffix}.geojson"


class ObjectShape(BaseModel):
    """One changed object (8-connected pixels) as exact pixel-edge polygons, with its size and where it sits."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    geometry: MultiPolygon = Field(description="Pixel coordinates (x = column, y = row from the top).")
    pixels: int
    centroid: tuple[float, float] = Field(description="x, y in pixels: the mean of the object's pixel indices.")
    area_m2: float | None = Field(None, description="Sum of its pixels' ground areas (tools.areas), when known.")


def changed_objects(
    class_mask: np.ndarray, category: str | None, min_pixels: int, row_m2: np.ndarray | None = None
) -> list[ObjectShape]:
    """Each 8-connected object of ``category`` (all change for None) of at least ``min_pixels`` pixels.

    ``row_m2`` (one pixel's ground area per row, tools.areas) gives each object the area the chat reports.
    """
    selected = change_mask(class_mask, category).astype(np.uint8)
    count, labels = cv2.connectedComponents(selected, connectivity=8)
    if count <= 1:
        return []
    flat = labels.ravel()
    pixels = np.bincount(flat, minlength=count)
    rows, cols = np.indices(labels.shape)
    row_sum = np.bincount(flat, weights=rows.ravel(), minlength=count)
    col_sum = np.bincount(flat, weights=cols.ravel(), minlength=count)
    m2 = None
    if row_m2 is not None:
        m2 = np.bincount(flat, weights=np.broadcast_to(row_m2[:, None], labels.shape).ravel(), minlength=count)
    parts: dict[int, list[Polygon]] = {}
    kept = pixels >= min_pixels
    for geom, value in rasterio.features.shapes(labels.astype(np.int32), mask=selected.astype(bool), connectivity=8):
        if kept[int(value)]:
            parts.setdefault(int(value), []).append(shape(geom))
    return [
        ObjectShape(
            geometry=MultiPolygon(polygons),
            pixels=int(pixels[label]),
            centroid=(float(col_sum[label] / pixels[label]), float(row_sum[label] / pixels[label])),
            area_m2=None if m2 is None else float(m2[label]),
        )
        for label, polygons in sorted(parts.items())
    ]


def cell_of(point: tuple[float, float], height: int, width: int) -> str:
    """The 3×3 cell holding a pixel point (x, y): the centroid rule that counts objects per cell."""
    x, y = point
    for cell, (r0, r1, c0, c1) in grid_bounds(height, width).items():
        if c0 <= x < c1 and r0 <= y < r1:
            return cell
    raise ValueError(f"point {point} is outside the {width}×{height} image")


def cell_features(
    summary: ChangeSummary,
    height: int,
    width: int,
    centroids: Mapping[str, Sequence[tuple[float, float]]],
    georef: Georef | None,
    crs: CrsMode,
    identity: Mapping[str, Any],
    provenance: Mapping[str, Any] | None = None,
    *,
    upright: bool = False,
) -> list[dict[str, Any]]:
    """One feature per changed 3×3 cell: fractions, whether each category changed, objects counted per layer.

    ``centroids`` maps each counted layer (the categories, or ``change`` for a mask without categories) to
    its objects' centroids; an object belongs to the cell that holds its centroid. ``provenance`` repeats
    run-level facts on every feature (scene layers still do); pair exports keep it in the collection instead.
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
        props.update(provenance or {})
        geometry = to_map(box(c0, r0, c1, r1), georef, crs, height if upright else None)
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    return features


def object_feature(
    geometry: BaseGeometry,
    label: str,
    area_px: int,
    georef: Georef | None,
    crs: CrsMode,
    identity: Mapping[str, Any],
    provenance: Mapping[str, Any] | None = None,
    *,
    image_height: int | None = None,
    area_m2: float | None = None,
    cell: str | None = None,
) -> dict[str, Any]:
    """One changed object: its category, the cell holding its centroid, its area in pixels and, when the pixel
    size is known, in m² and ha (the chat's rule, tools.areas: geodesic on an EPSG:4326 pair).

    ``image_height`` draws a pixel-coordinate object upright (see :func:`to_map`).
    """
    props: dict[str, Any] = {**identity, "feature": "object", "category": label}
    if cell is not None:
        props |= {"cell": cell, "cell_name": CELL_NAMES[cell]}
    props["area_px"] = area_px
    if area_m2 is not None:
        props |= {"area_m2": round(area_m2, 2), "area_ha": round(area_m2 / 10_000, 6)}
    props.update(provenance or {})
    return {"type": "Feature", "geometry": to_map(geometry, georef, crs, image_height), "properties": props}


def feature_collection(
    features: list[dict[str, Any]],
    georef: Georef | None,
    crs: CrsMode,
    pixel_note: str = PIXEL_COORDINATES,
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The collection, saying which coordinates it is in: pixels, or a native CRS (legacy ``crs`` member).

    ``provenance`` becomes the ``changeagent`` foreign member (RFC 7946 §6.1), written once for the whole run.
    """
    collection: dict[str, Any] = {"type": "FeatureCollection"}
    if georef is None:
        collection["coordinate_system"] = pixel_note
    elif crs == "native":
        epsg = georef.crs.to_epsg()
        name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else crs_text(georef.crs)
        collection["crs"] = {"type": "name", "properties": {"name": name}}
    if provenance is not None:
        collection[PROVENANCE_MEMBER] = portable(dict(provenance))
    collection["features"] = features
    return collection


def coordinates_label(georef: Georef | None, crs: CrsMode) -> str:
    """Which coordinates an export is in, in words (written into the file and said in answers)."""
    if georef is None:
        return PIXEL_COORDINATES
    if crs == "native":
        epsg = georef.crs.to_epsg()
        return f"EPSG:{epsg}" if epsg else georef.crs.to_wkt()
    return "EPSG:4326 (longitude, latitude; RFC 7946)"


def changes_geojson(
    verification: Verification,
    mask: ChangeMask,
    georef: Georef | None,
    *,
    pair_name: str = "",
    objects: bool = False,
    crs: CrsMode = "wgs84",
    turn: int | None = None,
    gsd_m: float | None = None,
) -> dict[str, Any]:
    """A FeatureCollection of the changed 3×3 cells (and, with ``objects``, of each changed object).

    Objects' areas follow the chat's rule (the georeference, else ``gsd_m``). An empty result is still a
    FeatureCollection (with no features), so a download never fails.
    """
    class_mask = mask.class_mask
    height, width = class_mask.shape
    summary = verification.summary
    source = verification.source
    identity = {"pair": pair_name}
    provenance: dict[str, Any] = {
        "pair": pair_name,
        **({"turn": turn} if turn is not None else {}),
        "coordinates": coordinates_label(georef, crs),
        "image_size": {"width": width, "height": height},
        "mask": {
            "provider": source.provider,
            "kind": source.kind,
            "confidence": source.confidence,
            "categorical": source.categorical,
            "made_by": source.made_by.model_dump(mode="json", exclude_none=True),
            "settings": source.settings,
        },
        "rules": {
            "cell_threshold": summary.settings.cell_threshold,
            "min_object_pixels": summary.settings.min_object_pixels,
        },
    }
    centroids = {
        name: [o.centroid for o in find_objects(change_mask(class_mask, name), name, summary.settings)]
        for name in CATEGORIES
        if summary.categorical
    }
    features = cell_features(summary, height, width, centroids, georef, crs, identity, upright=True)
    if objects:
        _, row_m2 = pixel_area(georef, height, gsd_m)
        layers = [(name, name) for name in CATEGORIES] if summary.categorical else [("change", None)]
        for label, category in layers:
            for obj in changed_objects(class_mask, category, summary.settings.min_object_pixels, row_m2):
                features.append(
                    object_feature(
                        obj.geometry,
                        label,
                        obj.pixels,
                        georef,
                        crs,
                        identity,
                        image_height=height,
                        area_m2=obj.area_m2,
                        cell=cell_of(obj.centroid, height, width),
                    )
                )
    collection = feature_collection(features, georef, crs, provenance=provenance)
    if georef is None:  # GDAL and QGIS show this as the layer's name: nobody takes it for a map
        collection["name"] = f"{pair_name or 'changes'} (pixel coordinates, not on a map)"
    return collection


class ExportContents(BaseModel):
    """What a written GeoJSON holds: the facts an answer states about an export."""

    cells: int
    objects: int
    pixel_coordinates: bool = Field(description="True when the pair has no georeference (drawn upright, not on a map).")


def export_contents(collection: Mapping[str, Any]) -> ExportContents:
    """Count the changed cells and objects of a collection, and say whether it is in pixel coordinates."""
    features = collection.get("features") or []
    return ExportContents(
        cells=sum(1 for f in features if f["properties"].get("feature") == "cell"),
        objects=sum(1 for f in features if f["properties"].get("feature") == "object"),
        pixel_coordinates="coordinate_system" in collection,
    )


def write_geojson(collection: dict[str, Any], path: str | Path) -> Path:
    """Write a FeatureCollection as UTF-8 JSON, whole or not at all (an earlier export survives a failed one)."""
    return write_atomic(path, json.dumps(collection, indent=1))
