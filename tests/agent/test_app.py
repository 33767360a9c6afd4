"""The chat page without a browser: its callbacks called directly, then the served page through gradio_client.

What a visitor must be able to rely on: a pair (uploaded or bundled) can be loaded and discussed over
several turns, every answer refreshes the overlay, the evidence and the GeoJSON, bad uploads become a
message in the page (never a traceback), and the server keeps answering while the model is busy.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pyogrio
import pytest
import rasterio
from shapely.geometry import shape

import app
from agent.answering.page_messages import MARKS
from agent.api import Agent
from agent.mask_options import MASK_KINDS
from agent.page.blocks import LatestThreads, build_blocks, make_page
from agent.page.session import ChangePage, Session
from agent.settings import AgentSettings, ModelSettings
from deltavlm.synthetic import write_example
from tests.aoi_reference import write_parcels
from tests.geojson_check import validate_geojson
from tools.georef import load_placed_pair
from tools.pairs import ImagePair, load_pair

SEED = 7
pytestmark = [  # pandas 3 deprecations inside gradio's queue bookkeeping, not ours
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


class ScriptedModel:
    """A DeltaVLM stand-in that disagrees with the mask on counts, and can be made slow."""

    name = "scripted DeltaVLM"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.gate: threading.Event | None = None  # when set: hold every answer until the gate opens
        self.entered = threading.Event()

    def generate(self, pair: ImagePair, question: str, history: Sequence[tuple[str, str]]) -> str:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(timeout=30)
        time.sleep(self.delay_s)
        if "yes or no" in question.lower():
            return "yes"
        if "how many" in question.lower():
            return "there are 9 new buildings"
        return "several new houses were built on the bareland"


def _text(message: dict) -> str:
    """A chat message's text, as a callback returns it or as Gradio sends it back (a list of parts)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


def _last(steps: Iterator[Session]) -> Session:
    return list(steps)[-1]


def check_geojson(path: str | Path, cells: Sequence[str], georef=None, width: int = 256, height: int = 256) -> dict:
    """A valid export (``tests.geojson_check``) whose cell features are exactly ``cells``.

    ``georef`` None reads the file as it says: WGS84 unless it is marked as pixel coordinates.
    """
    collection = json.loads(Path(path).read_text(encoding="utf-8"))
    found = sorted(f["properties"]["cell"] for f in collection["features"] if f["properties"]["feature"] == "cell")
    assert found == sorted(cells)
    if georef is not None or "coordinate_system" in collection:
        validate_geojson(path, georef, width, height)
    else:  # georeferenced, georeference unknown to the caller: WGS84 ranges and the GDAL read
        for feature in collection["features"]:
            lon0, lat0, lon1, lat1 = shape(feature["geometry"]).bounds
            assert -180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90
    return collection


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> ChangePage:
    work = tmp_path_factory.mktemp("page")
    return make_page(AgentSettings(), work_dir=work, example_seeds=(SEED,))


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    """The same synthetic scene as plain PNGs (no georeference), as a user might upload it."""
    return write_example(tmp_path_factory.mktemp("pngs"), seed=SEED, georeferenced=False)


