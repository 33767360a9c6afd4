"""Issue 26, the POOR list: each a clear error or a right answer.

Images: a PNG's header size is checked before its data is inflated (a 100000² bomb is refused at once, and data
that inflates past its header is refused as it grows); a large read is refused with a memory estimate when it
would not fit; complex (radar) rasters are named, not a numpy traceback.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.bad_inputs.cases import example, run_cli
from tools.pairs import load_pair
from tools.raster import InputError, read_raster


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(path: Path, width: int, height: int, raw: bytes) -> Path:
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    )
    return path


def test_a_png_bomb_is_refused_by_its_header_before_inflating(tmp_path):
    bomb = _png(tmp_path / "bomb.png", 100_000, 100_000, b"\x00" * 40_000_000)
    started = time.monotonic()
    refused = r"bomb.png is 100000×100000 = 10,000,000,000 pixels, over the limit of .* \(read from its PNG header"
    with pytest.raises(InputError, match=refused):
        read_raster(bomb, role="t1")
    assert time.monotonic() - started < 1.0


def test_png_data_that_inflates_past_its_header_is_refused(tmp_path):
    liar = _png(tmp_path / "liar.png", 16, 16, b"\x00" * 30_000_000)
    with pytest.raises(InputError, match="inflates past the 16×16 its header states"):
        read_raster(liar, role="t2")


def test_a_read_that_would_not_fit_in_memory_is_refused_with_an_estimate(tmp_path, monkeypatch):
    ex = example(tmp_path / "ex")
    monkeypatch.setattr("tools.raster.available_memory", lambda: 100_000)
    with pytest.raises(InputError, match=r"t1.tif is 64×64: analysing the pair needs about 0\.0 GB of memory and"):
        load_pair(ex.t1, ex.t2)


def _complex(path: Path) -> Path:
    profile = {"driver": "GTiff", "height": 32, "width": 32, "count": 1, "dtype": "complex64"}
    with rasterio.open(path, "w", **profile) as ds:
        ds.write((np.ones((1, 32, 32)) + 1j).astype(np.complex64))
    return path


def test_complex_rasters_are_named_on_every_surface(tmp_path, capsys):
    t1, t2 = _complex(tmp_path / "slc1.tif"), _complex(tmp_path / "slc2.tif")
    with pytest.raises(InputError, match=r"slc1.tif holds complex values \(complex64"):
        load_pair(t1, t2)
    code, _, err = run_cli(["verify", t1, t2], capsys)
    assert code == 2 and "holds complex values" in err and "Traceback" not in err
    code, _, err = run_cli(["scene", t1, t2, "--out", tmp_path / "scene"], capsys)
    assert code == 2 and "holds complex values" in err


# --------------------------------------------------------------------------------------------- scenes


def _sparse_scene(path: Path, side: int) -> Path:
    """A sparse (mostly unwritten) tiled GeoTIFF of ``side``² px: tiny on disk, huge as a scene."""
    profile = {"driver": "GTiff", "height": side, "width": side, "count": 3, "dtype": "uint8", "tiled": True}
    profile |= {"blockxsize": 512, "blockysize": 512, "sparse_ok": True, "crs": "EPSG:32614"}
    profile["transform"] = rasterio.transform.from_origin(500_000, 4_000_000, 0.5, 0.5)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.full((3, 512, 512), 90, np.uint8), window=rasterio.windows.Window(0, 0, 512, 512))
    return path


def test_a_scene_over_the_budget_asks_for_yes_with_an_estimate(tmp_path, capsys):
    t1 = _sparse_scene(tmp_path / "big1.tif", 30_000)
    t2 = _sparse_scene(tmp_path / "big2.tif", 30_000)
    started = time.monotonic()
    code, _, err = run_cli(["scene", t1, t2, "--out", tmp_path / "out"], capsys)
    assert code == 2 and time.monotonic() - started < 10
    assert "big1.tif is 30000×30000 = 900 MP in 13,924 tiles of 256 px, over the 400 MP" in err
    assert "about 0.9 GB of temporary disk" in err and "pass --yes to start it" in err


def test_a_scene_mask_leaves_no_file_behind_even_when_killed(tmp_path):
    from tools.scene.disk_mask import DiskMask

    mask = DiskMask(tmp_path / ".change_mask.u8", 100, 50)
    assert list(tmp_path.iterdir()) == []  # nameless from the start: a kill -9 cannot leave it behind
    rows = np.arange(100 * 50, dtype=np.uint32).reshape(100, 50).astype(np.uint8)
    mask.write_rows(0, rows)
    np.testing.assert_array_equal(mask.read_rows(10, 20), rows[10:20])
    np.testing.assert_array_equal(mask.read_window(5, 9, 3, 40), rows[5:9, 3:40])
    mask.unlink()


# --------------------------------------------------------------------------------------------- the Python API


@pytest.mark.parametrize(
    ("values", "named"),
    [
        (np.ones((8, 8), bool), "bool"),
        (np.ones((8, 8), complex), "complex128"),
        (np.full((8, 8), "a"), "<U1"),
        (np.full((8, 8), None, object), "object"),
    ],
)
def test_arrays_of_non_numbers_are_named(tmp_path, values, named):
    from tests.bad_inputs.cases import api_agent
    from tools.pairs import pair_from_arrays

    with pytest.raises(InputError, match=rf"t1 array holds {named} values; expected numbers"):
        pair_from_arrays(values, np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="expected numbers"):
        api_agent(tmp_path).ask((values, values), "has anything changed?")


@pytest.mark.parametrize("gsd", [True, 1e-300, 1e300, float("nan"), -1.0, "2"])
def test_impossible_pixel_sizes_are_refused(tmp_path, gsd):
    from tests.bad_inputs.cases import api_agent

    ex = example(tmp_path / "ex")
    with pytest.raises(InputError, match="ground sampling distance must be"):
        api_agent(tmp_path).ask((ex.t1, ex.t2), "how much changed?", gsd_m=gsd)


def test_a_lone_surrogate_in_a_thread_id_or_question_is_refused(tmp_path):
    from tests.bad_inputs.cases import api_agent

    ex = example(tmp_path / "ex")
    agent = api_agent(tmp_path)
    with pytest.raises(InputError, match="thread id holds a lone surrogate U\\+D800"):
        agent.ask((ex.t1, ex.t2), "changed?", thread_id="a\ud800b")
    with pytest.raises(InputError, match="question holds a lone surrogate"):
        agent.ask((ex.t1, ex.t2), "changed\udfff?")
    with pytest.raises(InputError, match="control or line-breaking"):
        agent.ask((ex.t1, ex.t2), "changed?", thread_id="a\nb")


FULL_DISK_TURN = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from agent.api import Agent
from agent.settings import AgentSettings
db, t1, t2 = sys.argv[1:4]
agent = Agent(AgentSettings(checkpoint_db=db, artefact_dir=db + ".art"))
agent.ask((t1, t2), "has anything changed?", thread_id="t")
size = os.path.getsize(db) + os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else os.path.getsize(db)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 1024, size + 1024))
try:
    for i in range(50):
        agent.ask((t1, t2), "how many buildings are new, and where exactly are they? " * 20, thread_id="t")
except Exception as exc:
    print(type(exc).__name__, "|", str(exc).replace(chr(10), " "))
    sys.exit(3)
"""


