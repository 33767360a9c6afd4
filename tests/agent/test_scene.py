"""Whole scenes: tiling, the exact merge of tile masks (no double counting), alignment, outputs and the CLI."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import rasterio
from shapely.geometry import shape

from agent.cli.main import main as cli_main
from agent.scene.analysis import analyse_scene
from deltavlm.rules import ChangeClass, RuleSettings, summarize
from deltavlm.synthetic import generate_pair
from tests.geodata import ORIGIN, PIXEL, UTM14N, write_tif
from tools.raster import InputError
from tools.scene.merge import summary_of_array
from tools.scene.tiling import plan_tiles

TILE, OVERLAP = 128, 16


def test_tiles_partition_the_scene_and_read_context_around_it():
    tiles = plan_tiles(300, 530, TILE, OVERLAP)
    covered = np.zeros((300, 530), dtype=int)
    for tile in tiles:
        r0, c0, h, w = tile.core
        covered[r0 : r0 + h, c0 : c0 + w] += 1
        rr0, cc0, rh, rw = tile.read
        assert rr0 == max(0, r0 - OVERLAP) and cc0 == max(0, c0 - OVERLAP)
        assert rr0 + rh == min(300, r0 + h + OVERLAP) and cc0 + rw == min(530, c0 + w + OVERLAP)
        rows, cols = tile.core_in_read()
        assert rows.stop - rows.start == h and cols.stop - cols.start == w
    assert (covered == 1).all()  # every pixel is decided by exactly one tile
    assert [(t.row, t.col) for t in tiles[:6]] == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0)]
    with pytest.raises(InputError, match="overlap 128 px must lie in"):
        plan_tiles(300, 300, 128, 128)


def _random_mask(rng: np.random.Generator, height: int, width: int, categorical: bool) -> np.ndarray:
    """Blobs, rings with objects in their holes, lines, specks under the size rule, things on the border."""
    mask = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(10, 40))):
        value = int(rng.choice([1, 2])) if categorical else 3
        x, y = int(rng.integers(-10, width + 10)), int(rng.integers(-10, height + 10))
        kind = int(rng.integers(0, 4))
        if kind == 0:
            cv2.rectangle(mask, (x, y), (x + int(rng.integers(1, 50)), y + int(rng.integers(1, 50))), value, -1)
        elif kind == 1:
            radius = int(rng.integers(3, 40))
            cv2.circle(mask, (x, y), radius, value, 1)
            cv2.circle(mask, (x, y), max(1, radius // 3), int(rng.choice([1, 2])) if categorical else 3, -1)
        elif kind == 2:
            cv2.line(mask, (x, y), (int(rng.integers(0, width)), int(rng.integers(0, height))), value, 1)
        else:
            mask[rng.integers(0, height, 4), rng.integers(0, width, 4)] = value
    return mask


@pytest.mark.parametrize("seed", range(8))
def test_strip_merge_equals_the_rules_on_the_whole_mask(seed):
    """Counting in strips with union-find gives exactly what rules.summarize gives on the mask in memory."""
    rng = np.random.default_rng(seed)
    height, width = int(rng.integers(40, 260)), int(rng.integers(40, 260))
    mask = _random_mask(rng, height, width, categorical=seed % 2 == 0)
    settings = RuleSettings(min_object_pixels=int(rng.choice([1, 8, 30])))
    for strip_rows in (2, 17, 64):
        merged = summary_of_array(mask, settings, strip_rows=strip_rows, polygons=False).summary
        assert merged.model_dump() == summarize(mask, settings).model_dump(), strip_rows


def _write_scene(folder, t1: np.ndarray, t2: np.ndarray, mask: np.ndarray | None = None, *, pixel=PIXEL, origin=ORIGIN):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, image in (("t1", t1), ("t2", t2)):
        paths.append(
            write_tif(folder / f"{name}.tif", np.moveaxis(image, 2, 0), photometric="RGB", pixel=pixel, origin=origin)
        )
    if mask is not None:
        paths.append(write_tif(folder / "mask.tif", mask[None]))
    return paths


@pytest.fixture
def border_scene(tmp_path):
    """A 600×760 scene whose objects are placed across tile borders (tiles of 128 px), with known totals."""
    height, width = 600, 760
    rng = np.random.default_rng(3)
    t1 = rng.normal(100, 8, (height, width, 3)).clip(0, 255).astype(np.uint8)
    t2 = t1.copy()
    mask = np.zeros((height, width), np.uint8)
    building, road = int(ChangeClass.BUILDING), int(ChangeClass.ROAD)
    buildings = [
        (110, 100, 40, 50),  # across the corner of four tiles (128, 128)
        (240, 20, 30, 20),  # across the vertical border at x = 256
        (500, 370, 30, 40),  # across the horizontal border at y = 384
        (600, 500, 50, 90),  # across y = 512 near the scene's bottom
        (0, 250, 20, 20),  # on the scene's left edge, across y = 256
    ]
    for x, y, w, h in buildings:
        mask[y : y + h, x : x + w] = building
    # an L-shaped building over four tiles, and two blocks touching only at a corner across a tile corner
    mask[230:250, 360:400] = building
    mask[230:300, 380:400] = building
    mask[100:128, 620:640] = building
    mask[128:150, 640:660] = building
    # a ring building around a courtyard holding a small building: RETR_EXTERNAL counts the ring only
    cv2.rectangle(mask, (470, 100), (560, 170), building, 4)
    mask[130:140, 505:515] = building
    mask[400:402, 40:42] = building  # 4 px: under the 8 px size rule, not an object
    cv2.line(mask, (0, 330), (759, 300), road, 5)  # one road across the whole scene
    t2[mask == building] = (210, 80, 60)
    t2[mask == road] = (190, 190, 190)
    paths = _write_scene(tmp_path / "scene", t1, t2, mask)
    return paths, mask, {"building": len(buildings) + 3, "road": 1}


def test_user_mask_scene_counts_objects_cut_by_tiles_once(border_scene, tmp_path):
    (t1, t2, mask_path), mask, known = border_scene
    out = tmp_path / "out"
    result = analyse_scene(t1, t2, out, tile=TILE, overlap=OVERLAP, mask=mask_path, mask_kind="index")
    assert result.summary.counts == known
    assert result.summary.model_dump() == summarize(mask).model_dump()  # exactly the rules on the whole mask
    assert result.summary.changed_regions == known["building"] + known["road"]  # no object touches another
    assert result.objects_across_tiles >= 7
    assert result.mask.provider == "user" and result.mask.confidence == 1.0
    assert result.tiles_total == 5 * 6 and result.width == 760 and result.height == 600
    tiles = {(t.row, t.col): t for t in result.changed_tiles}
    assert (0, 0) not in tiles  # 504 px of the corner building: 3 % of the tile, under the 5 % rule
    assert tiles[(0, 1)].window == (0, 128, 128, 128) and tiles[(0, 1)].changed_pixels == 22 * 28 + 16 * 20
    assert tiles[(4, 5)].window == (512, 640, 88, 120)  # the last tile is cut by the scene's edge
    assert "1 road, 8 buildings" in result.text and "span tile borders and count once" in result.text

    with rasterio.open(out / "change_mask.tif") as ds:
        assert (ds.read(1) == mask).all() and ds.crs.to_string() == UTM14N
    layer = json.loads((out / "changes.geojson").read_text())
    assert layer["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32614"
    objects = [f for f in layer["features"] if f["properties"]["feature"] == "object"]
    assert sorted(f["properties"]["category"] for f in objects) == ["building"] * 8 + ["road"]
    l_shape = [f for f in objects if f["properties"]["area_px"] == 20 * 40 + 50 * 20]
    assert len(l_shape) == 1 and shape(l_shape[0]["geometry"]).geom_type == "MultiPolygon"
    assert shape(l_shape[0]["geometry"]).area == pytest.approx((20 * 40 + 50 * 20) * PIXEL**2)
    x, y = objects[0]["geometry"]["coordinates"][0][0][0]
    assert ORIGIN[0] <= x <= ORIGIN[0] + 760 * PIXEL and ORIGIN[1] - 600 * PIXEL <= y <= ORIGIN[1]
    assert {f["properties"]["feature"] for f in layer["features"]} == {"tile", "object"} | (
        {"cell"} if result.summary.cells else set()
    )
    saved = json.loads((out / "scene.json").read_text())
    assert saved["summary"]["counts"] == known and saved["outputs"]["geojson"].endswith("changes.geojson")
    assert not (out / ".change_mask.u8").exists()


def test_classical_scene_merge_matches_the_rules_on_its_merged_mask(tmp_path):
    """With the classical detector per tile, the scene's answers are the rules applied to the merged mask."""
    size, n = 200, 2
    t1 = np.zeros((size * n, size * n, 3), np.uint8)
    t2 = t1.copy()
    for i in range(n):
        for j in range(n):
            pair = generate_pair(300 + i * n + j, size, change=True)
            t1[i * size : (i + 1) * size, j * size : (j + 1) * size] = pair.t1
            t2[i * size : (i + 1) * size, j * size : (j + 1) * size] = pair.t2
    t1_path, t2_path = _write_scene(tmp_path / "scene", t1, t2)
    out = tmp_path / "out"
    result = analyse_scene(t1_path, t2_path, out, tile=TILE, overlap=OVERLAP)
    with rasterio.open(out / "change_mask.tif") as ds:
        merged = ds.read(1)
    assert result.summary.model_dump() == summarize(merged).model_dump()
    assert result.mask.provider == "classical" and not result.summary.categorical
    assert result.mask.settings["tiles"] == 16 and result.mask.settings["confidence_min"] <= result.mask.confidence
    if result.summary.changed:
        assert "changed region" in result.text
    two = analyse_scene(t1_path, t2_path, None, tile=TILE, overlap=OVERLAP, workers=2)
    assert two.summary == result.summary and two.outputs == {}


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_misaligned_dates_are_refused_or_resampled_with_a_warning(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (160, 200, 3), dtype=np.uint8)
    t1 = write_tif(tmp_path / "t1.tif", np.moveaxis(image, 2, 0), photometric="RGB")
    shifted = write_tif(
        tmp_path / "t2_shifted.tif", np.moveaxis(image, 2, 0), photometric="RGB", origin=(ORIGIN[0] + 3.0, ORIGIN[1])
    )
    with pytest.raises(InputError, match=r"t1 .*t1.tif and t2 .*t2_shifted.tif lie on different grids \(transform"):
        analyse_scene(t1, shifted, tile=64, overlap=8)
    result = analyse_scene(t1, shifted, tile=64, overlap=8, resample=True)
    assert any("resampled (bilinear) onto t1's grid" in w for w in result.warnings)
    far = write_tif(tmp_path / "t2_far.tif", np.moveaxis(image, 2, 0), photometric="RGB", origin=(0.0, 0.0))
    with pytest.raises(InputError, match="do not overlap"):
        analyse_scene(t1, far, tile=64, overlap=8, resample=True)
    plain = write_tif(tmp_path / "plain.tif", np.moveaxis(image, 2, 0), crs=None, photometric="RGB")
    with pytest.raises(InputError, match=r"is georeferenced but .*plain\.tif is not"):
        analyse_scene(t1, plain, tile=64, overlap=8)
    small_mask = write_tif(tmp_path / "mask.tif", np.zeros((1, 100, 100), np.uint8))
    with pytest.raises(InputError, match=r"mask file .*mask.tif is 100×100 but the scene is 200×160"):
        analyse_scene(t1, t1, tile=64, overlap=8, mask=small_mask)
    with pytest.raises(InputError, match="t2 file not found"):
        analyse_scene(t1, tmp_path / "none.tif")


