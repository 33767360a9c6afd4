"""The pixel size a user gives reaches the computed mask (its scale, routing and stated confidence) on every
surface: the API, verify, ask, batch and scene alike (the page goes through the API)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from agent import Agent
from agent.batch.catalog import read_catalog
from agent.cli.main import build_parser
from agent.cli.main import main as cli_main
from agent.scene.analysis import analyse_scene
from agent.settings import AgentSettings
from tools.change_detection.calibration import gsd_band
from tools.masks import ChangeMask, MaskSource
from tools.pairs import ImagePair, pair_from_arrays, with_gsd
from tools.raster import Georef


def _plain_files(tmp_path) -> tuple[str, str]:
    """A plain (unplaced) 8-bit pair with one bright new block."""
    rng = np.random.default_rng(3)
    t1 = np.clip(cv2.GaussianBlur(rng.normal(110, 30, (96, 96, 3)), (0, 0), 2), 0, 255).astype(np.uint8)
    t2 = t1.copy()
    t2[30:60, 30:60] = 250
    paths = []
    for name, image in (("t1.png", t1), ("t2.png", t2)):
        cv2.imwrite(str(tmp_path / name), image)
        paths.append(str(tmp_path / name))
    return paths[0], paths[1]


def test_with_gsd_yields_to_a_georeference():
    pair = pair_from_arrays(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))
    assert with_gsd(pair, None) is pair and with_gsd(pair, 2.0).gsd_m == 2.0
    placed = pair_from_arrays(
        pair.t1, pair.t2, georef=Georef(crs="EPSG:32633", transform=(0.5, 0, 500000, 0, -0.5, 5000000))
    )
    assert placed.gsd_m == 0.5 and with_gsd(placed, 10.0).gsd_m == 0.5


def test_agent_ask_gsd_reaches_the_mask_and_its_confidence(tmp_path):
    t1, t2 = _plain_files(tmp_path)
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "artefacts"))
    unknown = agent.ask((t1, t2), "Has anything changed?", thread_id="u")
    assert unknown.evidence.mask.gsd_m is None and unknown.evidence.mask.calibration_key.startswith("unknown-gsd")
    given = agent.ask((t1, t2), "Has anything changed?", thread_id="g", gsd_m=10.0)
    assert given.evidence.mask.gsd_m == 10.0
    assert given.evidence.mask.calibration_key.startswith(gsd_band(10.0))
    kept = agent.ask((t1, t2), "Where?", thread_id="g")  # the thread keeps the pixel size it was given
    assert kept.evidence.mask.gsd_m == 10.0
    finer = agent.ask((t1, t2), "Where?", thread_id="g", gsd_m=0.5)  # a new one makes the mask again
    assert finer.evidence.mask.gsd_m == 0.5 and finer.evidence.mask.calibration_key.startswith("sub-metre")


@pytest.mark.parametrize("command", ["verify", "ask", "chat", "batch", "scene"])
def test_every_command_takes_the_same_gsd_option(command, tmp_path):
    extra = {
        "verify": ["a", "b"],
        "ask": ["a", "b", "q"],
        "chat": ["a", "b"],
        "batch": ["cat.csv", "--questions", "q.txt", "--out", str(tmp_path)],
        "scene": ["a", "b", "--out", str(tmp_path)],
    }[command]
    parser = build_parser()
    assert parser.parse_args([command, *extra, "--gsd", "2.5"]).gsd == 2.5
    with pytest.raises(SystemExit):
        parser.parse_args([command, *extra, "--gsd", "-1"])


def test_verify_gsd_reaches_the_mask(tmp_path, capsys):
    t1, t2 = _plain_files(tmp_path)
    assert cli_main(["verify", t1, t2, "--gsd", "3", "--json"]) == 0
    source = json.loads(capsys.readouterr().out)["verification"]["source"]
    assert source["gsd_m"] == 3.0 and source["calibration_key"].startswith("1-5m")


def test_batch_gsd_fills_rows_without_one(tmp_path):
    (tmp_path / "cat.csv").write_text("id,t1,t2,mask,gsd\na,a1.png,a2.png,,0.5\nb,b1.png,b2.png,,\n")
    catalog = read_catalog(tmp_path / "cat.csv").with_default_gsd(2.0)
    assert {e.id: e.gsd for e in catalog.entries} == {"a": 0.5, "b": 2.0}


class _Recording:
    """A provider that remembers the pixel size each tile reached it with."""

    name = "recording"

    def __init__(self) -> None:
        self.gsds: list[float | None] = []

    def provide(self, pair: ImagePair) -> ChangeMask:
        self.gsds.append(pair.gsd_m)
        return ChangeMask(
            class_mask=np.zeros(pair.shape, np.uint8),
            source=MaskSource(provider=self.name, kind="classical", categorical=False, confidence=0.5),
        )


def test_scene_gsd_reaches_every_tile(tmp_path):
    t1, t2 = _plain_files(tmp_path)
    recording = _Recording()
    analyse_scene(t1, t2, tmp_path / "scene", tile=48, overlap=8, provider=recording, gsd_m=4.0)
    assert recording.gsds and set(recording.gsds) == {4.0}
