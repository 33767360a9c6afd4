"""The page in a real browser: ``python app.py`` on a free localhost port, driven by headless Chromium.

Uses the system Chromium (Debian ``chromium``) through Playwright's Python package; Playwright's own
browser download is never used. Without either, the test is skipped and says what to install.
Covered: an error said in the chat; a shared/data LEVIR-CD pair uploaded and asked about, its mask re-read from
the mask control in the same conversation; the swipe (drag, a wheel zoom that reaches 8×), the changes toggle and
the 6×6 grid; a GeoTIFF pair whose GeoJSON download validates and lands inside the raster's bounds, and whose
GeoPackage download has one geometry type per layer; areas of interest uploaded beside a shared OSCD pair, asked
about, and downloaded as the visitor's layer with each polygon's figures. Screenshots of each step land in
``out/test-artefacts/`` (git-ignored; CI keeps the folder as artefacts).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyogrio
import pytest

from deltavlm.synthetic import generate_pair, write_example
from tests.aoi_reference import write_parcels
from tests.geojson_check import validate_geojson
from tools.pairs import load_pair

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "out" / "test-artefacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MAX_FILE_MB = 1
SEED = 11


def _chromium() -> str:
    found = os.environ.get("CHANGEAGENT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("headless Chromium not found: apt-get install -y chromium (or set CHANGEAGENT_CHROMIUM)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """``python app.py`` as a user starts it, on a free port, with a small upload limit to test it."""
    _chromium()  # skip before starting a server nobody can look at
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "app.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), "--examples", "7", "--max-file-mb", str(MAX_FILE_MB)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"app.py exited with {process.returncode}:\n{log.read_text()}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"app.py did not answer on {url} within 90 s:\n{log.read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    assert "Traceback" not in log.read_text(), log.read_text()


@contextlib.contextmanager
def _browser(tmp_path, **options):
    """A headless Chromium page on a new, empty profile: no state from earlier runs, nothing written to $HOME."""
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1600},
            **options,
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@pytest.fixture
def browser_page(tmp_path):
    with _browser(tmp_path, accept_downloads=True) as page:
        yield page


def _upload(page, elem_id: str, path: Path) -> None:
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))


def _status(page) -> str:
    return page.locator("#status").inner_text()


def _wait_text(page, elem_id: str, text: str, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(
        "([id, text]) => document.querySelector('#' + id).innerText.includes(text)",
        arg=[elem_id, text],
        timeout=timeout_ms,
    )


def _wait_status(page, text: str, timeout_ms: int = 30_000) -> None:
    _wait_text(page, "status", text, timeout_ms)


def _ask(page, question: str, expected: str) -> None:
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    _wait_text(page, "chat", expected, 60_000)


def _choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def _swipe_images(page) -> list[str]:
    return page.evaluate("() => [...document.querySelectorAll('#compare img')].map(img => img.getAttribute('src'))")


def _shot(page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTEFACTS / name)


def _fresh(page, server: str) -> None:
    page.goto(server)
    page.wait_for_selector("#t1 input[type=file]", state="attached")


def test_errors_are_said_in_the_chat(server, browser_page, tmp_path):
    page = browser_page
    pair = write_example(tmp_path / "pair", seed=SEED)
    odd = tmp_path / "small.png"
    write_example(tmp_path / "small", seed=3, size=128, georeferenced=False).t1.rename(odd)
    big = tmp_path / "huge.tif"
    big.write_bytes(os.urandom((MAX_FILE_MB + 1) * 1024 * 1024))
    _fresh(page, server)
    assert "verifier-only" in page.locator("#perception").inner_text()

    _upload(page, "t1", pair.t1)
    _wait_status(page, "Now upload the after (t2) image")
    _upload(page, "t2", odd)
    _wait_text(page, "chat", "Could not load the pair")
    chat = page.locator("#chat").inner_text()
    assert "the before (t1) file t1.tif is 256×256" in chat and "the after (t2) file small.png is 128×128" in chat
    assert "What to do" in chat and "differ in size" in _status(page) and "Traceback" not in chat
    page.locator("#question textarea").fill("Has anything changed?")
    page.locator("#ask").click()
    _wait_text(page, "chat", "so I cannot answer yet")  # the error is repeated, not replaced
    assert "differ in size" in page.locator("#chat").inner_text().split("so I cannot answer yet")[-1]
    assert "load a pair first" not in _status(page) and "differ in size" in _status(page)
    _shot(page, tmp_path, "error_in_chat.png")

    page.locator("#t2 button[aria-label='Clear']").first.click()
    _upload(page, "t2", big)
    page.wait_for_function(
        "() => document.body.innerText.includes('exceed the maximum allowed size')",
        timeout=15_000,
    )


def test_a_french_browser_is_answered_in_french(server, tmp_path):
    """Chromium in French sends Accept-Language fr-FR: the welcome, the status and a refused pair are French; the
    tool's detail inside the refusal stays as the tool wrote it."""
    pair = write_example(tmp_path / "pair", seed=SEED)
    odd = tmp_path / "small.png"
    write_example(tmp_path / "small", seed=3, size=128, georeferenced=False).t1.rename(odd)
    with _browser(tmp_path, locale="fr-FR") as page:
        _fresh(page, server)
        _wait_status(page, "Chargez une paire pour commencer")
        _upload(page, "t1", pair.t1)
        _wait_status(page, "Envoyez maintenant l'image après (t2).")
        _upload(page, "t2", odd)
        _wait_text(page, "chat", "Impossible de charger la paire.")
        chat = page.locator("#chat").inner_text()
        assert "Que faire :" in chat and "the after (t2) file small.png is 128×128" in chat
        assert "Could not load" not in chat and "Impossible de charger la paire." in _status(page)
        _shot(page, tmp_path, "french_visitor.png")


