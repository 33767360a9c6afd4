"""Placing plain images on the map: GDAL sidecars (world files, .aux.xml, .prj) and user-given bounds + CRS.

Each way ends in an export that ``tests.geojson_check`` validates and GDAL reads inside the raster's footprint.
"""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from rasterio.crs import CRS
from shapely.geometry import shape

from agent.answering import unplaced_hint
from agent.api import Agent
from agent.batch.catalog import read_catalog
from agent.cli.main import main as cli
from agent.settings import AgentSettings
from deltavlm.synthetic import write_example
from tests.geodata import ORIGIN, PIXEL, UTM14N
from tests.geojson_check import footprint, validate_geojson
from tools.geojson import changes_geojson, write_geojson
from tools.georef import load_placed_pair, parse_bounds, parse_crs, place_pair
from tools.masks import UserMaskProvider
from tools.pairs import load_pair
from tools.raster import InputError
from tools.verify import verify

SIZE = 256
WORLD = f"{PIXEL}\n0\n0\n{-PIXEL}\n{ORIGIN[0] + PIXEL / 2}\n{ORIGIN[1] - PIXEL / 2}\n"  # centre of the first pixel
BOUNDS = "35.50,33.88,35.52,33.90"


@pytest.fixture
def plain(tmp_path):
    """A plain PNG pair with its LEVIR-MCI mask, as LEVIR-CD and DSIFN ship them: no georeference."""
    return write_example(tmp_path / "plain", seed=7, georeferenced=False)


def _sidecars(paths, suffix: str, text: str) -> None:
    for image in (paths.t1, paths.t2):
        image.with_suffix(suffix).write_text(text)


def _export(pair, mask_path, tmp_path, crs: str = "wgs84"):
    mask = UserMaskProvider(mask_path, kind="levir-mci").provide(pair)
    collection = changes_geojson(verify(mask), mask, pair.georef, objects=True, crs=crs, pair_name="p")
    path = write_geojson(collection, tmp_path / ("p.geojson" if pair.georef else "p_pixel.geojson"))
    return validate_geojson(path, pair.georef, SIZE, SIZE, crs=crs)


def test_a_world_file_with_aux_xml_is_read_by_gdal_and_exports_in_that_crs(plain, tmp_path):
    _sidecars(plain, ".pgw", WORLD)
    srs = CRS.from_string(UTM14N).to_wkt().replace('"', "&quot;")
    for image in (plain.t1, plain.t2):
        image.with_name(image.name + ".aux.xml").write_text(f"<PAMDataset><SRS>{srs}</SRS></PAMDataset>")
    pair = load_pair(plain.t1, plain.t2)  # rasterio alone: nothing in the loader discards the sidecars
    assert pair.georef is not None and pair.georef.crs == UTM14N
    assert pair.georef.transform == pytest.approx((PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1]))
    _export(pair, plain.mask, tmp_path, crs="native")
    _export(pair, plain.mask, tmp_path)


def test_a_world_file_without_a_crs_is_completed_by_a_prj_or_a_named_crs(plain, tmp_path):
    _sidecars(plain, ".pgw", WORLD)
    bare = load_placed_pair(plain.t1, plain.t2)
    assert bare.georef is None and "world file but no CRS" in unplaced_hint(bare)
    named = load_placed_pair(plain.t1, plain.t2, crs="EPSG:32614")
    assert named.georef is not None and named.georef.transform[2] == pytest.approx(ORIGIN[0])
    _export(named, plain.mask, tmp_path, crs="native")
    _sidecars(plain, ".prj", CRS.from_string(UTM14N).to_wkt())
    from_prj = load_placed_pair(plain.t1, plain.t2)
    assert from_prj.georef == named.georef


@pytest.mark.parametrize("suffix", [".jgw", ".wld"])
def test_jpeg_world_files(tmp_path, suffix):
    image = np.full((40, 60, 3), 128, np.uint8)
    paths = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    for path in paths:
        cv2.imwrite(str(path), image)
        path.with_suffix(suffix).write_text(WORLD)
    pair = load_placed_pair(*paths, crs="32614")
    assert pair.georef is not None and pair.georef.crs == UTM14N


def test_bounds_and_crs_place_a_plain_pair_inside_the_bounds(plain, tmp_path):
    pair = load_placed_pair(plain.t1, plain.t2, bounds=BOUNDS, crs="EPSG:4326")
    assert pair.georef is not None
    collection = _export(pair, plain.mask, tmp_path)
    assert footprint(pair.georef, SIZE, SIZE) == pytest.approx(parse_bounds(BOUNDS))
    assert collection["features"]


def test_without_a_georeference_the_export_is_pixels_upright(plain, tmp_path):
    pair = load_placed_pair(plain.t1, plain.t2)
    assert pair.georef is None and "cannot be placed on a map" in unplaced_hint(pair)
    collection = _export(pair, plain.mask, tmp_path)
    assert "pixel" in collection["coordinate_system"]


