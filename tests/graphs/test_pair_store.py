"""The pair store answers a pair only from what was computed for that pair: the same pixels at another pixel size,
with another georeference or another mask are another entry (issue 26: one Agent gave the first pair's analysis
for the second)."""

from __future__ import annotations

import os

import numpy as np

from agent import Agent
from agent.settings import AgentSettings
from deltavlm.synthetic import write_example
from graphs.pair_store import PairKey
from tests.geodata import write_tif
from tools.classical_mask import ClassicalMaskProvider
from tools.masks import UserMaskProvider, on_valid_data
from tools.pairs import load_pair
from tools.raster import Georef, read_raster

QUESTION = "How much changed, in square metres?"


def _same_pixels_at(tmp_path, pixel: float):
    """The synthetic pair's pixels written as GeoTIFFs whose pixels are ``pixel`` metres on a side."""
    paths = write_example(tmp_path / "src", seed=7)
    folder = tmp_path / f"at_{pixel}"
    folder.mkdir()
    t1 = write_tif(folder / "t1.tif", read_raster(paths.t1).bands, pixel=pixel)
    t2 = write_tif(folder / "t2.tif", read_raster(paths.t2).bands, pixel=pixel)
    return load_pair(t1, t2)


def _answer(agent: Agent, pair, thread: str):
    answer = agent.ask(pair, QUESTION, thread_id=thread)
    return answer.text, answer.evidence.mask.model_dump()


def test_one_agent_asked_about_the_same_pixels_at_two_gsds_answers_each(tmp_path):
    fine, coarse = _same_pixels_at(tmp_path, 0.5), _same_pixels_at(tmp_path, 2.0)
    assert fine.pair_id == coarse.pair_id  # the same pixels
    shared = Agent(AgentSettings(artefact_dir=tmp_path / "a"))
    first, second = _answer(shared, fine, "fine"), _answer(shared, coarse, "coarse")
    alone = _answer(Agent(AgentSettings(artefact_dir=tmp_path / "b")), coarse, "coarse")
    assert second == alone  # exactly what an agent that never saw the 0.5 m pair says
    assert second != first
    assert second[1]["gsd_m"] == 2.0 and first[1]["gsd_m"] == 0.5


def test_a_plain_pair_at_two_user_gsds_is_two_entries(tmp_path):
    paths = write_example(tmp_path / "src", seed=7)
    t1, t2 = (np.moveaxis(read_raster(p).bands, 0, -1) for p in (paths.t1, paths.t2))
    shared = Agent(AgentSettings(artefact_dir=tmp_path / "a"))
    half = shared.ask((t1, t2), QUESTION, thread_id="half", gsd_m=0.5)
    two = shared.ask((t1, t2), QUESTION, thread_id="two", gsd_m=2.0)
    alone = Agent(AgentSettings(artefact_dir=tmp_path / "b")).ask((t1, t2), QUESTION, thread_id="two", gsd_m=2.0)
    assert two.text == alone.text and two.evidence.mask == alone.evidence.mask
    assert half.evidence.mask.gsd_m == 0.5 and two.evidence.mask.gsd_m == 2.0


def test_the_key_covers_georeference_gsd_bands_and_mask_options(tmp_path):
    pair = _same_pixels_at(tmp_path, 0.5)
    classical = on_valid_data(ClassicalMaskProvider())
    key = PairKey.of(pair, classical)
    assert key == PairKey.of(pair, on_valid_data(ClassicalMaskProvider()))  # equal settings: one entry
    moved = pair.model_copy(update={"georef": Georef(crs="EPSG:32615", transform=pair.georef.transform)})
    label = write_example(tmp_path / "m", seed=7).mask
    others = [
        PairKey.of(moved, classical),
        PairKey.of(pair.model_copy(update={"gsd_m": 2.0}), classical),
        PairKey.of(pair.model_copy(update={"scaling": "per-band 2-98 % stretch"}), classical),
        PairKey.of(pair.model_copy(update={"t1_path": tmp_path / "other.tif"}), classical),
        PairKey.of(pair, UserMaskProvider(label, kind="levir-mci")),
        PairKey.of(pair, UserMaskProvider(label, kind="binary", binary_category="building")),
    ]
    assert len({key.digest, *(k.digest for k in others)}) == len(others) + 1


