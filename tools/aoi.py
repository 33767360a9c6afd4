"""Areas of interest: the user's own polygons (parcels, fields, plots) as regions of a pair, with zonal figures.

An analyst asks "how much changed inside these parcels?" about a vector file of their own, in any CRS. The file
(GeoJSON, GeoPackage, Shapefile, or a zipped Shapefile) is read through pyogrio, each polygon is reprojected with
pyproj to the pair's CRS and rasterised with rasterio on the pair's grid (a pixel belongs to a polygon when its
centre does, GDAL's rule), and the same rules as the 3×3 grid give each polygon its figures:

* the changed fraction of its valid pixels, and the verdict by the grid's rule (strictly more than the cell
  threshold, 5 %: ``deltavlm.rules.cell_is_changed``, the one implementation);
* its ground area and its changed area in m² (the chat's area rule, ``tools.areas``; geodesic on a lon/lat pair);
* the changed objects whose centroid lies in it (the counting rule's objects and centroids, so no object counts
  twice within one polygon).

Nothing is dropped silently: an invalid polygon is repaired (``make_valid``) and its figures say so; a polygon
partly outside the pair is measured on its inside part and says which share lies outside; a polygon wholly outside
gets no figures and says so. A pair without a georeference cannot be matched to a map file: that is an error.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyogrio.raw
import rasterio
import rasterio.errors
import rasterio.features
import rasterio.windows
import shapely
from affine import Affine
from pydantic import BaseModel, ConfigDict, Field
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity, make_valid

from deltavlm.rules import CATEGORIES, RuleSettings, cell_is_changed, change_mask, find_objects
from tools.areas import ground_area_m2, pixel_area
from tools.crs import to_crs
from tools.geojson import feature_collection, tidy
from tools.masks import ChangeMask, MaskSource
from tools.raster import Georef, InputError

AOI_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip")
LABEL_KEYS = ("name", "label", "id", "parcel", "plot", "field", "title", "fid")
"""Properties that name a polygon, in this order of preference (case-insensitive)."""
AoiStatus = Literal["inside", "partly outside", "outside", "no data"]


class AoiPolygon(BaseModel):
    """One polygon of the user's file, repaired when it had to be, in the file's own CRS."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: int = Field(description="0-based position in the file's layer.")
    label: str = Field(description="Its name property, or '#n' (1-based) when it has none.")
    properties: dict[str, Any]
    geometry: MultiPolygon
    repaired: str | None = Field(None, description="Why it was invalid (GEOS), when it was repaired.")


class AoiLayer(BaseModel):
    """The areas of interest read from one file."""

    source: str = Field(description="The file's name (no folders: answers and exports carry it).")
    layer: str
    crs: str = Field(description="The file's CRS as WKT.")
    polygons: list[AoiPolygon]


class AoiStats(BaseModel):
    """The zonal figures of one polygon on the pair: facts, no prose."""

    index: int
    label: str
    properties: dict[str, Any]
    status: AoiStatus
    repaired: str | None = None
    inside_share: float = Field(description="Share of the polygon's area that lies on the pair (0–1).")
    area_m2: float = Field(description="Ground area of the whole polygon.")
    inside_area_m2: float = Field(description="Ground area of its part on the pair.")
    pixels: int = Field(description="Pixels whose centre lies in the polygon.")
    valid_pixels: int = Field(description="Of those, pixels where both dates hold data.")
    changed_pixels: int
    changed_fraction: float | None = Field(None, description="Changed over valid pixels; None without valid pixels.")
    category_fractions: dict[str, float] = Field(default_factory=dict)
    changed_area_m2: float | None = None
    objects: int = Field(0, description="Changed objects whose centroid lies in the polygon (all change).")
    category_objects: dict[str, int] = Field(default_factory=dict)
    changed: bool | None = Field(None, description="The grid rule on the polygon; None when it has no valid data.")


class AoiSummary(BaseModel):
    """Every polygon's figures, in file order, with the threshold of the rule that judged them."""

    source: str
    layer: str
    polygons: list[AoiStats]
    threshold: float


