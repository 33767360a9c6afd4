"""Exports QGIS users expect: GeoJSON, GeoPackage and Shapefile with one geometry type per layer, object areas in
m² and ha by the chat's rule, a change-mask COG on the pair's grid, and scene names that survive a batch.

Real data: the OSCD Bercy and Pisa pairs in ../shared/data (EPSG:4326, 10 m Sentinel-2, with their labels), read in
place; synthetic pairs where a property needs a mask made on purpose.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from pyproj import CRS, Geod
from shapely import from_wkb

from agent.answering.catalog import message
from agent.api import Agent
from agent.batch.runner import BatchOptions, run_batch
from agent.cli.conversation import join_bounds
from agent.cli.main import main as cli
from agent.settings import AgentSettings
from deltavlm.rules import RuleSettings
from deltavlm.synthetic import write_example
from tools.geojson import changes_geojson
from tools.mask_geotiff import MASK_NO_DATA, write_mask_cog
from tools.masks import ChangeMask, MaskSource, UserMaskProvider
from tools.naming import distinct_names, scene_name
from tools.pairs import load_pair
from tools.raster import InputError
from tools.vector_export import format_of, write_vector
from tools.verify import verify

WGS84 = Geod(ellps="WGS84")


def _oscd(shared_data: Path, city: str) -> Path:
    folder = shared_data / "oscd" / city
    if not (folder / "t1.tif").is_file():
        pytest.skip(f"OSCD {city} not in the shared data")
    return folder


def _ogrinfo_geometries(path: Path) -> list[str]:
    """The ``Geometry:`` line of every layer as GDAL's own command-line tool reports it."""
    if shutil.which("ogrinfo") is None:
        pytest.skip("ogrinfo not installed (Debian gdal-bin; .ci/run installs it)")
    report = subprocess.run(["ogrinfo", "-so", "-al", str(path)], capture_output=True, text=True, check=True)
    return [line.split(":", 1)[1].strip() for line in report.stdout.splitlines() if line.startswith("Geometry:")]


def test_scene_names_come_from_the_folder_when_the_stem_is_a_date():
    assert scene_name("data/beirut/t1.tif") == "beirut" and scene_name("x/site_4/before.png") == "site_4"
    assert scene_name("LEVIR/A/test_12.png") == "test_12"  # a real name stays
    assert distinct_names(["north/city/t1.tif", "south/city/t1.tif", "a/pisa/t1.tif"]) == [
        "north_city",
        "south_city",
        "pisa",
    ]
    assert len(set(distinct_names(["city/t1.tif", "city/t1.tif"]))) == 2  # the same path twice: numbered


def test_every_format_opens_with_one_geometry_type_per_layer_and_the_chat_areas(shared_data, tmp_path):
    folder = _oscd(shared_data, "bercy")
    out = tmp_path / "out"
    common = [str(folder / "t1.tif"), str(folder / "t2.tif"), "--mask", str(folder / "label.tif"), "--objects"]
    for name in ("changes.geojson", "changes.gpkg", "changes.shp"):
        assert cli(["verify", *common, "--min-object-pixels", "1", "--export", str(out / name)]) == 0
    gpkg_layers = {name for name, _ in pyogrio.list_layers(out / "changes.gpkg")}
    assert gpkg_layers == {"cells", "objects"}
    files = [(out / "changes.gpkg", "objects"), (out / "changes.geojson", None), (out / "changes_objects.shp", None)]
    for path, layer in files:
        info = pyogrio.read_info(path, layer=layer)
        assert info["geometry_type"] in ("MultiPolygon", "Polygon") and info["features"] > 0, path.name
        assert CRS.from_user_input(info["crs"]).to_epsg() == 4326, path.name
    assert pyogrio.read_info(out / "changes.gpkg", layer="objects")["geometry_type"] == "MultiPolygon"
    assert pyogrio.read_info(out / "changes.geojson")["geometry_type"] == "MultiPolygon"
    for path in (out / "changes.gpkg", out / "changes.geojson", out / "changes_objects.shp", out / "changes_cells.shp"):
        kinds = _ogrinfo_geometries(path)
        # a Shapefile's polygon type holds multipolygons: GDAL names it Polygon, but never Unknown (any)
        assert kinds and all(k in ("Multi Polygon", "Polygon") for k in kinds), (path.name, kinds)
        assert "Unknown (any)" not in kinds

    # objects' areas: the chat's figure (same mask, every object kept), and the geodesic area of each polygon
    meta, _, geometry, fields = pyogrio.raw.read(out / "changes.gpkg", layer="objects")
    columns = dict(zip(meta["fields"], fields, strict=True))
    shp_fields = pyogrio.read_info(out / "changes_objects.shp")["fields"]
    assert {"area_m2", "area_ha", "cell", "category"} <= set(columns) and {"area_m2", "cell"} <= set(shp_fields)
    for wkb, area_m2 in zip(geometry, columns["area_m2"], strict=True):
        geodesic = abs(WGS84.geometry_area_perimeter(from_wkb(wkb))[0])
        assert geodesic == pytest.approx(area_m2, rel=0.005)
    assert np.allclose(columns["area_ha"], columns["area_m2"] / 10_000, rtol=1e-4)
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "artefacts", rules=RuleSettings(min_object_pixels=1)))
    pair = load_pair(folder / "t1.tif", folder / "t2.tif")
    answer = agent.ask(pair, "How many square metres changed?", mask=str(folder / "label.tif"))
    chat_m2 = answer.evidence.regions.regions["image"].area_m2
    assert float(np.sum(columns["area_m2"])) == pytest.approx(chat_m2, rel=0.005)
    assert set(columns["pair"]) == {"bercy"}  # the scene's folder, not "t1"


