"""The change mask of a pair as a Cloud-Optimised GeoTIFF on the pair's own grid.

A COG opens in QGIS and GDAL as it is and streams from object storage; it carries the pair's CRS and affine
transform exactly (no resampling), the class of each pixel (``deltavlm.rules.ChangeClass``: 0 none, 1 road,
2 building, 3 changed with no category) and nodata where the pair holds no data, so nobody reads "no change" where
nothing was seen. A pair without a georeference gets a mask in pixel coordinates (no CRS), like its other exports.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning

from tools.atomic import replacing
from tools.crs import crs_text
from tools.masks import ChangeMask
from tools.naming import file_safe_name
from tools.raster import Georef

MASK_NO_DATA = 255
CLASS_NAMES = "0 none, 1 road, 2 building, 3 changed (category unknown)"


def mask_file_name(pair_name: str, turn: int | None, georef: Georef | None) -> str:
    """``<pair>_turn<N>_change_mask.tif``, ``…_pixel.tif`` for a pair that is not on a map (as the GeoJSON)."""
    turn_part = f"_turn{turn}" if turn is not None else ""
    suffix = "_pixel" if georef is None else ""
    return f"{file_safe_name(pair_name, 'pair')}{turn_part}_change_mask{suffix}.tif"


def write_mask_cog(mask: ChangeMask, georef: Georef | None, path: str | Path) -> Path:
    """Write the class mask as a deflate-compressed COG with the pair's grid and nodata where it has no data."""
    path = Path(path)
    classes = np.ascontiguousarray(mask.class_mask, dtype=np.uint8)
    if mask.valid is not None:
        classes = np.where(mask.valid, classes, MASK_NO_DATA).astype(np.uint8)
    height, width = classes.shape
    profile: dict[str, Any] = {
        "driver": "COG",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "uint8",
        "nodata": MASK_NO_DATA,
        "compress": "deflate",
        "blocksize": 256,
        "overview_resampling": "nearest",
    }
    if georef is not None:
        profile |= {"crs": CRS.from_user_input(crs_text(georef.crs)), "transform": Affine(*georef.transform)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with replacing(path) as temporary, rasterio.open(temporary, "w", **profile) as dst:
            dst.write(classes, 1)
            dst.set_band_description(1, f"change class: {CLASS_NAMES}, {MASK_NO_DATA} no data")
            dst.update_tags(1, mask_provider=mask.source.provider, mask_kind=mask.source.kind)
    return path