def read_aoi(path: str | Path) -> AoiLayer:
    """The polygons of a vector file's first layer; a clear error naming the file for anything else."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"area-of-interest file not found: {path}")
    if path.suffix.lower() not in AOI_SUFFIXES:
        raise InputError(
            f"{path.name} is not a vector file I read as areas of interest; use GeoJSON, GeoPackage (.gpkg) or a "
            "Shapefile (.shp with its .dbf/.shx, or all of them in a .zip)"
        )
    try:
        layers = pyogrio.list_layers(path)
        if len(layers) == 0:
            raise InputError(f"{path.name} holds no layer")
        layer = str(layers[0][0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            meta, _, geometries, fields = pyogrio.raw.read(path, layer=layer)
    except InputError:
        raise
    except Exception as exc:  # GDAL's reasons (truncated file, missing .shx, not JSON) name the problem
        raise InputError(f"{path.name} cannot be read as areas of interest: {exc}") from exc
    if meta.get("crs") is None:
        raise InputError(
            f"{path.name} names no CRS; add one (a .prj beside a Shapefile, or save it from QGIS with its CRS)"
        )
    names = list(meta["fields"])
    polygons = []
    for index, wkb in enumerate(geometries):
        properties = {name: _plain(values[index]) for name, values in zip(names, fields, strict=True)}
        polygons.append(_polygon(path.name, index, wkb, properties))
    if not polygons:
        raise InputError(f"{path.name} holds no polygon")
    return AoiLayer(source=path.name, layer=layer, crs=CRS.from_user_input(meta["crs"]).to_wkt(), polygons=polygons)


def _plain(value: Any) -> Any:
    """A field value as JSON-plain data (numpy scalars and dates become Python values or text)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, np.generic):
        value = value.item()
        return None if isinstance(value, float) and np.isnan(value) else value
    return str(value)


def _polygon(source: str, index: int, wkb: bytes | None, properties: dict[str, Any]) -> AoiPolygon:
    geometry = shapely.from_wkb(wkb) if wkb is not None else Polygon()
    where = f"{source} feature {index + 1}"
    if not geometry.is_empty and geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise InputError(f"{where} is a {geometry.geom_type}; areas of interest must be polygons")
    repaired = None
    if not geometry.is_valid:
        repaired = explain_validity(geometry)
        geometry = make_valid(geometry)
    parts = [p for p in shapely.get_parts(geometry) if p.geom_type in ("Polygon", "MultiPolygon")]
    flat = [q for p in parts for q in shapely.get_parts(p)]
    return AoiPolygon(
        index=index,
        label=_label(properties, index),
        properties=properties,
        geometry=MultiPolygon(flat),
        repaired=repaired,
    )


def _label(properties: dict[str, Any], index: int) -> str:
    lowered = {k.lower(): v for k, v in properties.items()}
    for key in LABEL_KEYS:
        value = lowered.get(key)
        if value not in (None, ""):
            return str(value)
    return f"#{index + 1}"


