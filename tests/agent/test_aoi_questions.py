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

from agent.answering.numbers import percent
from agent.api import Agent
from agent.batch.runner import BatchOptions, run_batch
from agent.cli.main import main as cli
from agent.reading import read_request
from agent.settings import AgentSettings
from deltavlm.synthetic import write_example
from tests.agent.test_whole_answers import english_sentences
from tests.aoi_reference import PARCELS, check_figures, reference, write_parcels
from tools.georef import load_placed_pair
from tools.masks import ChangeMask, MaskSource, UserMaskProvider
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
    inside = percent(want["inside"]["changed_fraction"], language)  # the question's own number format
    assert inside in answer.first_sentence and "outside" in answer.first_sentence
    said = {"en": "lies outside the pair", "fr": "est en dehors de la paire"}[language]
    assert said in answer.first_sentence  # the outside parcel is named, not dropped
    straddles = {"en": "50% of it lies outside the pair", "fr": "50\u00a0% de sa surface est en dehors de la paire"}
    assert straddles[language] in answer.text  # the straddling one says so, in the question's language
    if language != "en":  # every polygon's figures, the rule and the mask are said in the question's language
        assert not english_sentences(answer.text), english_sentences(answer.text)


def test_a_parcel_by_its_property_the_verdicts_a_ranking_and_the_export(bercy, tmp_path, monkeypatch):
    import agent.turn.nodes as nodes

    pair, label, parcels, want = bercy
    figured = []
    real = nodes.aoi_figures
    monkeypatch.setattr(nodes, "aoi_figures", lambda *a, **k: figured.append(1) or real(*a, **k))
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
    assert len(figured) == 1  # five questions and an export: the parcels' figures computed once


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


def test_a_scene_takes_areas_of_interest_read_window_by_window(bercy, tmp_path, capsys):
    pair, label, parcels, want = bercy
    out = tmp_path / "scene"
    args = ["scene", str(pair.t1_path), str(pair.t2_path), "--out", str(out), "--mask", label, "--tile", "128"]
    assert cli([*args, "--aoi", str(parcels)]) == 0
    printed = capsys.readouterr().out
    assert "areas of interest (parcels.gpkg)" in printed and "edge             partly outside" in printed
    meta, _, _, fields = pyogrio.raw.read(out / "areas_of_interest.gpkg", layer="aois")
    columns = dict(zip(meta["fields"], fields, strict=True))
    assert list(columns["name"]) == list(PARCELS)
    fractions = [want[n]["changed_fraction"] for n in PARCELS]
    assert np.allclose(columns["changed_fraction"][:2], fractions[:2], atol=1e-6)  # the third lies outside
    assert list(columns["status"]) == ["inside", "partly outside", "outside"]


@pytest.mark.parametrize(
    ("question", "language", "ask", "pick", "rank"),
    [
        ("Which fields changed?", "en", "changed", None, None),
        ("How much of plot 12 changed?", "en", "how_much", "12", None),
        ("Rank the parcels by change", "en", "changed", None, "most"),
        ('How many buildings in parcel "North"?', "en", "count", "north", None),
        ("Quelles parcelles ont changé ?", "fr", "changed", None, None),
        ("¿Qué parcelas cambiaron?", "es", "changed", None, None),
        ("Welche Parzellen haben sich verändert?", "de", "changed", None, None),
        ("Quais talhões mudaram?", "pt", "changed", None, None),
        ("哪些地块发生了变化？", "zh", "changed", None, None),
    ],
)
def test_the_reader_reads_areas_of_interest_as_a_region(question, language, ask, pick, rank):
    request = read_request(question)
    assert (request.region, request.language, request.ask, request.aoi_pick, request.rank) == (
        "aoi",
        language,
        ask,
        pick,
        rank,
    )
    assert read_request("Export the changes as a shapefile").export_format == "shp"


def test_a_plain_pair_placed_by_bounds_takes_areas_of_interest(tmp_path):
    example = write_example(tmp_path / "plain", seed=5, georeferenced=False)  # 256 × 256 PNGs, no georeference
    west, south, east, north = -97.90, 29.90, -97.89, 29.91
    pair = load_placed_pair(example.t1, example.t2, bounds=f"{west},{south},{east},{north}", crs="EPSG:4326")
    half = {
        "type": "Polygon",
        "coordinates": [[[west, south], [-97.895, south], [-97.895, north], [west, north], [west, south]]],
    }
    aoi = tmp_path / "west.geojson"
    aoi.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "geometry": half, "properties": {"name": "west"}}],
            }
        )
    )
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "artefacts"))
    answer = agent.ask(pair, "How much changed inside the parcel?", mask=str(example.mask), aoi=aoi)
    (west_half,) = answer.areas_of_interest
    assert west_half.status == "inside" and west_half.pixels == 256 * 128  # the western half of the grid
    class_mask = agent.verified(pair, mask=str(example.mask))[0].class_mask
    assert west_half.changed_pixels == int((class_mask[:, :128] > 0).sum())


def test_a_weak_mask_hedges_the_areas_of_interest(bercy, tmp_path):
    pair, _, parcels, _ = bercy
    weak = MaskSource(provider="classical", kind="classical", categorical=False, confidence=0.5)

    class WeakMask:
        """The user's label, presented as a mask of measured confidence 0.5."""

        name = "weak"

        def provide(self, pair):
            mask = UserMaskProvider(bercy[1]).provide(pair)
            return ChangeMask(class_mask=mask.class_mask, source=weak, valid=mask.valid)

    answer = Agent(AgentSettings(artefact_dir=tmp_path), mask_provider=WeakMask()).ask(
        pair, "How much changed inside the parcels?", aoi=parcels
    )
    assert answer.hedged and answer.first_sentence.startswith("Probably") and "estimates" in answer.text
