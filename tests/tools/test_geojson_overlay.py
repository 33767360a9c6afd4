"""GeoJSON export through a real CRS and back (every file checked by ``tests.geojson_check``), and the overlay."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import rasterio.features
from rasterio.warp import transform_geom
from shapely.geometry import shape

from agent.answering import describe_export
from deltavlm.rules import ChangeClass
from tests.geodata import ORIGIN, PIXEL, UTM14N, write_tif
from tests.geojson_check import validate_geojson
from tools.geojson import (
    PIXEL_COORDINATES,
    changes_geojson,
    geojson_file_name,
    portable,
    to_map,
    write_geojson,
)
from tools.masks import ChangeMask, MaskSource, UserMaskProvider
from tools.overlay import (
    FINE_GRID_LINE,
    GRID_LINE,
    MIN_SIDE,
    draw_changes,
    fine_grid_shares,
    legend_entries,
    render_comparison,
    render_overlay,
    save_png,
)
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
    loaded = validate_geojson(path, geo_pair.georef, SIZE, SIZE, crs="native")
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
    assert props["pair"] == "p1" and "mask_provider" not in props  # provenance is written once, for the run
    assert loaded["changeagent"]["mask"]["provider"] == "user" and loaded["changeagent"]["pair"] == "p1"
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


def test_pixel_coordinates_without_georeference_are_marked_and_upright(tmp_path):
    mask = _mask()
    fc = changes_geojson(verify(mask), mask, None, objects=True, pair_name="plain", turn=2)
    assert fc["coordinate_system"] == PIXEL_COORDINATES and "not on a map" in fc["name"]
    assert fc["changeagent"]["coordinates"] == PIXEL_COORDINATES and fc["changeagent"]["turn"] == 2
    tl = next(f for f in fc["features"] if f["properties"].get("cell") == "TL")
    assert shape(tl["geometry"]).bounds == (0, SIZE - 30, 30, SIZE)  # the top-left cell is at the top: y points up
    road = next(f for f in fc["features"] if f["properties"].get("category") == "road")
    assert shape(road["geometry"]).bounds == (0, SIZE - 73, SIZE, SIZE - 70)
    name = geojson_file_name("plain", 2, None)
    assert name == "plain_turn2_changes_pixel.geojson"
    validate_geojson(write_geojson(fc, tmp_path / name), None, SIZE, SIZE)
    assert "pixel coordinates" in describe_export(fc)


def test_every_polygon_is_valid_and_wound_right_handed(geo_pair, tmp_path):
    """Two squares meeting at a corner are one 8-connected object whose outline touches itself: invalid as traced."""
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[5:10, 5:10] = ChangeClass.BUILDING
    m[10:15, 10:15] = ChangeClass.BUILDING
    m[40:60, 40:60] = ChangeClass.BUILDING
    m[45:55, 45:55] = 0  # a courtyard: a hole that must wind clockwise
    traced = [shape(g) for g, v in rasterio.features.shapes(m, mask=m > 0, connectivity=8) if v]
    assert any(not g.is_valid for g in traced)  # what the export must repair
    mask = ChangeMask(class_mask=m, source=MaskSource(provider="user", kind="user", categorical=True, confidence=1.0))
    for crs, georef in (("wgs84", geo_pair.georef), ("native", geo_pair.georef), ("wgs84", None)):
        fc = changes_geojson(verify(mask), mask, georef, objects=True, crs=crs, pair_name="corner")
        path = write_geojson(fc, tmp_path / geojson_file_name("corner", 1, georef).replace(".", f"_{crs}.", 1))
        validate_geojson(path, georef, SIZE, SIZE, crs=crs)
        objects = [shape(f["geometry"]) for f in fc["features"] if f["properties"]["feature"] == "object"]
        assert len(objects) == 2 and any(len(p.interiors) == 1 for o in objects for p in getattr(o, "geoms", [o]))


def test_to_map_keeps_only_polygons():
    bow_tie = shape({"type": "Polygon", "coordinates": [[(0, 0), (2, 2), (2, 0), (0, 2), (0, 0)]]})
    assert not bow_tie.is_valid
    fixed = shape(to_map(bow_tie, None, "wgs84"))
    assert fixed.is_valid and fixed.geom_type == "MultiPolygon" and fixed.area == pytest.approx(2.0)


def test_an_empty_result_is_still_a_feature_collection_and_says_so(geo_pair, tmp_path):
    mask = ChangeMask(
        class_mask=np.zeros((SIZE, SIZE), np.uint8),
        source=MaskSource(provider="user", kind="user", categorical=True, confidence=1.0),
    )
    fc = changes_geojson(verify(mask), mask, geo_pair.georef, objects=True, pair_name="quiet")
    assert fc["features"] == []
    validate_geojson(write_geojson(fc, tmp_path / "quiet.geojson"), geo_pair.georef, SIZE, SIZE)
    assert describe_export(fc).startswith("The GeoJSON is empty")


def test_provenance_is_written_once_without_server_paths(geo_pair, tmp_path):
    upload = tmp_path / "gradio" / "0f3a9c" / "label.png"
    upload.parent.mkdir(parents=True)
    cv2.imwrite(str(upload), (_mask().class_mask > 0).astype(np.uint8) * 255)
    mask = UserMaskProvider(upload, kind="binary", binary_category="building").provide(geo_pair)
    fc = changes_geojson(verify(mask), mask, geo_pair.georef, objects=True, pair_name="p")
    text = json.dumps(fc)
    assert str(tmp_path) not in text and fc["changeagent"]["mask"]["settings"]["path"] == "label.png"
    validate_geojson(write_geojson(fc, tmp_path / "p.geojson"), geo_pair.georef, SIZE, SIZE)
    assert text.count('"provider"') == 1 and len(text) < 5000  # not repeated on each of the features
    assert portable("onnx:/models/x/detector.onnx") == "onnx:detector.onnx"
    assert portable({"a": ["C:\\data\\m.png", 3]}) == {"a": ["m.png", 3]}


def test_category_blind_mask_exports_cells_without_counts():
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[0:30, 0:30] = ChangeClass.CHANGE
    mask = ChangeMask(
        class_mask=m, source=MaskSource(provider="classical", kind="classical", categorical=False, confidence=0.3)
    )
    fc = changes_geojson(verify(mask), mask, None, objects=True)
    cell = fc["features"][0]["properties"]
    assert cell["cell"] == "TL" and "building_count" not in cell and fc["changeagent"]["mask"]["confidence"] == 0.3
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


def test_change_marks_on_both_dates_align_and_the_legend_is_shared():
    t1 = np.full((SIZE, SIZE, 3), 40, np.uint8)
    pair = pair_from_arrays(t1, np.full((SIZE, SIZE, 3), 90, np.uint8))
    mask = _mask()
    verification = verify(mask)
    before, after = (draw_changes(image, mask, verification) for image in (pair.t1, pair.t2))
    assert before.shape == after.shape == (MIN_SIDE, MIN_SIDE, 3)
    scale = MIN_SIDE / SIZE
    assert before[int(15 * scale), int(15 * scale), 0] > before[int(15 * scale), int(15 * scale), 1] + 40
    labels = [label for _, label, _ in legend_entries(mask, verification)]
    assert labels[:2] == ["road change", "building change"] and "over 5% of its pixels" in labels[2]
    fine = [label for _, label, _ in legend_entries(mask, verification, fine_grid=9)]
    assert "9×9" in fine[-1] and not any("3×3" in label for label in fine)  # the chosen grid only


def test_the_legend_grows_with_the_picture():
    big = pair_from_arrays(np.zeros((1400, 1400, 3), np.uint8), np.zeros((1400, 1400, 3), np.uint8))
    m = np.zeros((1400, 1400), np.uint8)
    m[100:300, 100:300] = ChangeClass.BUILDING
    mask = ChangeMask(class_mask=m, source=MaskSource(provider="user", kind="user", categorical=True, confidence=1.0))
    small = render_overlay(
        pair_from_arrays(np.zeros((90, 90, 3), np.uint8), np.zeros((90, 90, 3), np.uint8)), _mask(), verify(_mask())
    )
    large = render_overlay(big, mask, verify(mask))
    # twice the text size: the large strip is taller although its entries fit one row where the small one wraps
    assert large.shape[0] - 1400 > small.shape[0] - MIN_SIDE


def _no_change() -> ChangeMask:
    source = MaskSource(provider="user", kind="user", categorical=True, confidence=1.0)
    return ChangeMask(class_mask=np.zeros((SIZE, SIZE), np.uint8), source=source)


def test_a_finer_grid_shows_where_the_objects_are():
    m = np.zeros((SIZE, SIZE), np.uint8)
    for r, c in ((2, 2), (2, 12), (50, 50), (80, 80)):
        m[r : r + 4, c : c + 4] = ChangeClass.BUILDING
    mask = ChangeMask(class_mask=m, source=MaskSource(provider="user", kind="user", categorical=True, confidence=1.0))
    shares = fine_grid_shares(mask, verify(mask), 9)
    assert shares.sum() == pytest.approx(1.0) and shares[0, 0] == pytest.approx(0.25)
    assert shares[0, 1] == pytest.approx(0.25) and shares[5, 5] == pytest.approx(0.25)
    plain = draw_changes(np.zeros((SIZE, SIZE, 3), np.uint8), mask, verify(mask))
    fine = draw_changes(np.zeros((SIZE, SIZE, 3), np.uint8), mask, verify(mask), fine_grid=9)
    assert (plain != fine).any()
    # the 3×3 grid's lines are not drawn over the 6×6 one: the line at a third of the side is the fine grid's colour
    third = MIN_SIDE * 2 // 6
    for size, colour in ((0, GRID_LINE), (6, FINE_GRID_LINE)):
        drawn = draw_changes(np.zeros((SIZE, SIZE, 3), np.uint8), _no_change(), verify(_no_change()), fine_grid=size)
        assert (drawn[:, third] == colour).all(axis=1).mean() > 0.9, size