def test_an_example_conversation_updates_the_answer_overlay_evidence_and_geojson(page):
    label = page.example_choices()[0]
    session, t1, t2, mask, kind, category = page.load_example(Session(), label, use_mask=True)
    assert session.pair is not None and session.pair.name == f"synthetic-seed{SEED}"
    example = page.examples[label]
    assert (t1, t2, mask, kind, category) == (
        str(example.t1),
        str(example.t2),
        str(example.mask),
        "levir-mci",
        "none",
    )
    assert "EPSG:32614" in session.pair_summary and "your mask" in session.pair_summary
    assert session.compare_view() == (session.before, session.after) and session.overlay is None
    assert cv2.imread(session.before).shape == cv2.imread(session.after).shape == (512, 512, 3)

    first = _last(page.ask(session, "Has anything changed?"))
    assert [m["role"] for m in first.chat] == ["user", "assistant", "assistant"]
    assert first.chat[1]["content"].startswith("Yes")
    assert first.chat[2]["metadata"]["title"].startswith("Evidence · changed")
    assert "mask:user" in first.chat[2]["content"]
    assert Path(first.overlay).is_file()
    overlay = cv2.imread(first.overlay)
    assert overlay.shape[0] > 512 and overlay.shape[1] >= 512  # enlarged tile plus the legend strip
    marked = first.compare_view()
    assert marked == (first.before_changes, first.after_changes)  # the swipe shows the changes on both dates
    assert cv2.imread(marked[0]).shape == cv2.imread(marked[1]).shape == (512, 512, 3)
    assert "building change" in first.legend and "changed 3×3 cell" in first.legend
    assert page.toggle_changes(first, False).compare_view() == (first.before, first.after)
    assert "Verifier numbers" in first.evidence and "**TL 11.2% ✓**" in first.evidence
    example_pair = load_pair(example.t1, example.t2)
    check_geojson(first.geojson, ["TL", "CC", "BC"], example_pair.georef)
    assert Path(first.geojson).name == f"synthetic-seed{SEED}_turn1_changes.geojson"
    gpkg, shapefile, mask_tif = (Path(d) for d in first.downloads)  # the same layer in every format, and the mask
    assert gpkg.name == f"synthetic-seed{SEED}_turn1_changes.gpkg" and shapefile.suffix == ".zip"
    assert {name for name, kind in pyogrio.list_layers(gpkg)} == {"cells", "objects"}
    assert pyogrio.read_info(gpkg, layer="objects")["geometry_type"] == "MultiPolygon"
    assert pyogrio.read_info(shapefile, layer=f"{shapefile.stem}_cells")["features"] == 3
    with rasterio.open(mask_tif) as ds:
        assert tuple(ds.transform)[:6] == example_pair.georef.transform and ds.crs == example_pair.georef.crs

    second = _last(page.ask(first, "How many new buildings?"))
    assert len(second.chat) == 6 and "3 changed buildings" in second.chat[4]["content"]
    assert second.turns == 2 and second.overlay != first.overlay and Path(second.overlay).is_file()
    assert "objects per category | road 0, building 3" in second.evidence
    assert len(page.agent.history(second.thread_id)) == 2

    follow_up = _last(page.ask(second, "and where?"))
    assert "top-left (TL)" in follow_up.chat[-2]["content"]

    export = _last(page.ask(follow_up, "Export the changed cells as GeoJSON"))
    assert export.geojson and "/tmp" not in export.chat[-2]["content"]  # server paths stay on the server
    assert "see the download panel" in export.chat[-2]["content"]
    assert "The GeoJSON holds 3 changed cells" in export.chat[-2]["content"]
    check_geojson(export.geojson, ["TL", "CC", "BC"], example_pair.georef)
    assert Path(export.geojson).name == f"synthetic-seed{SEED}_turn4_changes.geojson"  # the pair's name and turn


def test_the_question_appears_before_the_answer(page):
    session = page.load_example(Session(), page.example_choices()[0])[0]
    steps = list(page.ask(session, "Describe the changes."))
    assert len(steps) == 2
    assert steps[0].chat[-1]["metadata"]["status"] == "pending" and steps[0].chat[-2]["role"] == "user"
    assert steps[1].chat[-1]["metadata"]["status"] == "done"


def test_uploaded_pngs_and_the_classical_mask(page, pngs):
    session = page.load_files(Session(), str(pngs.t1), str(pngs.t2))
    assert session.pair and session.pair.crs is None and "classical detector" in session.pair_summary
    answered = _last(page.ask(session, "Where did things change?"))
    assert "classical" in answered.evidence and Path(answered.overlay).is_file()
    assert Path(answered.geojson).name.endswith("_turn1_changes_pixel.geojson")
    validate_geojson(answered.geojson, None, 256, 256)  # marked as pixels, drawn upright
    assert "pixel coordinates" in answered.status and "cannot be placed" in session.pair.unplaced


def test_a_new_pair_or_mask_starts_a_new_conversation(page, pngs):
    session = page.load_files(Session(), str(pngs.t1), str(pngs.t2))
    answered = _last(page.ask(session, "Has anything changed?"))
    with_mask = page.load_files(answered, str(pngs.t1), str(pngs.t2), str(pngs.mask), "levir-mci", "none")
    assert with_mask.thread_id != answered.thread_id and with_mask.chat == []
    assert "new conversation" in with_mask.status
    assert "road 0, building 3" in _last(page.ask(with_mask, "How many buildings?")).evidence