def test_a_turn_that_cannot_be_saved_on_a_full_disk_is_one_named_error(tmp_path):
    import os
    import subprocess
    import sys

    ex = example(tmp_path / "ex")
    db = tmp_path / "threads.sqlite"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK_TURN, str(db), str(ex.t1), str(ex.t2)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 3, (done.stdout, done.stderr[-3000:])
    kind, message = done.stdout.strip().split(" | ", 1)
    assert kind == "InputError" and f"could not save the turn of thread t in {db}" in message


# --------------------------------------------------------------------------------------------- pixels and masks


def test_overlay_to_a_text_file_or_a_folder_is_a_one_line_error(tmp_path, capsys):
    ex = example(tmp_path / "ex")
    for target, said in ((tmp_path / "x.txt", "must end in .png"), (tmp_path, "is a folder")):
        code, _, err = run_cli(["verify", ex.t1, ex.t2, "--overlay", target], capsys)
        assert code == 2 and said in err and "cv2" not in err


def test_a_long_list_of_bad_index_values_is_cut_short(tmp_path, capsys):
    ex = example(tmp_path / "ex")
    import cv2

    noisy = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "index.png"), noisy)
    code, _, err = run_cli(["verify", ex.t1, ex.t2, "--mask", tmp_path / "index.png", "--mask-kind", "index"], capsys)
    assert code == 2 and "… (252 values)]" in err and len(err) < 400


def test_a_jpeg_copy_of_a_label_is_refused(tmp_path, capsys):
    import cv2

    ex = example(tmp_path / "ex")
    label = cv2.imread(str(ex.mask), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(tmp_path / "label.jpg"), label, [cv2.IMWRITE_JPEG_QUALITY, 75])
    code, _, err = run_cli(["verify", ex.t1, ex.t2, "--mask", tmp_path / "label.jpg", "--mask-kind", "binary"], capsys)
    assert code == 2 and "label.jpg is a JPEG and holds" in err and "lossy compression" in err