def test_mask_cog_has_the_pairs_grid_and_nodata_where_the_pair_has_none(shared_data, tmp_path):
    folder = _oscd(shared_data, "bercy")
    pair = load_pair(folder / "t1.tif", folder / "t2.tif")
    mask = UserMaskProvider(str(folder / "label.tif")).provide(pair)
    valid = np.ones(pair.shape, dtype=bool)
    valid[:10] = False  # a strip the pair did not see
    path = write_mask_cog(
        ChangeMask(class_mask=mask.class_mask, source=mask.source, valid=valid), pair.georef, tmp_path / "m.tif"
    )
    with rasterio.open(path) as ds:
        assert ds.crs.to_string() == pair.georef.crs and tuple(ds.transform)[:6] == pair.georef.transform
        assert ds.nodata == MASK_NO_DATA and ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        band = ds.read(1)
    assert (band[:10] == MASK_NO_DATA).all() and (band[10:] == mask.class_mask[10:]).all()


def test_empty_and_pixel_exports_still_open(tmp_path):
    rng = np.random.default_rng(3)
    t = rng.integers(0, 255, (3, 40, 40), dtype=np.uint8)
    for name in ("t1", "t2"):
        with rasterio.open(
            tmp_path / f"{name}.png", "w", driver="PNG", width=40, height=40, count=3, dtype="uint8"
        ) as ds:
            ds.write(t)
    pair = load_pair(tmp_path / "t1.png", tmp_path / "t2.png")
    source = MaskSource(provider="user", kind="user", categorical=False, confidence=1.0)
    mask = ChangeMask(class_mask=np.zeros((40, 40), np.uint8), source=source)
    collection = changes_geojson(verify(mask), mask, None, objects=True, pair_name=pair.name)
    written = write_vector(collection, tmp_path / "empty.gpkg")
    assert pyogrio.read_info(written[0], layer="cells")["features"] == 0
    with pytest.raises(InputError, match="suffixes"):
        format_of("changes.kml")


def test_bounds_take_negative_and_separate_numbers_and_the_hint_shows_the_swapped_order(tmp_path, capsys):
    argv = ["verify", "a.png", "b.png", "--bounds", "-97.87,29.97,-97.80,30.01", "--crs", "EPSG:4326"]
    assert join_bounds(argv)[3] == "--bounds=-97.87,29.97,-97.80,30.01"
    assert join_bounds(["verify", "--bounds", "-97.87", "29.97", "-97.8", "30", "a"])[1:3] == [
        "--bounds=-97.87,29.97,-97.8,30",
        "a",
    ]
    rng = np.random.default_rng(0)
    for name in ("t1", "t2"):
        with rasterio.open(
            tmp_path / f"{name}.png", "w", driver="PNG", width=32, height=32, count=3, dtype="uint8"
        ) as ds:
            ds.write(rng.integers(0, 255, (3, 32, 32), dtype=np.uint8))
    common = [str(tmp_path / "t1.png"), str(tmp_path / "t2.png"), "--crs", "EPSG:4326", "--export"]
    assert cli(["verify", *common, str(tmp_path / "w.geojson"), "--bounds", "-97.87", "29.97", "-97.86", "29.98"]) == 0
    layer = json.loads((tmp_path / "w.geojson").read_text())
    assert "coordinate_system" not in layer and layer["changeagent"]["coordinates"].startswith("EPSG:4326")
    assert cli(["verify", *common, str(tmp_path / "s.geojson"), "--bounds", "29.97,-97.87,29.98,-97.86"]) == 2
    error = capsys.readouterr().err
    assert "W,S,E,N" in error and "--bounds=-97.87,29.97,-97.86,29.98" in error


