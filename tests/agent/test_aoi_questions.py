"""Questions about the user's areas of interest, through ``Agent.ask(aoi=…)``, in English and French: the figures in
the answers match a reference computed in the test with rasterio, shapely and pyproj (tests/aoi_reference.py).

Data: OSCD Bercy (EPSG:4326) and its label from ../shared/data, read in place; three parcels written in UTM 31N
(one inside the pair, one straddling its edge, one outside).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest

from agent.api import Agent
from agent.batch.runner import BatchOptions, run_batch
from agent.cli.main import main as cli
from agent.reading import read_request
from agent.settings import AgentSettings
from tests.aoi_reference import PARCELS, check_figures, reference, write_parcels
from tools.masks import UserMaskProvider
from tools.pairs import load_pair, pair_from_arrays
from tools.raster import InputError


@pytest.fixture(scope="module")
def bercy(shared_data, tmp_path_factory):
    folder = shared_data / "oscd" / "bercy"
    if not (folder / "t1.tif").is_file():
        pytest.skip("OSCD Bercy not in the shared data")
    pair = load_pair(folder / "t1.tif", folder / "t2.tif")
    label = str(folder / "label.tif")
    parcels = tmp_path_factory.mktemp("aoi") / "parcels.gpkg"
    outlines = write_parcels(parcels, pair.georef, "EPSG:32631")
    class_mask = UserMaskProvider(label).provide(pair).class_mask
    want = {name: reference(outline, pair, class_mask) for name, outline in outlines.items()}
    return pair, label, parcels, want


@pytest.mark.parametrize(
    ("question", "language"),
    [("How much changed inside the parcels?", "en"), ("Quelle part de chaque parcelle a changé ?", "fr")],
)
def test_parcel_figures_match_the_reference_in_two_languages(bercy, tmp_path, question, language):
    pair, label, parcels, want = bercy
    agent = Agent(AgentSettings(artefact_dir=tmp_path))
    answer = agent.ask(pair, question, mask=label, aoi=parcels)
    assert answer.evidence.route.region == "aoi" and answer.evidence.route.language == language
    got = {s.label: s for s in answer.areas_of_interest}
    assert list(got) == list(PARCELS)
    for name in PARCELS:
        check_figures(got[name], want[name], name)
    inside = f"{want['inside']['changed_fraction']:.1%}"
    assert inside in answer.first_sentence and "outside" in answer.first_sentence
    said = {"en": "lies outside the pair", "fr": "est en dehors de la paire"}[language]
    assert said in answer.first_sentence  # the outside parcel is named, not dropped
    assert "50% of it lies outside the pair" in answer.text  # the straddling one says so


def test_a_parcel_by_its_property_the_verdicts_a_ranking_and_the_export(bercy, tmp_path):
    pair, label, parcels, want = bercy
    agent = Agent(AgentSettings(artefact_dir=tmp_path))
    plot = agent.ask(pair, "How much of plot 12 changed?", thread_id="t", mask=label, aoi=parcels)
    assert [s.label for s in plot.areas_of_interest] == ["edge"]  # plot 12 is the straddling parcel
    assert f"{want['edge']['changed_fraction']:.1%}" in plot.first_sentence
    which = agent.ask(pair, "Which fields changed?", thread_id="t")  # the thread keeps the areas of interest
    changed = [name for name in PARCELS if want[name]["changed"]]
    assert changed == ["inside"] and which.changed is True  # over 5 %; the edge parcel has about 2 %
    assert which.first_sentence.startswith("1 of the 3 areas of interest changed (more than 5% of their pixels)")
    ranked = agent.ask(pair, "Rank the parcels by change", thread_id="t")
    order = sorted(
        (n for n in PARCELS if want[n]["changed_fraction"] is not None), key=lambda n: -want[n]["changed_fraction"]
    )
    assert ranked.first_sentence.index(order[0]) < ranked.first_sentence.index(order[1])
    missing = agent.ask(pair, "How much of plot 99 changed?", thread_id="t")
    assert "None of the areas of interest" in missing.first_sentence and "inside" in missing.first_sentence

    exported = agent.ask(pair, "Export the parcels as a geopackage", thread_id="t")
    gpkg = exported.artefacts["gpkg"]
    assert pyogrio.list_layers(gpkg).tolist() == [["aois", "MultiPolygon"]]
    _, _, _, fields = pyogrio.raw.read(gpkg, layer="aois")
    meta = pyogrio.read_info(gpkg, layer="aois")
    columns = dict(zip(meta["fields"], fields, strict=True))
    assert list(columns["name"]) == list(PARCELS) and list(columns["plot"]) == [11, 12, 13]
    assert np.allclose(columns["area_m2"], [want[n]["area_m2"] for n in PARCELS], rtol=1e-4)
    assert list(columns["status"]) == ["inside", "partly outside", "outside"]
    assert exported.artefacts["mask_geotiff"].endswith("_change_mask.tif")


def test_an_unplaced_pair_with_areas_of_interest_is_a_clear_error(bercy, tmp_path):
    _, _, parcels, _ = bercy
    plain = pair_from_arrays(np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8))
    agent = Agent(AgentSettings(artefact_dir=tmp_path))
    with pytest.raises(InputError, match=r"no georeference, so the areas of interest in parcels\.gpkg cannot"):
        agent.ask(plain, "How much changed inside the parcels?", aoi=parcels)
    with pytest.raises(InputError, match="area-of-interest file not found"):
        agent.ask(plain, "How much changed?", aoi=tmp_path / "none.geojson")


def test_parcel_words_without_areas_of_interest_read_for_the_image(bercy, tmp_path):
    pair, label, _, _ = bercy
    assert read_request("Which fields changed?").region == "aoi"
    answer = Agent(AgentSettings(artefact_dir=tmp_path)).ask(pair, "Did the fields change?", mask=label)
    assert answer.evidence.route.region == "image" and answer.areas_of_interest is None


def test_the_cli_and_a_batch_take_areas_of_interest(bercy, tmp_path, capsys):
    pair, label, parcels, want = bercy
    files = [str(pair.t1_path), str(pair.t2_path), "--mask", label, "--aoi", str(parcels)]
    assert cli(["verify", *files, "--export", str(tmp_path / "parcels_figures.shp")]) == 0
    table = capsys.readouterr().out
    assert "inside           inside" in table and "outside          outside" in table
    assert f"{want['inside']['changed_fraction']:.1%}" in table
    shapefile = tmp_path / "parcels_figures_aois.shp"
    assert pyogrio.read_info(shapefile)["features"] == 3 and "chg_frac" in pyogrio.read_info(shapefile)["fields"]
    asked = ["ask", *files, "Which parcels changed?", "--db", str(tmp_path / "t.sqlite"), "--artefacts", str(tmp_path)]
    assert cli(asked) == 0 and "1 of the 3 areas of interest changed" in capsys.readouterr().out

    catalog = tmp_path / "pairs.csv"
    catalog.write_text(f"t1,t2,mask,aoi\n{pair.t1_path},{pair.t2_path},{label},{parcels}\n")
    questions = tmp_path / "q.txt"
    questions.write_text("How much changed inside the parcels?\n")
    out = tmp_path / "out"
    run_batch(BatchOptions(catalog=catalog, questions=questions, out=out, root=Path(tmp_path.anchor), progress=False))
    record = json.loads((out / "answers.jsonl").read_text().splitlines()[0])
    figures = {s["label"]: s for s in record["answer"]["areas_of_interest"]}
    assert record["pair"] == "bercy" and figures["edge"]["changed_pixels"] == want["edge"]["changed_pixels"]
