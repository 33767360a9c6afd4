"""The server as ``changeagent serve`` runs it: under Ray Serve, and as a command in its own process (slow).

Ray takes ~25 s to start on a small machine, so one Ray Serve application serves every Ray test here.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import cv2
import httpx
import numpy as np
import pytest

from deltavlm.serving.schema import GenerationOptions
from deltavlm.serving.settings import ServerSettings
from tools.pairs import pair_from_arrays
from tools.vlm import HTTPBackend

pytestmark = pytest.mark.slow

OPTIONS = GenerationOptions(max_new_tokens=6)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _images(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (40, 56, 3), dtype=np.uint8), rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)


def _b64(image: np.ndarray) -> str:
    return base64.b64encode(cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()).decode()


def _wait_healthy(url: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            health = httpx.get(f"{url}/health", timeout=2).json()
            if health.get("ready"):
                return health
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready in {timeout_s} s")


@pytest.fixture(scope="module")
def ray_server():
    pytest.importorskip("ray.serve")
    from deltavlm.serving import ray_app

    settings = ServerSettings(model="tiny", engine="ray", port=_free_port(), max_batch_size=8, max_wait_ms=300.0)
    ray_app.start(settings)
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        ray_app.stop()


def test_ray_serve_answers_a_dialog_encoding_the_pair_once(ray_server):
    health = _wait_healthy(ray_server, 60)
    assert health["engine"] == "ray-serve" and health["model"] == "tiny" and health["max_wait_ms"] == 300.0
    t1, t2 = _images(1)
    pair = pair_from_arrays(t1, t2)
    backend = HTTPBackend(ray_server, timeout_s=30, retries=1, options=OPTIONS)
    history: list[tuple[str, str]] = []
    for question in ["Has anything changed?", "How many buildings?", "Where?"]:
        history.append((question, backend.generate(pair, question, history)))
        assert backend.vision_encodes() == 1
    malformed = httpx.post(f"{ray_server}/v1/chat", json={"pair_id": 1}, timeout=10)
    assert malformed.status_code == 422
    assert httpx.get(f"{ray_server}/health", timeout=10).json()["ready"] is True


def test_ray_serve_batches_concurrent_requests(ray_server):
    _wait_healthy(ray_server, 60)

    async def scenario() -> list[dict]:
        async with httpx.AsyncClient(base_url=ray_server, timeout=60) as client:
            uploads = await asyncio.gather(
                *(
                    client.post("/v1/pairs", json={"t1_png_b64": _b64(a), "t2_png_b64": _b64(b)})
                    for a, b in (_images(10 + i) for i in range(4))
                )
            )
            chats = [
                {"pair_id": u.json()["pair_id"], "question": "Changed?", "options": OPTIONS.model_dump()}
                for u in uploads
            ]
            replies = await asyncio.gather(*(client.post("/v1/chat", json=c) for c in chats))
            return [r.json() for r in replies]

    replies = asyncio.run(scenario())
    assert max(r["batch_size"] for r in replies) > 1  # @serve.batch gathered them
    assert all(r["pair_encodes"] == 1 for r in replies)
    metrics = httpx.get(f"{ray_server}/metrics", timeout=10).text
    assert re.search(r'deltavlm_batch_size_count\{stage="generate"\} \d+', metrics)


def test_ray_serve_listens_on_loopback_only(ray_server):
    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2) to list listening sockets")
    pids = _descendants(os.getpid())
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    ours = [line for line in listening.splitlines() if {int(p) for p in re.findall(r"pid=(\d+)", line)} & pids]
    assert ours, "found none of Ray's sockets"
    for line in ours:
        address = line.split()[3].rsplit(":", 1)[0]
        assert address in {"127.0.0.1", "[::ffff:127.0.0.1]", "[::1]"}, line


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for line in subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.splitlines():
        pid, ppid = map(int, line.split())
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def test_the_serve_command_runs_until_interrupted():
    port = _free_port()
    command = [sys.executable, "-m", "deltavlm.serving", "--model", "tiny", "--engine", "uvicorn", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        health = _wait_healthy(f"http://127.0.0.1:{port}", 60)
        assert health["engine"] == "uvicorn"
        t1, t2 = _images(20)
        backend = HTTPBackend(f"http://127.0.0.1:{port}", timeout_s=30, retries=0, options=OPTIONS)
        assert isinstance(backend.generate(pair_from_arrays(t1, t2), "Has anything changed?", []), str)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "serving at http://127.0.0.1" in output


@pytest.fixture
def two_replicas():
    """Runs after the one-replica tests: ``ray_server`` is module-scoped, so it is stopped here first."""
    pytest.importorskip("ray.serve")
    from deltavlm.serving import ray_app

    ray_app.stop()
    settings = ServerSettings(model="tiny", engine="ray", port=_free_port(), replicas=2, torch_threads=1)
    ray_app.start(settings)
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        ray_app.stop()


def test_two_replicas_never_lose_a_pair(two_replicas):
    """Whichever replica a turn lands on finds the pair (shared store); the client uploads it once."""
    url = two_replicas
    for seed in range(3):
        t1, t2 = _images(30 + seed)
        backend = HTTPBackend(url, timeout_s=30, retries=1, options=OPTIONS)
        uploads: list[str] = []
        upload = backend._upload
        backend._upload = lambda pair, *rest, upload=upload, seen=uploads: (
            seen.append(pair.pair_id) or upload(pair, *rest)
        )
        for question in ["Changed?", "How many?", "Where?"]:
            backend.generate(pair_from_arrays(t1, t2), question, [])
        assert len(uploads) == 1
    # a client that sends no affinity header at all still never sees a 404
    created = httpx.post(f"{url}/v1/pairs", json={"t1_png_b64": _b64(t1), "t2_png_b64": _b64(t2)}, timeout=30)
    chat = {"pair_id": created.json()["pair_id"], "question": "Changed?", "options": OPTIONS.model_dump()}
    assert {httpx.post(f"{url}/v1/chat", json=chat, timeout=30).status_code for _ in range(6)} == {200}