def test_a_shared_levir_cd_pair_the_mask_control_and_the_swipe(server, browser_page, tmp_path, shared_data):
    page = browser_page
    name = "train_36_0512_0512"
    _fresh(page, server)
    _upload(page, "t1", shared_data / "levircd/A" / f"{name}.png")
    _upload(page, "t2", shared_data / "levircd/B" / f"{name}.png")
    _wait_status(page, "Pair loaded")
    _upload(page, "mask", shared_data / "levircd/label" / f"{name}.png")
    _wait_status(page, "your mask")
    page.wait_for_function("() => document.querySelectorAll('#compare img').length == 2")
    dates = _swipe_images(page)
    assert dates[0].endswith("before.png") and dates[1].endswith("after.png")

    _ask(page, "How many new buildings?", "Mask category → building")  # the hint names the control
    chat = page.locator("#chat").inner_text()  # a refusal rates nothing: no "confidence 1.00" on it
    assert "Evidence · count · no count given" in chat and "count · confidence" not in chat
    _choose(page, "mask-category", "building")
    _wait_text(page, "chat", "Mask re-read")
    assert "How many new buildings?" in page.locator("#chat").inner_text()  # the conversation was not wiped
    _ask(page, "How many new buildings?", "changed building")
    _wait_text(page, "evidence", "road 0, building")

    page.wait_for_function("() => document.querySelector('#compare img')?.getAttribute('src').includes('changes')")
    marked = _swipe_images(page)
    assert all("_changes" in src for src in marked)
    assert "building change" in page.locator("#legend").inner_text()
    handle = page.locator("#compare [data-testid=slider] .icon-wrap")
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    start = page.evaluate("() => document.querySelectorAll('#compare img')[1].style.clipPath")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] - 200, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    swiped = page.evaluate("() => document.querySelectorAll('#compare img')[1].style.clipPath")
    assert swiped != start, f"the swipe did not move: {start} → {swiped}"
    _shot(page, tmp_path, "swipe_with_changes.png")

    page.locator("#overlay-toggle input").click()
    page.wait_for_function("() => !document.querySelector('#compare img').getAttribute('src').includes('changes')")
    assert [src.rsplit("/", 1)[-1] for src in _swipe_images(page)] == ["before.png", "after.png"]
    _shot(page, tmp_path, "swipe_without_changes.png")
    page.locator("#overlay-toggle input").click()
    page.wait_for_function("() => document.querySelector('#compare img').getAttribute('src').includes('changes')")

    _choose(page, "grid", "6×6 finer grid")  # the overlay follows the chosen grid: no 3×3 boxes over it
    _wait_text(page, "legend", "6×6 grid")
    assert "3×3" not in page.locator("#legend").inner_text()
    page.wait_for_function("() => document.querySelector('#compare img').getAttribute('src').includes('grid6')")
    _shot(page, tmp_path, "grid_6x6.png")

    page.locator("#compare .slider-wrap").hover()
    for _ in range(10):  # ten mouse-wheel notches (100 px each) pass 8×: about 1.28× per notch
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(30)
    scale = page.evaluate(
        "() => parseFloat((document.querySelector('#compare img').style.transform.match(/scale\\(([\\d.]+)/) "
        "|| [0, 1])[1])"
    )
    assert scale >= 8, f"ten wheel notches zoomed only {scale:.2f}×"
    _shot(page, tmp_path, "shared_pair_zoomed.png")