def test_new_conversation_keeps_the_pair_and_forgets_the_turns(page):
    session = page.load_example(Session(), page.example_choices()[0])[0]
    answered = _last(page.ask(session, "How many new buildings?"))
    fresh = page.new_conversation(answered)
    assert fresh.pair == answered.pair and fresh.compare_view() == (answered.before, answered.after)
    assert fresh.chat == [] and fresh.overlay is None and fresh.geojson is None
    assert fresh.thread_id != answered.thread_id and page.agent.history(fresh.thread_id) == []
    assert "New conversation" in fresh.status


def _write_png(path: Path, height: int, width: int) -> str:
    cv2.imwrite(str(path), np.full((height, width, 3), 120, np.uint8))
    return str(path)


def test_mismatched_sizes_are_said_in_the_chat_naming_each_file(page, tmp_path):
    t1 = _write_png(tmp_path / "before.png", 64, 64)
    t2 = _write_png(tmp_path / "after.png", 64, 80)
    session = page.load_files(Session(), t1, t2)
    assert session.pair is None and session.chat[-1]["role"] == "assistant"
    reply = session.chat[-1]["content"]
    assert reply.startswith("⚠ **Could not load the pair.**") and "**What to do:**" in reply
    assert "the before (t1) file before.png is 64×64" in reply and "the after (t2) file after.png is 80×64" in reply
    assert str(tmp_path) not in reply and "Traceback" not in reply
    assert "differ in size" in session.status and "What to do" in session.status  # the status line repeats it


def test_dates_with_one_file_name_are_told_apart(page, tmp_path):
    """LEVIR-CD keeps A/x.png and B/x.png: the message must not give both files the same name."""
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    t1 = _write_png(tmp_path / "A" / "x.png", 64, 64)
    t2 = _write_png(tmp_path / "B" / "x.png", 64, 80)
    reply = page.load_files(Session(), t1, t2).chat[-1]["content"]
    assert "the before (t1) file x.png is 64×64" in reply and "the after (t2) file x.png is 80×64" in reply


def test_a_failed_load_keeps_what_was_loaded_and_asking_repeats_the_error(page, pngs, tmp_path):
    loaded = page.load_files(Session(), str(pngs.t1), str(pngs.t2))
    answered = _last(page.ask(loaded, "Has anything changed?"))
    odd = _write_png(tmp_path / "odd.png", 64, 80)
    failed = page.load_files(answered, str(pngs.t1), odd)
    assert failed.pair == answered.pair and failed.thread_id == answered.thread_id
    assert failed.chat[:-1] == answered.chat and "is still loaded" in failed.chat[-1]["content"]
    assert failed.before == answered.before and failed.geojson == answered.geojson
    again = _last(page.ask(failed, "Has anything changed?"))
    assert again.turns == answered.turns + 1 and again.thread_id == answered.thread_id
    nothing = page.load_files(Session(), odd, str(pngs.t2))
    asked = _last(page.ask(nothing, "Has anything changed?"))
    assert asked.chat[-2] == {"role": "user", "content": "Has anything changed?"}
    assert "No pair is loaded" in asked.chat[-1]["content"] and "differ in size" in asked.chat[-1]["content"]
    assert "load a pair first" not in asked.status and "differ in size" in asked.status


def test_a_file_that_is_not_an_image(page, tmp_path, pngs):
    fake = tmp_path / "notes.png"
    fake.write_text("these are not pixels")
    session = page.load_files(Session(), str(fake), str(pngs.t2))
    assert session.pair is None and "not a readable image" in session.status and "notes.png" in session.status
    assert "upload a PNG, JPEG or (Geo)TIFF" in session.chat[-1]["content"]