def test_all_black_against_all_white_is_refused_by_name(tmp_path):
    from tests.bad_inputs.cases import api_agent

    black, white = np.zeros((32, 32, 3), np.uint8), np.full((32, 32, 3), 255, np.uint8)
    with pytest.raises(InputError, match=r"t1 image is one flat value everywhere \(0\)"):
        api_agent(tmp_path).ask((black, white), "has anything changed?")


def test_a_grey_date_against_a_colour_one_is_compared_in_grey(tmp_path):
    from tools.pairs import pair_from_arrays

    rng = np.random.default_rng(0)
    colour = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    grey = np.round(colour @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    pair = pair_from_arrays(colour, grey)
    assert "t2 array has no colour, so both dates are compared in grey" in pair.scaling
    assert pair.grey_date == "t2" and np.abs(pair.t1.astype(int) - pair.t2.astype(int)).max() <= 1
    from tests.bad_inputs.cases import api_agent

    answer = api_agent(tmp_path).ask(pair, "has anything changed?")
    assert "The t2 image has no colour, so both dates were compared in grey" in answer.text


def test_a_raster_reaching_latitude_95_is_refused(tmp_path, capsys):
    profile = {"driver": "GTiff", "height": 32, "width": 32, "count": 3, "dtype": "uint8", "crs": "EPSG:4326"}
    profile["transform"] = rasterio.transform.from_origin(10.0, 95.0, 0.01, 0.01)
    rng = np.random.default_rng(1)
    paths = []
    for name in ("n1.tif", "n2.tif"):
        with rasterio.open(tmp_path / name, "w", **profile) as ds:
            ds.write(rng.integers(0, 255, (3, 32, 32), dtype=np.uint8))
        paths.append(tmp_path / name)
    with pytest.raises(InputError, match=r"n1.tif is in degrees \(EPSG:4326\) but reaches latitude 94.68° to 95°"):
        load_pair(*paths)
    code, _, err = run_cli(["scene", *paths, "--out", tmp_path / "s"], capsys)
    assert code == 2 and "beyond ±90°" in err


def _levir_folder(root: Path) -> Path:
    import cv2

    ex = example(root / "ex")
    for sub in ("A", "B", "label"):
        (root / sub).mkdir(parents=True)
    bands = {"A": ex.t1, "B": ex.t2}
    for name in ("one", "two"):
        for sub, tif in bands.items():
            (root / sub / f"{name}.tif").write_bytes(tif.read_bytes())
    cv2.imwrite(str(root / "label" / "one.png"), cv2.imread(str(ex.mask), cv2.IMREAD_GRAYSCALE))
    return root


def test_a_fifo_or_looping_label_is_named_not_taken_as_no_label(tmp_path):
    import os

    from tools.mask_eval import find_pairs

    root = _levir_folder(tmp_path / "data")
    os.mkfifo(root / "label" / "two.png")
    (root / "A" / "three.tif").write_bytes((root / "A" / "one.tif").read_bytes())
    (root / "B" / "three.tif").write_bytes((root / "B" / "one.tif").read_bytes())
    os.symlink(root / "label" / "three.png", root / "label" / "three.png")
    dataset = find_pairs(root)
    assert [p.name for p in dataset.pairs] == ["one"]
    assert dataset.skipped["two"] == "label/two.png is not a regular file (a FIFO or device)"
    assert dataset.skipped["three"].startswith("label/three.png cannot be opened (")


def test_write_calibration_without_lodo_is_an_error(tmp_path, capsys):
    root = _levir_folder(tmp_path / "data")
    code, _, err = run_cli(["eval-masks", root, "--write-calibration"], capsys)
    assert code == 2 and "--write-calibration needs --lodo" in err


# --------------------------------------------------------------------------------------------- the server


def _plain_app():
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    return app


def test_huge_headers_are_refused_and_slow_headers_are_cut_off(monkeypatch):
    import socket

    from deltavlm.serving.http_limits import GuardedH11
    from deltavlm.serving.local import BackgroundServer

    monkeypatch.setattr(GuardedH11, "header_timeout_s", 0.5)
    with BackgroundServer(_plain_app()) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
            assert conn.recv(4096).startswith(b"HTTP/1.1 400")
        slow = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(5)]
        for conn in slow:
            conn.sendall(b"GET /health HTTP/1.1\r\nHo")
        started = time.monotonic()
        for conn in slow:
            assert conn.recv(4096) == b""  # closed by the server
            conn.close()
        assert time.monotonic() - started < 5
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:  # a normal client is served
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.recv(4096).startswith(b"HTTP/1.1 200")