def to_pair_crs(layer: AoiLayer, georef: Georef) -> list[BaseGeometry]:
    """Each polygon in the pair's CRS (pyproj, lon/lat axis order kept as x/y)."""
    transformer = Transformer.from_crs(to_crs(layer.crs), georef.crs, always_xy=True)
    return [
        shapely.transform(p.geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
        for p in layer.polygons
    ]


def aoi_figures(
    layer: AoiLayer,
    mask: ChangeMask,
    georef: Georef | None,
    settings: RuleSettings | None = None,
    *,
    gsd_m: float | None = None,
) -> AoiSummary:
    """Zonal figures of every polygon of ``layer`` on the pair whose change mask is ``mask``."""
    settings = settings or RuleSettings()
    if georef is None:
        raise InputError(
            f"the pair has no georeference, so {layer.source} cannot be placed on it; give the pair bounds and a "
            "CRS (--bounds W,S,E,N --crs EPSG:…) or a world file, then ask again"
        )
    height, width = mask.class_mask.shape
    transform = Affine(*georef.transform)
    footprint = shapely.affinity.affine_transform(
        box(0, 0, width, height), [transform.a, transform.b, transform.d, transform.e, transform.xoff, transform.yoff]
    )
    _, row_m2 = pixel_area(georef, height, gsd_m)
    valid = np.ones((height, width), bool) if mask.valid is None else mask.valid
    changed = (mask.class_mask > 0) & valid
    layers = list(CATEGORIES) if mask.source.categorical else ["change"]
    centroids = {
        name: [o.centroid for o in find_objects(change_mask(mask.class_mask, _category(name)), name, settings)]
        for name in layers
    }
    stats = []
    for polygon, geometry in zip(layer.polygons, to_pair_crs(layer, georef), strict=True):
        stats.append(
            _stats(polygon, geometry, footprint, transform, mask, valid, changed, row_m2, centroids, settings, georef)
        )
    return _summary(layer, stats, settings)


def _summary(layer: AoiLayer, stats: list[AoiStats], settings: RuleSettings) -> AoiSummary:
    return AoiSummary(
        source=layer.source,
        layer=layer.layer,
        polygons=stats,
        threshold=settings.cell_threshold,
    )


def _category(layer: str) -> str | None:
    return None if layer == "change" else layer


def _stats(
    polygon: AoiPolygon,
    geometry: BaseGeometry,
    footprint: BaseGeometry,
    transform: Affine,
    mask: ChangeMask,
    valid: np.ndarray,
    changed: np.ndarray,
    row_m2: np.ndarray | None,
    centroids: dict[str, list[tuple[float, float]]],
    settings: RuleSettings,
    georef: Georef,
) -> AoiStats:
    height, width = mask.class_mask.shape
    area = ground_area_m2(geometry, georef)
    inside_geometry = geometry.intersection(footprint) if not geometry.is_empty else geometry
    inside_area = ground_area_m2(inside_geometry, georef)
    inside = np.zeros((height, width), bool)
    if not inside_geometry.is_empty:
        inside = rasterio.features.rasterize(
            [(geometry, 1)], out_shape=(height, width), transform=transform, fill=0, dtype="uint8"
        ).astype(bool)
    pixels = int(inside.sum())
    valid_in = inside & valid
    valid_pixels = int(valid_in.sum())
    changed_in = changed & inside
    changed_pixels = int(changed_in.sum())
    share = inside_area / area if area > 0 else 0.0
    if pixels == 0:
        status: AoiStatus = "outside"
    elif valid_pixels == 0:
        status = "no data"
    else:
        status = "inside" if share >= 0.999 else "partly outside"
    figures = AoiStats(
        index=polygon.index,
        label=polygon.label,
        properties=polygon.properties,
        status=status,
        repaired=polygon.repaired,
        inside_share=round(min(share, 1.0), 6),
        area_m2=area,
        inside_area_m2=inside_area,
        pixels=pixels,
        valid_pixels=valid_pixels,
        changed_pixels=changed_pixels,
    )
    if valid_pixels == 0:
        return figures
    figures.changed_fraction = changed_pixels / valid_pixels
    figures.changed = cell_is_changed(changed_pixels, valid_pixels, settings.cell_threshold)
    if row_m2 is not None:
        figures.changed_area_m2 = float(changed_in.sum(axis=1) @ row_m2)
    for category in CATEGORIES if "change" not in centroids else []:
        category_pixels = int((change_mask(mask.class_mask, category) & valid_in).sum())
        figures.category_fractions[category] = category_pixels / valid_pixels
    for name, points in centroids.items():
        count = sum(1 for x, y in points if inside[min(int(y), height - 1), min(int(x), width - 1)])
        if name != "change":
            figures.category_objects[name] = count
        figures.objects += count
    return figures


def aoi_figures_on_raster(
    layer: AoiLayer, mask_path: str | Path, source: MaskSource, settings: RuleSettings | None = None
) -> AoiSummary:
    """The same figures on a change-mask GeoTIFF too large to hold (a scene's ``change_mask.tif``): each polygon
    reads only the window around it, so memory follows the polygon, not the scene. Class indices, nodata where a
    date had no data (``tools.scene``). An object cut by the window's edge is measured on its part in the window.
    """
    settings = settings or RuleSettings()
    with rasterio.open(mask_path) as ds:
        if ds.crs is None:
            raise InputError(f"{Path(mask_path).name} has no CRS, so {layer.source} cannot be placed on it")
        grid = Georef(crs=ds.crs, transform=tuple(ds.transform)[:6])
        scene = rasterio.windows.Window(0, 0, ds.width, ds.height)
        stats = []
        for polygon, geometry in zip(layer.polygons, to_pair_crs(layer, grid), strict=True):
            one = layer.model_copy(update={"polygons": [polygon]})
            window = None
            if not geometry.is_empty:
                around = rasterio.windows.from_bounds(*geometry.bounds, transform=ds.transform)
                col0, row0 = math.floor(around.col_off) - 1, math.floor(around.row_off) - 1  # a pixel of margin
                col1 = math.ceil(around.col_off + around.width) + 1
                row1 = math.ceil(around.row_off + around.height) + 1
                around = rasterio.windows.Window(col0, row0, col1 - col0, row1 - row0)
                try:
                    window = around.intersection(scene)
                except rasterio.errors.WindowError:  # no overlap: the polygon lies outside the scene
                    window = None
            if window is None or window.width < 1 or window.height < 1:
                area = ground_area_m2(geometry, grid)
                stats.append(
                    AoiStats(
                        index=polygon.index, label=polygon.label, properties=polygon.properties, status="outside",
                        repaired=polygon.repaired, inside_share=0.0, area_m2=area, inside_area_m2=0.0, pixels=0,
                        valid_pixels=0, changed_pixels=0,
                    )
                )  # fmt: skip
                continue
            data = ds.read(1, window=window)
            valid = data != ds.nodata if ds.nodata is not None else None
            classes = np.where(valid, data, 0).astype(np.uint8) if valid is not None else data.astype(np.uint8)
            transform = rasterio.windows.transform(window, ds.transform)
            local = Georef(crs=grid.crs, transform=tuple(transform)[:6])
            mask = ChangeMask(class_mask=classes, source=source, valid=valid)
            stats.append(aoi_figures(one, mask, local, settings).polygons[0])
    return _summary(layer, stats, settings)


def aoi_collection(
    layer: AoiLayer, summary: AoiSummary, georef: Georef, crs: Literal["wgs84", "native"] = "wgs84"
) -> dict[str, Any]:
    """The AOI layer as a FeatureCollection with the figures added as columns (the user's own columns first).

    Added names that a user's column already holds are prefixed ``ca_`` so that nothing of theirs is overwritten.
    """
    features = []
    pair_crs = georef.crs
    to_output = Transformer.from_crs(pair_crs, "EPSG:4326", always_xy=True) if crs == "wgs84" else None
    for polygon, geometry, stats in zip(layer.polygons, to_pair_crs(layer, georef), summary.polygons, strict=True):
        added = {
            "feature": "aoi",
            "aoi_label": stats.label,
            "status": stats.status,
            "repaired": stats.repaired,
            "inside_share": stats.inside_share,
            "area_m2": round(stats.area_m2, 2),
            "area_ha": round(stats.area_m2 / 10_000, 6),
            "changed_fraction": None if stats.changed_fraction is None else round(stats.changed_fraction, 6),
            "changed_area_m2": None if stats.changed_area_m2 is None else round(stats.changed_area_m2, 2),
            "changed_area_ha": None if stats.changed_area_m2 is None else round(stats.changed_area_m2 / 10_000, 6),
            "objects": stats.objects,
            **{f"{name}_objects": count for name, count in stats.category_objects.items()},
            **{f"{name}_fraction": round(value, 6) for name, value in stats.category_fractions.items()},
            "changed": stats.changed,
        }
        properties = dict(polygon.properties)
        for key, value in added.items():
            properties[f"ca_{key}" if key in polygon.properties else key] = value
        if to_output is not None:
            geometry = shapely.transform(geometry, lambda xy: np.column_stack(to_output.transform(xy[:, 0], xy[:, 1])))
        features.append(
            {"type": "Feature", "geometry": shapely.geometry.mapping(tidy(geometry)), "properties": properties}
        )
    provenance = {"areas_of_interest": layer.source, "layer": layer.layer, "cell_threshold": summary.threshold}
    return feature_collection(features, georef, crs, provenance=provenance)