def test_what_is_refused(plain, tmp_path):
    with pytest.raises(InputError, match="four finite numbers"):
        parse_bounds("1,2,3")
    with pytest.raises(InputError, match="west must be less than east"):
        parse_bounds("3,0,1,1")
    with pytest.raises(InputError, match="not one GDAL knows"):
        parse_crs("EPSG:999999")
    assert parse_crs("4326") == "EPSG:4326" and parse_bounds("1 2 3 4") == (1, 2, 3, 4)
    pair = load_pair(plain.t1, plain.t2)
    with pytest.raises(InputError, match="need the CRS"):
        place_pair(pair, bounds=BOUNDS)
    with pytest.raises(InputError, match="a CRS alone cannot place"):
        place_pair(pair, crs="EPSG:4326")
    with pytest.raises(InputError, match="outside longitude"):
        place_pair(pair, bounds="500000,3000000,500100,3000100", crs="EPSG:4326")
    placed = place_pair(pair, bounds=BOUNDS, crs="EPSG:4326")
    with pytest.raises(InputError, match="already georeferenced"):
        place_pair(placed, bounds=BOUNDS, crs="EPSG:4326")
    plain.t1.with_suffix(".pgw").write_text(WORLD)
    with pytest.raises(InputError, match="has a world file but"):
        load_placed_pair(plain.t1, plain.t2, crs="EPSG:32614")


def test_the_cli_places_a_plain_pair(plain, tmp_path, capsys):
    out = tmp_path / "cli.geojson"
    common = [str(plain.t1), str(plain.t2), "--mask", str(plain.mask), "--mask-kind", "levir-mci", "--objects"]
    assert cli(["verify", *common, "--bounds", BOUNDS, "--crs", "EPSG:4326", "--geojson", str(out)]) == 0
    pair = load_placed_pair(plain.t1, plain.t2, bounds=BOUNDS, crs="EPSG:4326")
    validate_geojson(out, pair.georef, SIZE, SIZE)
    pixel = tmp_path / "cli_pixel.geojson"
    assert cli(["verify", *common, "--geojson", str(pixel)]) == 0
    assert "cannot be placed on a map" in capsys.readouterr().out
    validate_geojson(pixel, None, SIZE, SIZE)
    assert cli(["verify", *common, "--crs", "EPSG:4326"]) == 2
    assert "a CRS alone cannot place" in capsys.readouterr().err


def test_the_agent_exports_where_the_pair_was_placed(plain, tmp_path):
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "a"))
    pixels = load_placed_pair(plain.t1, plain.t2)
    first = agent.ask(pixels, "Export the changes", thread_id="t", mask=plain.mask, mask_kind="levir-mci")
    assert first.artefacts["geojson"].endswith("_turn1_changes_pixel.geojson")
    assert "pixel coordinates" in first.text and "cannot be placed on a map" in first.text
    validate_geojson(first.artefacts["geojson"], None, SIZE, SIZE)
    placed = place_pair(pixels, bounds=BOUNDS, crs="EPSG:4326")  # same pixels, same thread: now on the map
    second = agent.ask(placed, "Export the changes again", thread_id="t")
    assert second.artefacts["geojson"].endswith(f"{pixels.name}_turn2_changes.geojson")
    validate_geojson(second.artefacts["geojson"], placed.georef, SIZE, SIZE)


def test_batch_catalog_columns_place_plain_pairs(plain, tmp_path):
    catalog = tmp_path / "plain" / "pairs.csv"
    with catalog.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "t1", "t2", "mask", "bounds", "crs"])
        writer.writerow(["placed", plain.t1.name, plain.t2.name, plain.mask.name, BOUNDS, "EPSG:4326"])
        writer.writerow(["unplaced", plain.t1.name, plain.t2.name, plain.mask.name, "", ""])
        writer.writerow(["broken", plain.t1.name, plain.t2.name, "", "1,2,3", "EPSG:4326"])
    items = read_catalog(catalog).items
    assert (items[0].entry.bounds, items[0].entry.crs) == (BOUNDS, "EPSG:4326")
    assert items[1].entry.bounds is None and "four finite numbers" in items[2].problem.error
    assert json.dumps(items[0].digest(catalog.parent)) != json.dumps(items[1].digest(catalog.parent))


def test_a_batch_run_puts_placed_pairs_on_the_map_and_the_others_in_pixels(plain, tmp_path):
    catalog = tmp_path / "plain" / "pairs.csv"
    catalog.write_text(
        "id,t1,t2,mask,bounds,crs\n"
        f'placed,t1.png,t2.png,mask.png,"{BOUNDS}",EPSG:4326\n'
        "unplaced,t1.png,t2.png,mask.png,,\n"
    )
    questions = tmp_path / "q.txt"
    questions.write_text("Has anything changed?\n")
    out = tmp_path / "run"
    assert (
        cli(["batch", str(catalog), "--questions", str(questions), "--out", str(out), "--mask-kind", "levir-mci"]) == 0
    )
    mapped = json.loads((out / "changes.geojson").read_text())
    pixel = json.loads((out / "changes_pixel.geojson").read_text())
    assert {f["properties"]["pair"] for f in mapped["features"]} == {"placed"}
    assert {f["properties"]["pair"] for f in pixel["features"]} == {"unplaced"}
    west, south, east, north = parse_bounds(BOUNDS)
    for feature in mapped["features"]:
        x0, y0, x1, y1 = shape(feature["geometry"]).bounds
        assert west - 1e-9 <= x0 <= x1 <= east + 1e-9 and south - 1e-9 <= y0 <= y1 <= north + 1e-9
