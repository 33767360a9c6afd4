"""GeoJSON export through a real CRS and back, and the overlay picture."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio.features
from rasterio.warp import transform_geom
from shapely.geometry import shape

from deltavlm.rules import ChangeClass
from tests.geodata import ORIGIN, PIXEL, UTM14N, write_tif
from tools.geojson import PIXEL_COORDINATES, changes_geojson, write_geojson
from tools.masks import ChangeMask, MaskSource
from tools.overlay import MIN_SIDE, render_comparison, render_overlay, save_png
from tools.pairs import load_pair, pair_from_arrays
from tools.verify import verify

SIZE = 90


def _mask() -> ChangeMask:
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[5:25, 5:25] = ChangeClass.BUILDING  # 400 px in TL
    m[5:25, 40:50] = ChangeClass.BUILDING  # 200 px in TC
    m[70:73, :] = ChangeClass.ROAD  # a road across the bottom row of cells
    source = MaskSource(provider="user", kind="user", categorical=True, confidence=1.0)
    return ChangeMask(class_mask=m, source=source)


@pytest.fixture
def geo_pair(tmp_path):
    bands = np.zeros((3, SIZE, SIZE), np.uint8)
    return load_pair(write_tif(tmp_path / "a.tif", bands), write_tif(tmp_path / "b.tif", bands))


def test_native_crs_cells_land_on_the_right_ground(geo_pair, tmp_path):
    mask = _mask()
    fc = changes_geojson(verify(mask), mask, geo_pair.georef, crs="native", pair_name="p1")
    path = write_geojson(fc, tmp_path / "c.geojson")
    loaded = json.loads(path.read_text())
    assert loaded["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32614"
    cells = {f["properties"]["cell"]: f for f in loaded["features"]}
    assert sorted(cells) == ["BC", "BL", "BR", "TC", "TL"]
    tl = shape(cells["TL"]["geometry"])
    x0, y0 = ORIGIN
    assert tl.bounds == pytest.approx((x0, y0 - 30 * PIXEL, x0 + 30 * PIXEL, y0))
    assert tl.area == pytest.approx((30 * PIXEL) ** 2)
    props = cells["TL"]["properties"]
    assert props["building_count"] == 1 and props["road_count"] == 0
    assert props["building_fraction"] == pytest.approx(400 / 900)
    assert props["mask_provider"] == "user" and props["pair"] == "p1"
    assert cells["TC"]["properties"]["building_count"] == 1


def test_wgs84_default_round_trips_through_rasterio(geo_pair):
    mask = _mask()
    fc = changes_geojson(verify(mask), mask, geo_pair.georef, objects=True)
    assert "crs" not in fc  # RFC 7946: WGS84 needs no crs member
    tl = next(f for f in fc["features"] if f["properties"].get("cell") == "TL")
    lon, lat = shape(tl["geometry"]).centroid.coords[0]
    assert -97.9 < lon < -97.6 and 30.1 < lat < 30.4  # UTM 14N (620 km E, 3350 km N) is near Austin, Texas
    back = shape(transform_geom("EPSG:4326", UTM14N, tl["geometry"]))
    assert back.area == pytest.approx((30 * PIXEL) ** 2, rel=1e-4)
    objects = [f for f in fc["features"] if f["properties"]["feature"] == "object"]
    assert sorted(f["properties"]["category"] for f in objects) == ["building", "building", "road"]
    areas = sorted(f["properties"]["area_m2"] for f in objects)
    assert areas == pytest.approx(sorted([400 * PIXEL**2, 200 * PIXEL**2, 270 * PIXEL**2]))


def test_object_polygons_rasterise_back_to_the_mask(geo_pair):
    mask = _mask()
    fc = changes_geojson(verify(mask), mask, geo_pair.georef, objects=True, crs="native")
    from rasterio.transform import Affine

    t = Affine(*geo_pair.georef.transform)
    shapes = [(f["geometry"], 1) for f in fc["features"] if f["properties"]["feature"] == "object"]
    burned = rasterio.features.rasterize(shapes, out_shape=(SIZE, SIZE), transform=t)
    np.testing.assert_array_equal(burned.astype(bool), mask.class_mask > 0)


def test_pixel_coordinates_without_georeference():
    mask = _mask()
    fc = changes_geojson(verify(mask), mask, None)
    assert fc["coordinate_system"] == PIXEL_COORDINATES
    tl = next(f for f in fc["features"] if f["properties"]["cell"] == "TL")
    assert shape(tl["geometry"]).bounds == (0, 0, 30, 30)


def test_category_blind_mask_exports_cells_without_counts():
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[0:30, 0:30] = ChangeClass.CHANGE
    mask = ChangeMask(
        class_mask=m, source=MaskSource(provider="classical", kind="classical", categorical=False, confidence=0.3)
    )
    fc = changes_geojson(verify(mask), mask, None, objects=True)
    cell = fc["features"][0]["properties"]
    assert cell["cell"] == "TL" and "building_count" not in cell and cell["mask_confidence"] == 0.3
    assert fc["features"][1]["properties"]["category"] == "change"


def test_overlay_and_comparison_pictures(tmp_path):
    pair = pair_from_arrays(np.full((SIZE, SIZE, 3), 90, np.uint8), np.full((SIZE, SIZE, 3), 90, np.uint8))
    mask = _mask()
    picture = render_overlay(pair, mask, verify(mask))
    assert picture.dtype == np.uint8 and picture.shape[1] == MIN_SIDE and picture.shape[0] > MIN_SIDE
    scale = MIN_SIDE / SIZE
    building_px = picture[int(15 * scale), int(15 * scale)]
    assert building_px[0] > building_px[1] + 40  # tinted red
    unchanged_px = picture[int(45 * scale), int(75 * scale)]
    assert tuple(unchanged_px) == (90, 90, 90)
    assert save_png(picture, tmp_path / "o.png").stat().st_size > 1000
    comparison = render_comparison(pair)
    assert comparison.shape[1] == 2 * MIN_SIDE + 6
