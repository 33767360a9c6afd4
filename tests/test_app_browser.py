"""The page in a real browser: ``python app.py`` on a free localhost port, driven by headless Chromium.

Uses the system Chromium (Debian ``chromium``) through Playwright's Python package; Playwright's own
browser download is never used. Without either, the test is skipped and says what to install.
The screenshot lands in ``out/test-artefacts/app_browser.png`` (and in the test's tmp folder).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from deltavlm.synthetic import generate_pair, write_example
from tests.test_app import check_geojson

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
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


@pytest.fixture
def browser_page(tmp_path):
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    with sync_api.sync_playwright() as playwright:
        # A new, empty profile per test: no state from earlier runs, nothing written to $HOME.
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1600},
            accept_downloads=True,
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _upload(page, elem_id: str, path: Path) -> None:
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))


def _status(page) -> str:
    return page.locator("#status").inner_text()


def _wait_status(page, text: str, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(
        "text => document.querySelector('#status').innerText.includes(text)", arg=text, timeout=timeout_ms
    )


def _ask(page, question: str, expected: str) -> None:
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    page.wait_for_function(
        "text => document.querySelector('#chat').innerText.includes(text)", arg=expected, timeout=60_000
    )


def test_upload_chat_overlay_and_geojson_in_a_browser(server, browser_page, tmp_path):
    page = browser_page
    pair = write_example(tmp_path / "pair", seed=SEED)
    odd = tmp_path / "small.png"
    write_example(tmp_path / "small", seed=3, size=128, georeferenced=False).t1.rename(odd)
    big = tmp_path / "huge.tif"
    big.write_bytes(os.urandom((MAX_FILE_MB + 1) * 1024 * 1024))

    page.goto(server)
    page.wait_for_selector("#t1 input[type=file]", state="attached")
    assert "verifier-only" in page.locator("#perception").inner_text()

    # Bad uploads become messages in the page, and the page keeps working.
    _upload(page, "t1", pair.t1)
    _wait_status(page, "Now upload the after (t2) image")
    _upload(page, "t2", odd)
    _wait_status(page, "differ in size")
    assert "Traceback" not in _status(page)
    page.locator("#t2 button[aria-label='Clear']").first.click()
    _upload(page, "t2", big)
    page.wait_for_function(
        "() => document.body.innerText.includes('exceed the maximum allowed size')",
        timeout=15_000,
    )

    # A good pair and its labelled mask, read as LEVIR-MCI values.
    page.reload()
    page.wait_for_selector("#t1 input[type=file]", state="attached")
    _upload(page, "t1", pair.t1)
    _upload(page, "t2", pair.t2)
    _wait_status(page, "Pair loaded")
    page.locator("#mask-kind input").click()
    page.get_by_role("option", name="levir-mci").click()
    _upload(page, "mask", pair.mask)
    _wait_status(page, "levir-mci")
    page.wait_for_selector("#comparison img")

    _ask(page, "Has anything changed?", "Yes")
    page.locator("#overlay img").wait_for()
    first_overlay = page.locator("#overlay img").get_attribute("src")
    _ask(page, "How many new buildings?", "changed building")
    page.wait_for_function(
        "src => document.querySelector('#overlay img')?.getAttribute('src') !== src", arg=first_overlay
    )
    page.wait_for_function("() => document.querySelector('#overlay img').naturalWidth >= 512")
    evidence = page.locator("#evidence").inner_text()
    truth = generate_pair(SEED, 256, change=True).counts
    assert "Verifier numbers" in evidence and f"road {truth['road']}, building {truth['building']}" in evidence

    with page.expect_download() as download_info:
        page.locator("#geojson a").first.click()
    saved = tmp_path / "download.geojson"
    download_info.value.save_as(saved)
    collection = check_geojson(saved, _cells(evidence))
    assert {f["properties"]["pair"] for f in collection["features"]} == {"t1"}

    shot = tmp_path / "app_browser.png"
    page.screenshot(path=str(shot), full_page=True)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTEFACTS / "app_browser.png")

    page.locator("#new-conversation").click()
    _wait_status(page, "New conversation started")
    assert "changed building" not in page.locator("#chat").inner_text()


def _cells(evidence: str) -> list[str]:
    """The changed cells the evidence table lists (the row ``changed cells | TL, CC``)."""
    for line in evidence.splitlines():
        if line.startswith("changed cells"):
            return [cell.strip() for cell in line.split("\t")[-1].split(",") if cell.strip() != "none"]
    raise AssertionError(f"no changed cells in the evidence:\n{evidence}")
