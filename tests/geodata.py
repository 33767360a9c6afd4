"""Tiny georeferenced rasters the tests write on the fly (a real projected CRS and transform)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

UTM14N = "EPSG:32614"
ORIGIN = (620000.0, 3350000.0)
PIXEL = 0.5


def write_tif(
    path: Path,
    bands: np.ndarray,
    *,
    crs: str | None = UTM14N,
    origin: tuple[float, float] = ORIGIN,
    pixel: float = PIXEL,
    photometric: str | None = None,
) -> Path:
    """Write a bands-first array as a GeoTIFF (no georeference when ``crs`` is None)."""
    count, height, width = bands.shape
    profile = {"driver": "GTiff", "width": width, "height": height, "count": count, "dtype": bands.dtype.name}
    if crs is not None:
        profile.update(crs=crs, transform=from_origin(origin[0], origin[1], pixel, pixel))
    if photometric:
        profile["photometric"] = photometric
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(bands)
    return path