def test_a_five_question_thread_costs_one_verification(tmp_path, monkeypatch):
    """The default (classical) provider's key must not change when it loads its calibration on first use."""
    import agent.turn.nodes as nodes

    oriented = []
    real = nodes.orientation_of
    monkeypatch.setattr(nodes, "orientation_of", lambda georef: oriented.append(1) or real(georef))
    paths = write_example(tmp_path / "src", seed=7)
    pair = load_pair(paths.t1, paths.t2)
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "a"))
    questions = ["Has anything changed?", "How many changes?", "and where?", "Describe the changes.", QUESTION]
    for question in questions:
        agent.ask(pair, question, thread_id="five")
    assert agent.store.verifications == 1
    assert len(oriented) == 1  # how the raster faces the map: worked out once per pair, not per step and turn


def test_the_valid_mask_is_hashed_once_per_pair_and_keys_by_content(monkeypatch, tmp_path):
    import tools.pairs as pairs

    t1 = np.full((64, 64, 3), 120, dtype=np.uint8)
    t2 = t1.copy()
    t2[40:50, 40:50] = 30
    valid = np.ones((64, 64), dtype=bool)
    valid[:8] = False
    pair = pairs.pair_from_arrays(t1, t2, valid=valid)
    hashed = []
    real = pairs.hashlib.sha256
    monkeypatch.setattr(pairs.hashlib, "sha256", lambda data=b"": hashed.append(len(data)) or real(data))
    provider = UserMaskProvider(tmp_path / "mask.png")  # never read: only its key is taken
    keys = {PairKey.of(pair, provider).digest for _ in range(3)}
    assert len(keys) == 1 and valid.size not in hashed  # a thread's later turns: no rehash of the valid mask
    again = pairs.pair_from_arrays(t1, t2, valid=valid.copy())
    assert again.valid_id == pair.valid_id  # equal content, another array: the same key
    assert pairs.pair_from_arrays(t1, t2, valid=~valid | (np.arange(64) < 4)[:, None]).valid_id != pair.valid_id


def test_a_threads_pair_object_is_keyed_once_and_an_edited_mask_is_another_key(tmp_path, monkeypatch):
    import graphs.pair_store as store

    paths = write_example(tmp_path / "ex", seed=7)
    pair = load_pair(paths.t1, paths.t2)
    made = []
    real = store.PairKey.of
    monkeypatch.setattr(store.PairKey, "of", lambda *a, **k: made.append(1) or real(*a, **k))
    pairs = store.PairStore(2)
    first = pairs.put(pair, UserMaskProvider(paths.mask, kind="levir-mci"))
    assert pairs.put(pair, UserMaskProvider(paths.mask, kind="levir-mci")) == first and len(made) == 1
    assert pairs.put(load_pair(paths.t1, paths.t2), UserMaskProvider(paths.mask, kind="levir-mci")) == first
    assert len(made) == 2  # an equal pair read again is keyed (to the same entry)
    paths.mask.write_bytes(paths.mask.read_bytes())  # touched: a new modification time, maybe an edit
    os.utime(paths.mask, ns=(0, 1))
    assert pairs.put(pair, UserMaskProvider(paths.mask, kind="levir-mci")) != first
    for seed in (8, 9):  # two other pairs push the first ones out: their remembered keys go with them
        other = write_example(tmp_path / f"ex{seed}", seed=seed)
        pairs.put(load_pair(other.t1, other.t2), UserMaskProvider(other.mask, kind="levir-mci"))
    assert all(key in pairs._entries for key in pairs._by_object.values())