def test_sixteen_bit_scene_is_stretched_once_for_all_tiles(tmp_path):
    rng = np.random.default_rng(1)
    before = rng.integers(200, 3000, (3, 150, 150)).astype(np.uint16)
    after = before.copy()
    after[:, 40:90, 60:120] = 9000
    t1 = write_tif(tmp_path / "t1.tif", before)
    t2 = write_tif(tmp_path / "t2.tif", after)
    mask = np.zeros((1, 150, 150), np.uint8)
    mask[0, 40:90, 60:120] = 255
    mask_path = write_tif(tmp_path / "m.tif", mask)
    result = analyse_scene(t1, t2, tile=64, overlap=8, mask=mask_path, mask_category="building")
    assert result.summary.counts == {"road": 0, "building": 1}
    assert any(
        "each date stretched on its own, per band linearly between its percentiles 2 and 98" in w
        for w in result.warnings
    )


def test_cli_scene_prints_answers_and_json(border_scene, tmp_path, capsys):
    (t1, t2, mask_path), _, known = border_scene
    argv = ["scene", str(t1), str(t2), "--out", str(tmp_path / "o"), "--tile", "128", "--overlap", "16"]
    assert cli_main([*argv, "--mask", str(mask_path), "--mask-kind", "index", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["summary"]["counts"] == known and payload["georef"]["crs"] == UTM14N
    assert cli_main([*argv, "--mask", str(mask_path), "--mask-kind", "index"]) == 0
    assert "Changed objects: 1 road, 8 buildings" in capsys.readouterr().out
    assert cli_main([*argv, "--overlap", "200"]) == 2
    assert "overlap 200 px must lie in [0, tile size 128)" in capsys.readouterr().err
