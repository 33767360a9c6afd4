"""Issue 26, BAD 1: compass words follow the georeference, not the picture.

A GeoTIFF whose transform has a positive y pixel size runs its rows north (south-up): its image top is the map's
south. With change only there, "Did anything change in the south?" used to answer "No, the bottom row (south) did
not change" and "…in the north?" "Yes". Compass words now read the sides that face them, the answer names the side
by the direction it really faces and says the raster is not north-up; image words (top, TL…BR) stay image-relative.
A raster turned 90° and one turned 30° (nearest side, and saying so) follow the same rule, through the API and
batch.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from affine import Affine

from agent.api import Agent
from agent.batch.runner import BatchOptions, run_batch
from agent.settings import AgentSettings

SIZE = 60
X0, Y0 = 500_000.0, 4_000_000.0


def _pair(folder: Path, transform: Affine) -> tuple[Path, Path, Path]:
    """t1/t2 on ``transform`` (UTM 14N) and a LEVIR-MCI label with building change in image rows 0–19 only."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    t1 = rng.integers(60, 120, (3, SIZE, SIZE), dtype=np.uint8)
    t2 = t1.copy()
    t2[:, 2:18, 4:56] = 230
    label = np.zeros((SIZE, SIZE), np.uint8)
    label[2:18, 4:56] = 255
    profile = {"driver": "GTiff", "height": SIZE, "width": SIZE, "count": 3, "dtype": "uint8"}
    profile |= {"crs": "EPSG:32614", "transform": transform}
    paths = []
    for name, bands in (("t1.tif", t1), ("t2.tif", t2)):
        with rasterio.open(folder / name, "w", **profile) as ds:
            ds.write(bands)
        paths.append(folder / name)
    cv2.imwrite(str(folder / "label.png"), label)
    return paths[0], paths[1], folder / "label.png"


SOUTH_UP = Affine(0.5, 0.0, X0, 0.0, 0.5, Y0)  # rows run north: row 0 is the southern edge
TURNED_90 = Affine(0.0, 0.5, X0, 0.5, 0.0, Y0)  # columns run north, rows run east: the top edge faces west
TURNED_30 = Affine.translation(X0, Y0) * Affine.rotation(30.0) * Affine.scale(0.5, -0.5)  # nearest side: top→north


def _ask(agent: Agent, paths, question: str):
    t1, t2, label = paths
    return agent.ask((t1, t2), question, mask=label, mask_kind="levir-mci", thread_id=question)


@pytest.fixture
def agent(tmp_path):
    return Agent(AgentSettings(artefact_dir=tmp_path / "art"))


def test_compass_words_on_a_south_up_raster_read_the_side_that_faces_them(tmp_path, agent):
    paths = _pair(tmp_path / "south-up", SOUTH_UP)
    south = _ask(agent, paths, "Did anything change in the south?")
    north = _ask(agent, paths, "Did anything change in the north?")
    assert south.text.startswith("Yes") and "the top row (south)" in south.text, south.text
    assert north.text.startswith("No") and "the bottom row (north)" in north.text, north.text
    assert "This raster is not north-up: its top edge faces south" in south.text
    assert "cell names TL…BR and top, bottom, left, right are as the image is drawn" in south.text
    south_west = _ask(agent, paths, "any change in the south-west?")
    assert south_west.text.startswith("Yes") and "(TL)" in south_west.text, south_west.text


def test_image_words_and_cell_ids_stay_image_relative(tmp_path, agent):
    paths = _pair(tmp_path / "south-up", SOUTH_UP)
    top = _ask(agent, paths, "did the top half change?")
    assert top.text.startswith("Yes") and "the top half (south)" in top.text, top.text
    cell = _ask(agent, paths, "did TC change?")
    assert cell.text.startswith("Yes"), cell.text


def test_a_north_up_raster_needs_no_note(tmp_path, agent):
    paths = _pair(tmp_path / "north-up", Affine(0.5, 0.0, X0, 0.0, -0.5, Y0 + SIZE * 0.5))
    north = _ask(agent, paths, "Did anything change in the north?")
    assert north.text.startswith("Yes") and "the top row (north)" in north.text
    assert "north-up" not in north.text


def test_a_raster_turned_90_degrees_reads_west_at_its_top(tmp_path, agent):
    paths = _pair(tmp_path / "turned", TURNED_90)
    west = _ask(agent, paths, "has the west changed?")
    east = _ask(agent, paths, "has the east changed?")
    assert west.text.startswith("Yes") and "the top row (west)" in west.text, west.text
    assert east.text.startswith("No"), east.text


def test_a_raster_turned_30_degrees_uses_the_nearest_side_and_says_so(tmp_path, agent):
    paths = _pair(tmp_path / "thirty", TURNED_30)
    north = _ask(agent, paths, "did anything change in the north?")
    assert north.text.startswith("Yes"), north.text
    assert "turned about 30° from north-up" in north.text and "nearest sides" in north.text


def test_batch_answers_the_south_of_a_south_up_pair(tmp_path):
    t1, t2, label = _pair(tmp_path / "cat", SOUTH_UP)
    catalog = tmp_path / "cat" / "pairs.csv"
    with catalog.open("w", newline="") as handle:
        csv.writer(handle).writerows([["id", "t1", "t2", "mask"], ["p", t1.name, t2.name, label.name]])
    questions = tmp_path / "q.txt"
    questions.write_text("Did anything change in the south?\nDid anything change in the north?\n")
    out = tmp_path / "out"
    run_batch(BatchOptions(catalog=catalog, questions=questions, out=out, progress=False, mask_kind="levir-mci"))
    answers = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    texts = [a.get("text") or a.get("answer", {}).get("text") for a in answers]
    assert texts[0].startswith("Yes") and texts[1].startswith("No"), texts


def test_a_south_up_scene_labels_its_cells_as_drawn(tmp_path):
    from agent.scene.analysis import analyse_scene

    t1, t2, label = _pair(tmp_path / "scene", SOUTH_UP)
    result = analyse_scene(t1, t2, tmp_path / "out", tile=32, overlap=8, mask=label, mask_kind="levir-mci")
    assert "The scene is not north-up (its top edge faces south)" in result.text
    assert "cell names TL…BR are as the image is drawn" in result.text
    north_up = _pair(tmp_path / "north", Affine(0.5, 0.0, X0, 0.0, -0.5, Y0 + SIZE * 0.5))
    plain = analyse_scene(*north_up[:2], tmp_path / "out2", tile=32, overlap=8, mask=north_up[2], mask_kind="levir-mci")
    assert "north-up" not in plain.text


def test_a_follow_up_keeps_the_turned_region(tmp_path, agent):
    t1, t2, label = _pair(tmp_path / "south-up", SOUTH_UP)
    first = agent.ask((t1, t2), "did the south change?", mask=label, mask_kind="levir-mci", thread_id="f")
    again = agent.ask((t1, t2), "and buildings?", thread_id="f")
    assert first.text.startswith("Yes") and "(south)" in again.text, again.text