def test_files_over_the_limits(tmp_path, pngs):
    small = ChangePage(
        Agent(AgentSettings(artefact_dir=tmp_path / "a")), work_dir=tmp_path / "p", max_file_mb=0.01, example_seeds=()
    )
    too_big = small.load_files(Session(), str(pngs.t1), str(pngs.t2))
    assert too_big.pair is None and "over this page's limit of 0.01 MB" in too_big.status
    small.max_file_mb, small.max_pixels = 200, 1000
    too_many_pixels = small.load_files(Session(), str(pngs.t1), str(pngs.t2))
    assert too_many_pixels.pair is None and "over the limit of 1,000" in too_many_pixels.status


def test_a_mask_of_the_wrong_size_is_caught_on_upload(page, pngs, tmp_path):
    mask = _write_png(tmp_path / "mask.png", 32, 32)
    session = page.load_files(Session(), str(pngs.t1), str(pngs.t2), mask, "binary", "building")
    assert session.pair is None and session.status.startswith("⚠") and "mask" in session.status


def test_one_file_or_none(page, pngs):
    assert "after (t2)" in page.load_files(Session(), str(pngs.t1), None).status
    assert "before (t1)" in page.load_files(Session(), None, str(pngs.t2)).status
    assert page.load_files(Session(), None, None).pair is None


def test_asking_without_a_pair_or_question(page):
    refused = _last(page.ask(Session(), "Has anything changed?"))
    assert refused.draft == "Has anything changed?" and [m["role"] for m in refused.chat] == ["user", "assistant"]
    assert "No pair is loaded yet" in refused.chat[-1]["content"] and "No pair is loaded" in refused.status
    session = page.load_example(Session(), page.example_choices()[0])[0]
    empty = _last(page.ask(session, "   "))
    assert empty.chat == [] and "Type a question" in empty.status
    unknown = page.load_example(Session(), "no such example")[0]
    assert unknown.status.startswith("⚠") and "no example called" in unknown.chat[-1]["content"]


def test_an_agent_failure_is_reported_and_the_page_keeps_working(page, monkeypatch):
    session = page.load_example(Session(), page.example_choices()[0])[0]

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    with monkeypatch.context() as patch:
        patch.setattr(page.agent, "ask", broken)
        failed = _last(page.ask(session, "Has anything changed?"))
    assert failed.chat[-1]["content"].startswith("⚠") and "disk on fire" in failed.status
    assert _last(page.ask(failed, "Has anything changed?")).chat[-2]["content"].startswith(("Yes", "Probably yes"))


def test_an_overlong_question_is_refused_in_the_chat(page):
    session = page.load_example(Session(), page.example_choices()[0])[0]
    refused = _last(page.ask(session, "why? " * 2000))
    assert refused.chat[-1]["content"].startswith("⚠") and "limit" in refused.status


def test_the_model_path_shows_perception_model_reply_and_conflicts(tmp_path):
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "a"), vlm_backend=ScriptedModel())
    page = ChangePage(agent, work_dir=tmp_path / "p", example_seeds=(SEED,))
    assert "DeltaVLM via scripted DeltaVLM" in page.perception and "--endpoint" in page.config_help()
    session = page.load_example(Session(), page.example_choices()[0])[0]
    answered = _last(page.ask(session, "How many new buildings?"))
    assert "#### DeltaVLM" in answered.evidence and "there are 9 new buildings" in answered.evidence
    assert "#### Conflicts" in answered.evidence and "count.building" in answered.evidence
    assert "**DeltaVLM:** said" in answered.chat[-1]["content"] and "**Conflicts:**" in answered.chat[-1]["content"]


def test_verifier_only_perception_is_stated(page):
    assert page.perception.startswith("verifier-only")


def test_model_flags_map_to_settings(monkeypatch):
    monkeypatch.setenv("CHANGEAGENT_TOKEN", "secret")
    assert ModelSettings.choose().backend == "none"
    tiny = ModelSettings.choose("tiny", "/w/ckpt.pt")
    assert (tiny.backend, tiny.config, str(tiny.checkpoint)) == ("in-process", "tiny", "/w/ckpt.pt")
    http = ModelSettings.choose("tiny", endpoint="http://gpu:8000", timeout_s=5)
    assert (http.backend, http.endpoint, http.token, http.timeout_s) == ("http", "http://gpu:8000", "secret", 5)
    args = app.build_parser().parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 7860)
    assert app.is_loopback("127.0.0.1") and app.is_loopback("localhost") and app.is_loopback("::1")
    assert not app.is_loopback("0.0.0.0") and not app.is_loopback("example.org")
    assert set(MASK_KINDS) == {"auto", "levir-mci", "index", "binary"}