def test_a_batch_over_two_city_t1_pairs_writes_two_names(shared_data, tmp_path):
    cities = [_oscd(shared_data, "bercy"), _oscd(shared_data, "pisa")]
    catalog = tmp_path / "pairs.csv"
    with catalog.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t1", "t2", "mask"])
        for folder in cities:
            writer.writerow([folder / "t1.tif", folder / "t2.tif", folder / "label.tif"])
    questions = tmp_path / "q.txt"
    questions.write_text("Export the changes\n")
    out = tmp_path / "out"
    run_batch(BatchOptions(catalog=catalog, questions=questions, out=out, root=Path(tmp_path.anchor), progress=False))
    records = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    names = [Path(r["answer"]["artefacts"]["geojson"]).name for r in records]
    assert [r["pair"] for r in records] == ["bercy", "pisa"] and len(set(names)) == 2
    assert names[0].startswith("bercy_") and names[1].startswith("pisa_")
    layer = json.loads((out / "changes.geojson").read_text())
    assert {f["properties"]["pair"] for f in layer["features"]} <= {"bercy", "pisa"}


def test_the_question_names_the_format_and_every_export_brings_the_mask_cog(shared_data, tmp_path):
    folder = _oscd(shared_data, "bercy")
    pair = load_pair(folder / "t1.tif", folder / "t2.tif")
    agent = Agent(AgentSettings(artefact_dir=tmp_path))
    label = str(folder / "label.tif")
    for question, kind in (
        ("Export the changes as a shapefile", "shp"),
        ("Download the changed objects as a GeoPackage", "gpkg"),
        ("Export the changed cells", "geojson"),
    ):
        answer = agent.ask(pair, question, thread_id="formats", mask=label)
        named = {"shp": "Shapefile", "gpkg": "GeoPackage", "geojson": "GeoJSON"}[kind]
        assert answer.first_sentence.startswith(f"Here are the changed cells and objects as {named}"), question
        written = Path(answer.artefacts[kind])
        assert written.is_file() and written.name.startswith("bercy_turn"), question
        info = pyogrio.read_info(written, layer="objects" if kind == "gpkg" else None)
        assert info["geometry_type"] in ("MultiPolygon", "Polygon") and info["features"] >= 0
        assert Path(answer.artefacts["geojson"]).suffix == ".geojson"  # the GeoJSON is always there
        with rasterio.open(answer.artefacts["mask_geotiff"]) as ds:
            assert tuple(ds.transform)[:6] == pair.georef.transform and ds.crs.to_string() == pair.georef.crs


def test_objects_of_a_plain_pair_take_their_area_from_the_users_gsd(tmp_path):
    example = write_example(tmp_path / "plain", seed=5, georeferenced=False)
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "artefacts"))
    answer = agent.ask(
        (example.t1, example.t2), "Export the changed objects", mask=str(example.mask), mask_kind="levir-mci", gsd_m=0.5
    )
    layer = json.loads(Path(answer.artefacts["geojson"]).read_text())
    objects = [f["properties"] for f in layer["features"] if f["properties"]["feature"] == "object"]
    assert objects and all(p["area_m2"] == pytest.approx(p["area_px"] * 0.25, abs=0.01) for p in objects)
    assert all(p["cell"] in {"TL", "TC", "TR", "CL", "CC", "CR", "BL", "BC", "BR"} for p in objects)


@pytest.mark.parametrize(
    ("question", "opening"),
    [
        ("Exporte les changements en shapefile", "Voici les cellules et objets modifiés en Shapefile"),
        ("Exporta los cambios como shapefile", "Aquí están las celdas y objetos cambiados en Shapefile"),
        ("Exportiere die Änderungen als Shapefile", "Hier sind die veränderten Zellen und Objekte als Shapefile"),
        ("Exporte as mudanças como shapefile", "Aqui estão as células e objetos alterados em Shapefile"),
    ],
)
def test_the_first_sentence_names_the_format_written_in_the_question_language(question, opening, tmp_path):
    """Asked for a shapefile, the answer says it wrote one (it used to say 'Here is the GeoJSON' in every case)."""
    example = write_example(tmp_path / "pair", seed=5)
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "artefacts"))
    answer = agent.ask((example.t1, example.t2), question, mask=str(example.mask), mask_kind="levir-mci")
    assert answer.first_sentence.startswith(opening) and Path(answer.artefacts["shp"]).is_file()
    lang = answer.evidence.route.language
    holds = message("export_holds", lang).split("{")[0]  # "The {fmt} holds": the Shapefile, not "The GeoJSON"
    assert f"{holds}Shapefile" in answer.text and message("export_geojson_too", lang) in answer.text, answer.text
    assert f"{holds}GeoJSON" not in answer.text