def test_a_geotiff_pair_and_its_geojson_download(server, browser_page, tmp_path):
    page = browser_page
    pair = write_example(tmp_path / "pair", seed=SEED)
    _fresh(page, server)
    _upload(page, "t1", pair.t1)
    _upload(page, "t2", pair.t2)
    _wait_status(page, "Pair loaded")
    assert "EPSG:32614" in _status(page)
    _choose(page, "mask-kind", "levir-mci")
    _upload(page, "mask", pair.mask)
    _wait_status(page, "levir-mci")

    _ask(page, "Has anything changed?", "Yes")
    _ask(page, "How many new buildings?", "changed building")
    evidence = page.locator("#evidence").inner_text()
    truth = generate_pair(SEED, 256, change=True).counts
    assert "Verifier numbers" in evidence and f"road {truth['road']}, building {truth['building']}" in evidence
    _ask(page, "Export the changed cells as GeoJSON", "The GeoJSON holds")

    with page.expect_download() as download_info:
        page.locator("#geojson a").first.click()
    download = download_info.value
    assert download.suggested_filename == "t1_turn3_changes.geojson"  # the pair's name and the turn
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    georef = load_pair(pair.t1, pair.t2).georef
    collection = validate_geojson(saved, georef, 256, 256)  # valid, and GDAL reads it inside the raster's bounds
    cells = sorted(f["properties"]["cell"] for f in collection["features"] if f["properties"]["feature"] == "cell")
    assert cells == sorted(_cells(evidence)) and collection["changeagent"]["pair"] == "t1"
    _shot(page, tmp_path, "geotiff_pair_geojson.png")

    gpkg = page.locator("#downloads tr", has_text=".gpkg").locator("a").first
    with page.expect_download() as download_info:
        gpkg.click()
    download = download_info.value
    assert download.suggested_filename == "t1_turn3_changes.gpkg"
    download.save_as(tmp_path / download.suggested_filename)
    layers = dict(pyogrio.list_layers(tmp_path / download.suggested_filename))
    assert layers == {"cells": "MultiPolygon", "objects": "MultiPolygon"}  # one geometry type per layer
    features = pyogrio.read_info(tmp_path / download.suggested_filename, layer="cells")["features"]
    assert features == len(cells)

    page.locator("#new-conversation").click()
    _wait_status(page, "New conversation started")
    assert "changed building" not in page.locator("#chat").inner_text()


def _cells(evidence: str) -> list[str]:
    """The changed cells the evidence table lists (the row ``changed cells | TL, CC``)."""
    for line in evidence.splitlines():
        if line.startswith("changed cells"):
            return [cell.strip() for cell in line.split("\t")[-1].split(",") if cell.strip() != "none"]
    raise AssertionError(f"no changed cells in the evidence:\n{evidence}")


def test_areas_of_interest_uploaded_asked_and_downloaded(server, browser_page, tmp_path, shared_data):
    city = shared_data / "oscd" / "bercy"
    if not (city / "t1.tif").is_file():
        pytest.skip("OSCD Bercy not in the shared data")
    parcels = tmp_path / "parcels.gpkg"
    write_parcels(parcels, load_pair(city / "t1.tif", city / "t2.tif").georef, "EPSG:32631")
    page = browser_page
    _fresh(page, server)
    _upload(page, "t1", city / "t1.tif")
    _upload(page, "t2", city / "t2.tif")
    _wait_status(page, "Pair loaded")
    _upload(page, "aoi", parcels)
    _wait_text(page, "chat", "Areas of interest loaded")
    assert "3 polygons" in page.locator("#chat").inner_text()
    _ask(page, "Which parcels changed?", "areas of interest")
    chat = page.locator("#chat").inner_text()
    assert "of the 3 areas of interest" in chat and "outside lies outside the pair" in chat.lower()
    _shot(page, tmp_path, "areas_of_interest.png")

    layer = page.locator("#downloads tr", has_text="areas_of_interest").locator("a").first
    with page.expect_download() as download_info:
        layer.click()
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    assert saved.name.endswith("_areas_of_interest.gpkg")
    assert dict(pyogrio.list_layers(saved)) == {"aois": "MultiPolygon"}
    assert pyogrio.read_info(saved, layer="aois")["features"] == 3