def test_the_mask_controls_reread_the_mask_and_keep_the_conversation(page, shared_data):
    name = "train_36_0512_0512"
    files = [str(shared_data / folder / f"{name}.png") for folder in ("levircd/A", "levircd/B", "levircd/label")]
    session = page.load_files(Session(), *files)  # auto: 0/255 is change with no category
    hint = session.chat[-1]["content"]  # said at upload, before any count question fails
    assert "has two values" in hint and "**Mask category**" in hint and "Pair loaded" in session.status
    refused = _last(page.ask(session, "How many new buildings?"))
    assert "Mask category → building" in refused.chat[-2]["content"]  # the hint names the page's control
    assert "--mask-category building" in refused.chat[-2]["content"]
    title = refused.chat[-1]["metadata"]["title"]
    assert "confidence 1.00" not in title and "no count given" in title
    assert "confidence 1.00" not in refused.evidence.split("\n")[1]
    reread = page.reread_mask(refused, "auto", "building")
    assert reread.thread_id == refused.thread_id and reread.chat[:-1] == refused.chat  # nothing wiped
    assert (
        reread.chat[-1]["content"].startswith("↻ **Mask re-read:**") and "changed objects" in reread.chat[-1]["content"]
    )
    assert reread.pair.mask_category == "building" and "as building change" in reread.pair_summary
    assert reread.after_changes != refused.after_changes  # the pictures follow the new reading
    counted = _last(page.ask(reread, "How many new buildings?"))
    assert "objects per category | road 0, building" in counted.evidence and counted.turns == 2
    assert "confidence 1.00" in counted.chat[-1]["metadata"]["title"]
    unchanged = page.reread_mask(counted, "auto", "building")
    assert unchanged.chat == counted.chat
    wrong = page.reread_mask(counted, "index", "none")  # 255 is no class index: refused, the reading stays
    assert wrong.chat[-1]["content"].startswith("⚠ **The mask cannot be read that way.** The mask file")
    assert wrong.pair == counted.pair and wrong.thread_id == counted.thread_id


def test_a_plain_pair_is_placed_from_the_page_and_the_conversation_goes_on(page, pngs):
    session = page.load_files(Session(), str(pngs.t1), str(pngs.t2), str(pngs.mask), "levir-mci", "none")
    answered = _last(page.ask(session, "Export the changed cells as GeoJSON"))
    validate_geojson(answered.geojson, None, 256, 256)
    bounds, crs = "35.50,33.88,35.52,33.90", "EPSG:4326"
    placed = page.place(answered, bounds, crs, None)
    assert placed.thread_id == answered.thread_id and placed.chat[:-1] == answered.chat
    assert placed.chat[-1]["content"].startswith("◎") and "EPSG:4326" in placed.pair_summary
    exported = _last(page.ask(placed, "Export the changed cells as GeoJSON"))
    georef = load_placed_pair(pngs.t1, pngs.t2, bounds=bounds, crs=crs).georef
    collection = validate_geojson(exported.geojson, georef, 256, 256)
    assert collection["features"] and Path(exported.geojson).name == "t1_turn2_changes.geojson"
    bad = page.place(exported, "1,2,3", crs, None)
    assert bad.chat[-1]["content"].startswith("⚠ **Could not place the pair.**") and bad.pair == exported.pair


def test_the_ground_sampling_distance_reaches_the_agent(page, pngs):
    """A plain pair has no pixel size; the visitor's GSD turns the changed area into square metres."""
    session = page.load_files(Session(), str(pngs.t1), str(pngs.t2))
    unknown = _last(page.ask(session, "How large is the changed area in square metres?"))
    reply = next(m["content"] for m in reversed(unknown.chat) if m["role"] == "assistant" and "metadata" not in m)
    assert "pixel size of this image is unknown" in reply.lower()
    with_gsd = page.place(session, "", "", 0.5)
    assert with_gsd.pair.gsd_m == 0.5 and "0.5 m per pixel" in with_gsd.pair_summary
    answered = _last(page.ask(with_gsd, "How large is the changed area in square metres?"))
    reply = next(m["content"] for m in reversed(answered.chat) if m["role"] == "assistant" and "metadata" not in m)
    assert "m²" in reply.split(". ")[0], reply


