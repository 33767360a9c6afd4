"""Three parcels on OSCD Bercy (one inside the pair, one straddling its east edge, one outside) and their figures
computed independently of ``tools.aoi``: rasterio rasterises each polygon on the pair's grid, shapely clips it to the
pair's footprint and pyproj measures areas on the WGS84 ellipsoid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio.raw
import rasterio.features
import shapely
from affine import Affine
from pyproj import Geod, Transformer
from shapely.geometry import box

WGS84 = Geod(ellps="WGS84")
PARCELS = {  # pixel boxes (col0, row0, col1, row1) on the 360×395 Bercy grid
    "inside": (80, 260, 150, 330),  # over the label's densest change: about 14 % of it changed
    "edge": (300, 100, 420, 200),  # 60 of its 120 columns lie east of the pair
    "outside": (500, 0, 600, 100),
}


def lonlat(georef, pixel_box) -> shapely.Geometry:
    t = Affine(*georef.transform)
    return shapely.affinity.affine_transform(box(*pixel_box), [t.a, t.b, t.d, t.e, t.xoff, t.yoff])


def write_parcels(path: Path, georef, crs: str) -> dict[str, shapely.Geometry]:
    """The parcels written to ``path`` (format by suffix) in ``crs`` (reprojected with pyproj), with a name and a
    plot number; returns their lon/lat outlines."""
    to_crs = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    outlines = {name: lonlat(georef, b) for name, b in PARCELS.items()}
    projected = [
        shapely.transform(g, lambda xy: np.column_stack(to_crs.transform(xy[:, 0], xy[:, 1])))
        for g in outlines.values()
    ]
    pyogrio.raw.write(
        str(path),
        np.array([shapely.to_wkb(g) for g in projected], dtype=object),
        [np.array(list(outlines), dtype=object), np.array([11, 12, 13])],
        ["name", "plot"],
        layer="parcels",
        geometry_type="Polygon",
        crs=crs,
    )
    return outlines


def reference(outline, pair, class_mask) -> dict:
    """What a parcel's figures must be."""
    georef = pair.georef
    height, width = pair.shape
    t = Affine(*georef.transform)
    inside = rasterio.features.rasterize([(outline, 1)], out_shape=(height, width), transform=t).astype(bool)
    changed = (class_mask > 0) & inside
    footprint = lonlat(georef, (0, 0, width, height))
    row_m2 = []
    for row in range(height):
        ring = [(t.c + t.a * x, t.f + t.e * y) for x, y in ((0, row), (1, row), (1, row + 1), (0, row + 1))]
        row_m2.append(abs(WGS84.polygon_area_perimeter(*zip(*ring, strict=True))[0]))
    area = abs(WGS84.geometry_area_perimeter(outline)[0])
    clipped = outline.intersection(footprint)
    fraction = changed.sum() / inside.sum() if inside.any() else None
    return {
        "pixels": int(inside.sum()),
        "changed_pixels": int(changed.sum()),
        "changed_fraction": fraction,
        "area_m2": area,
        "inside_share": (abs(WGS84.geometry_area_perimeter(clipped)[0]) / area) if not clipped.is_empty else 0.0,
        "changed_area_m2": float(changed.sum(axis=1) @ np.array(row_m2)),
        "changed": None if fraction is None else bool(fraction > 0.05),
    }


def check_figures(got, want: dict, name: str) -> None:
    """tools.aoi's AoiStats against the reference."""
    import pytest

    assert got.pixels == want["pixels"] and got.changed_pixels == want["changed_pixels"], name
    assert got.area_m2 == pytest.approx(want["area_m2"], rel=1e-4), name
    assert got.inside_share == pytest.approx(want["inside_share"], abs=2e-3), name
    if want["changed_fraction"] is None:
        assert got.changed_fraction is None and got.changed is None, name
    else:
        assert got.changed_fraction == pytest.approx(want["changed_fraction"]), name
        assert got.changed_area_m2 == pytest.approx(want["changed_area_m2"], rel=1e-6), name
        assert got.changed is want["changed"], name
