"""Scene outputs: the merged mask as a GeoTIFF and the scene's GeoJSON."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.features
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window
from shapely.geometry import box

from deltavlm.rules import (
    CATEGORIES,
)
from tools.areas import pixel_areas_at_rows
from tools.atomic import replacing
from tools.crs import crs_text
from tools.geojson import cell_features, cell_of, feature_collection, object_feature, to_map
from tools.raster import Georef
from tools.scene.disk_mask import NO_DATA, DiskMask
from tools.scene.inputs import GDAL_CACHE_MB
from tools.scene.merge import MaskAnalysis

# ----------------------------------------------------------------------------------------------- outputs


SCENE_PIXEL_COORDINATES = "pixel (x = column, y = row, origin at the scene's top-left corner)"


def write_mask_geotiff(mask: DiskMask, path: str | Path, georef: Georef | None) -> Path:
    """The merged class mask as a tiled, compressed GeoTIFF on t1's grid (class indices 0–3; nodata 255 where a
    date holds no data)."""
    path = Path(path)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": mask.width,
        "height": mask.height,
        "count": 1,
        "dtype": "uint8",
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "nodata": NO_DATA,
    }
    if georef is not None:
        profile |= {"crs": CRS.from_user_input(crs_text(georef.crs)), "transform": Affine(*georef.transform)}
    rows = 1024
    with warnings.catch_warnings(), rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with replacing(path) as temporary, rasterio.open(temporary, "w", **profile) as dst:
            dst.set_band_description(
                1, f"change class: 0 none, 1 road, 2 building, 3 changed (category unknown), {NO_DATA} no data"
            )
            for row0 in range(0, mask.height, rows):
                row1 = min(mask.height, row0 + rows)
                dst.write(mask.read_rows(row0, row1), 1, window=Window(0, row0, mask.width, row1 - row0))
    return path


def scene_geojson(
    *,
    analysis: MaskAnalysis,
    tiles: Sequence[dict[str, Any]],
    georef: Georef | None,
    scene_name: str,
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """One FeatureCollection in the scene's own CRS: changed 3×3 cells, changed tiles, and every counted object."""
    summary = analysis.summary
    identity = {"scene": scene_name}
    layers = list(CATEGORIES) if summary.categorical else ["change"]
    centroids = {name: [o.centroid for o in analysis.objects[name]] for name in layers}
    features = cell_features(
        summary, analysis.height, analysis.width, centroids, georef, "native", identity, provenance
    )
    for tile in tiles:
        r0, c0, h, w = tile["window"]
        props = {**identity, "feature": "tile", **{k: v for k, v in tile.items() if k != "window"}, **provenance}
        features.append(
            {"type": "Feature", "geometry": to_map(box(c0, r0, c0 + w, r0 + h), georef, "native"), "properties": props}
        )
    for name in layers:
        for obj in analysis.objects[name]:
            if obj.geometry is not None:
                area_m2 = None
                if georef is not None:  # the chat's rule at the object's centroid row (pixel areas vary by row only)
                    area_m2 = obj.pixels * float(pixel_areas_at_rows(georef, np.array([obj.centroid[1]]))[0][0])
                cell = cell_of(obj.centroid, analysis.height, analysis.width)
                features.append(
                    object_feature(
                        obj.geometry,
                        name,
                        obj.pixels,
                        georef,
                        "native",
                        identity,
                        provenance,
                        area_m2=area_m2,
                        cell=cell,
                    )
                )
    return feature_collection(features, georef, "native", SCENE_PIXEL_COORDINATES)