def test_a_finer_grid_on_the_beirut_scene(page, shared_data):
    city = shared_data / "oscd" / "beirut"
    session = page.load_files(
        Session(), str(city / "t1.tif"), str(city / "t2.tif"), str(city / "label.tif"), "binary", "building"
    )
    assert session.pair is not None, session.status
    early = page.set_grid(session, 9)
    assert early.fine_grid == 9 and "after the first answer" in early.status
    answered = _last(page.ask(early, "Where are the new buildings?"))
    assert "9×9 grid" in answered.legend
    coarse = page.set_grid(answered, 0)
    assert coarse.after_changes != answered.after_changes and "9×9" not in coarse.legend
    assert cv2.imread(answered.after_changes).shape[:2] == (1180, 1070)  # full resolution: the swipe zooms into it


def test_real_levir_cd_pair_with_its_label_and_the_odd_pair(page, shared_data):
    name = "train_36_0512_0512"
    session = page.load_files(
        Session(),
        str(shared_data / "levircd/A" / f"{name}.png"),
        str(shared_data / "levircd/B" / f"{name}.png"),
        str(shared_data / "levircd/label" / f"{name}.png"),
        "binary",
        "building",
    )
    assert session.pair is not None, session.status
    answered = _last(page.ask(session, "Where did buildings change?"))
    # manifest: cells over 5% are TL TC TR CC CR BR (CL is 2%)
    assert "TL, TC, TR, CC, CR, BR" in answered.evidence
    odd = page.load_files(
        Session(), str(shared_data / "levircd/A/test_113_0256.png"), str(shared_data / "levircd/B/test_113_0256.png")
    )
    assert odd.pair is None and "differ in size" in odd.status and "768×383" in odd.status