def test_the_server_token_comes_from_a_file_or_the_environment_never_the_command_line(tmp_path, capsys, monkeypatch):
    import argparse

    from deltavlm.serving.cli import add_arguments, run_from_args, settings_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    monkeypatch.delenv("CHANGEAGENT_TOKEN", raising=False)
    assert run_from_args(parser.parse_args(["--model", "tiny", "--token", "s3cret"])) == 2
    assert "ps shows it to every user" in capsys.readouterr().err
    (tmp_path / "token").write_text("from-a-file\n")
    from_file = parser.parse_args(["--model", "tiny", "--token-file", str(tmp_path / "token")])
    assert settings_from_args(from_file).token == "from-a-file"
    monkeypatch.setenv("CHANGEAGENT_TOKEN", "from-env")
    assert settings_from_args(parser.parse_args(["--model", "tiny"])).token == "from-env"


# --------------------------------------------------------------------------------------------- reading and wording


def test_how_many_without_a_subject_says_changed_once(tmp_path):
    from tests.bad_inputs.cases import api_agent

    ex = example(tmp_path / "ex")
    text = api_agent(tmp_path).ask((ex.t1, ex.t2), "how many?").text
    assert "changed changed" not in text and text.startswith("I count ")
    french = api_agent(tmp_path).ask((ex.t1, ex.t2), "combien ?").text
    assert "modifiées qui ont changé" not in french


def test_template_slots_are_not_units():
    from agent.reading import read_request

    request = read_request("how many {0} %s buildings?")
    assert request.ask == "count" and request.categories == ["building"] and request.unit is None
    assert read_request("what % changed?").unit == "percent"


@pytest.mark.slow
def test_health_answers_while_upload_bodies_are_being_parsed(monkeypatch):
    """Bodies are parsed on worker threads: with three uploads each blocking its parser for 1.5 s, /health still
    answers at once (parsed on the event loop, as FastAPI does by default, it waited behind all of them)."""
    import base64
    import threading
    import urllib.request

    import cv2

    from deltavlm.inference import DeltaVLMRunner
    from deltavlm.serving.app import create_app
    from deltavlm.serving.engine import ServingEngine
    from deltavlm.serving.local import BackgroundServer
    from deltavlm.serving.schema import PairUpload
    from deltavlm.serving.settings import ServerSettings

    parse = PairUpload.model_validate_json.__func__

    def slow(cls, raw, *args, **kwargs):
        time.sleep(1.5)  # a blocking parse, as of a large body
        return parse(cls, raw, *args, **kwargs)

    monkeypatch.setattr(PairUpload, "model_validate_json", classmethod(slow))
    png = base64.b64encode(cv2.imencode(".png", np.full((32, 32, 3), 90, np.uint8))[1].tobytes()).decode()
    body = json.dumps({"t1_png_b64": png, "t2_png_b64": png}).encode()
    engine = ServingEngine(DeltaVLMRunner.from_config("tiny"), max_wait_ms=2.0)
    with BackgroundServer(create_app(engine, ServerSettings())) as server:

        def upload() -> None:
            request = urllib.request.Request(
                f"{server.url}/v1/pairs", data=body, headers={"Content-Type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=60).read()

        uploads = [threading.Thread(target=upload) for _ in range(3)]
        for thread in uploads:
            thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        with urllib.request.urlopen(f"{server.url}/health", timeout=30) as response:
            assert response.status == 200
        waited = time.monotonic() - started
        for thread in uploads:
            thread.join(60)
    assert waited < 1.0, waited


CLI_ON_A_FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from agent.cli.main import main
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.exit(main(sys.argv[2:]))
"""


def test_verify_geojson_on_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path):
    import os
    import subprocess
    import sys

    ex = example(tmp_path / "ex")
    target = tmp_path / "changes.geojson"
    old = b'{"type": "FeatureCollection", "features": []}\n'
    target.write_bytes(old)
    root = Path(__file__).resolve().parents[2]
    argv = ["verify", str(ex.t1), str(ex.t2), "--mask", str(ex.mask), "--mask-kind", "levir-mci"]
    done = subprocess.run(
        [sys.executable, "-c", CLI_ON_A_FULL_DISK, "600", *argv, "--geojson", str(target)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 2, (done.stdout[-500:], done.stderr[-2000:])
    assert f"cannot write {target}" in done.stderr and "Traceback" not in done.stderr
    assert target.read_bytes() == old and sorted(p.name for p in tmp_path.iterdir()) == ["changes.geojson", "ex"]