# ------------------------------------------------------------------------------- the served page


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The page served on a free localhost port, with a model that can be slowed down."""
    work = tmp_path_factory.mktemp("served")
    model = ScriptedModel()
    agent = Agent(AgentSettings(artefact_dir=work / "agent"), vlm_backend=model)
    page = ChangePage(agent, work_dir=work / "page", example_seeds=(SEED,))
    blocks = build_blocks(page)
    assert blocks.analytics_enabled is False  # the page calls no one: no usage analytics about its visitors
    port = _free_port()
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", model, page
    finally:
        blocks.close()


def test_the_served_page_answers_through_gradio_client(served, pngs, page_client):
    from gradio_client import handle_file

    url, _, _ = served
    client = page_client(url)
    label = client.view_api(return_format="dict", print_info=False)
    assert {"/load_pair", "/load_example", "/ask", "/new_conversation"} <= set(label["named_endpoints"])
    status, *_ = client.predict(
        handle_file(str(pngs.t1)), handle_file(str(pngs.t2)), None, "auto", "none", "", "", None, api_name="/load_pair"
    )
    assert "Pair loaded" in status
    status, chat, compare, legend, full_size, evidence, geojson, downloads, draft = client.predict(
        "Has anything changed?", api_name="/ask"
    )
    assert sorted(Path(d).suffix for d in downloads) == [".gpkg", ".tif", ".zip"]
    assert _text(chat[0]) == "Has anything changed?" and _text(chat[1]).startswith(("Yes", "Probably yes"))
    assert all(Path(picture).is_file() for picture in compare) and draft == ""
    assert "change" in legend and Path(full_size[0]).name.endswith("_overlay.png")
    assert "#### DeltaVLM" in evidence
    assert json.loads(Path(geojson).read_text())["type"] == "FeatureCollection"
    status, chat, *_ = client.predict("How many buildings?", api_name="/ask")
    assert len(chat) == 6  # the session (server-side state) kept the first turn


def test_the_page_stays_responsive_while_the_model_answers(served, page_client):
    url, model, page = served
    busy, other = page_client(url), page_client(url)
    assert "Pair loaded" in busy.predict(page.example_choices()[0], True, api_name="/load_example")[0]
    model.delay_s = 3.0
    try:
        job = busy.submit("Describe the changes.", api_name="/ask")
        time.sleep(0.5)
        started = time.perf_counter()
        status, *_ = other.predict(api_name="/new_conversation")
        waited = time.perf_counter() - started
        assert not job.done() and waited < 2.0, f"the page was blocked for {waited:.1f} s"
        assert status  # the welcome text for a session without a pair
        result = job.result(timeout=30)
        assert "#### DeltaVLM" in result[5]
    finally:
        model.delay_s = 0.0


def test_a_pair_loaded_while_an_answer_runs_is_not_overwritten_by_that_answer(served, pngs, page_client):
    from gradio_client import handle_file

    url, model, page = served
    client = page_client(url)
    assert "Pair loaded" in client.predict(page.example_choices()[0], True, api_name="/load_example")[0]
    model.gate, model.entered = threading.Event(), threading.Event()
    try:
        job = client.submit("Describe the changes.", api_name="/ask")
        assert model.entered.wait(timeout=30)  # the answer is under way, held at the gate
        status, *_ = client.predict(
            handle_file(str(pngs.t1)),
            handle_file(str(pngs.t2)),
            None,
            "auto",
            "none",
            "",
            "",
            None,
            api_name="/load_pair",
        )
        assert "Pair loaded" in status and not job.done()
        model.gate.set()
        job.result(timeout=30)
    finally:
        model.gate.set()
        model.gate = None
    # The tab still shows the uploaded pair, with none of the example's conversation.
    status, chat, *_ = client.predict("Has anything changed?", api_name="/ask")
    assert Path(pngs.t1).stem in status
    assert [_text(m) for m in chat[:1]] == ["Has anything changed?"]


def test_a_new_pair_resets_the_mask_and_its_reading(served, pngs, page_client):
    from gradio_client import handle_file

    url, _, page = served
    client = page_client(url)
    loaded = client.predict(page.example_choices()[0], True, api_name="/load_example")
    # the outputs end with the mask kind, its category and the areas-of-interest control (cleared)
    assert "Pair loaded" in loaded[0] and loaded[-3] == "levir-mci" and loaded[-1] is None
    example_mask = page.examples[page.example_choices()[0]].mask
    *_, mask, kind, category, bounds, crs, gsd, aoi = client.predict(
        handle_file(str(pngs.t1)),
        handle_file(str(pngs.t2)),
        handle_file(str(example_mask)),
        "binary",
        "building",
        "35.50,33.88,35.52,33.90",
        "EPSG:4326",
        0.5,
        api_name="/load_pair",
    )
    # the old pair's mask, its reading, its placing and its areas of interest do not carry over to the new pair
    assert (mask, kind, category, bounds, crs, gsd, aoi) == (None, "auto", "none", "", "", None, None)


def test_latest_threads_are_per_tab_bounded_and_forget_closed_tabs():
    latest = LatestThreads(max_tabs=2)
    latest.record("tab-a", "t1")
    assert not latest.superseded("tab-a", "t1") and latest.superseded("tab-a", "t0")
    assert not latest.superseded("tab-unknown", "anything") and not latest.superseded(None, "t1")
    latest.record("tab-b", "t2")
    latest.record("tab-c", "t3")  # over the bound: the oldest tab (a) loses its protection, nothing breaks
    assert not latest.superseded("tab-a", "t0") and latest.superseded("tab-c", "t2")
    latest.forget("tab-c")
    latest.forget(None)
    assert not latest.superseded("tab-c", "t2")


class _FakeBlocks:
    """Stands in for the built page so ``app.main`` can be run without serving anything."""

    def __init__(self) -> None:
        self.launched: dict = {}

    def launch(self, **kwargs) -> None:
        self.launched = kwargs


@pytest.mark.parametrize(
    ("host", "flags", "token", "warned", "login"),
    [
        ("127.0.0.1", [], "", False, False),
        ("0.0.0.0", ["--force-public"], "", True, False),
        ("0.0.0.0", [], "s3cret", False, True),
    ],
)
def test_app_main_launches_with_the_flags_and_guards_beyond_localhost(
    monkeypatch, caplog, tmp_path, host, flags, token, warned, login
):
    blocks = _FakeBlocks()
    monkeypatch.setattr(app, "build_blocks", lambda page: blocks)
    monkeypatch.setenv("CHANGEAGENT_TOKEN", token)
    argv = ["--host", host, "--port", "7999", "--examples", "3", "--max-file-mb", "5", "--artefacts", str(tmp_path)]
    with caplog.at_level("WARNING", logger="changeagent.app"):
        assert app.main([*argv, *flags]) == 0
    assert blocks.launched["server_name"] == host and blocks.launched["server_port"] == 7999
    assert blocks.launched["max_file_size"] == 5 * 1024 * 1024
    assert "allowed_paths" not in blocks.launched  # the page's files reach the browser through its components only
    assert ("with no login" in caplog.text) is warned
    check = blocks.launched["auth"]
    assert (check is not None) is login
    if login:
        assert check("anyone", "s3cret") and not check("anyone", "guess")


def test_app_main_refuses_an_open_page_beyond_localhost(monkeypatch, capsys):
    monkeypatch.setattr(app, "build_blocks", lambda page: pytest.fail("must not build a page"))
    monkeypatch.delenv("CHANGEAGENT_TOKEN", raising=False)
    assert app.main(["--host", "0.0.0.0", "--examples"]) == 2
    assert "CHANGEAGENT_TOKEN" in capsys.readouterr().err


def test_app_main_reports_a_bad_model_configuration(monkeypatch, capsys):
    monkeypatch.setattr(app, "build_blocks", lambda page: pytest.fail("must not build a page"))
    assert app.main(["--model-config", "no-such-config", "--examples"]) == 2
    assert "app.py: error:" in capsys.readouterr().err


def test_page_markers_render_without_an_emoji_font():
    """Markers are text glyphs (no emoji-only code points, no emoji variation selector); where fontconfig is
    installed, a plain text font family holds each of them."""
    for mark in MARKS:
        assert all(ord(c) < 0x1F000 and c not in "\u2705\ufe0f" for c in mark), mark
        if shutil.which("fc-list"):
            fonts = subprocess.run(["fc-list", f":charset={ord(mark):x}", "family"], capture_output=True, text=True)
            assert fonts.stdout.strip(), f"no installed font draws {mark!r}"


def test_areas_of_interest_upload_questions_and_download(page, pngs, shared_data, tmp_path):
    city = shared_data / "oscd" / "bercy"
    if not (city / "t1.tif").is_file():
        pytest.skip("OSCD Bercy not in the shared data")
    pair = load_pair(city / "t1.tif", city / "t2.tif")
    parcels = tmp_path / "parcels.gpkg"
    write_parcels(parcels, pair.georef, "EPSG:32631")
    files = [str(city / "t1.tif"), str(city / "t2.tif"), str(city / "label.tif"), "binary", "building"]
    session = page.load_files(Session(), *files)
    loaded = page.set_aoi(session, str(parcels))
    assert "Areas of interest loaded" in loaded.chat[-1]["content"] and "3 polygons" in loaded.chat[-1]["content"]
    answered = _last(page.ask(loaded, "Which parcels changed?"))
    assert "1 of the 3 areas of interest changed" in answered.chat[-2]["content"]
    aoi_layer = [d for d in answered.downloads if d.endswith("_areas_of_interest.gpkg")]
    assert aoi_layer and pyogrio.read_info(aoi_layer[0], layer="aois")["features"] == 3
    remask = page.load_files(answered, *files[:2], files[2], "binary", None)  # a new mask keeps the AOI
    assert remask.pair.aoi == str(parcels)

    plain = page.load_files(Session(), str(pngs.t1), str(pngs.t2))  # a plain pair cannot take them
    refused = page.set_aoi(plain, str(parcels))
    assert refused.chat[-1]["content"].startswith("⚠ **The areas of interest cannot be used.**")
    assert "no georeference" in refused.chat[-1]["content"] and refused.pair.aoi is None
    removed = page.set_aoi(loaded, None)
    assert removed.pair.aoi is None and removed.thread_id != loaded.thread_id
