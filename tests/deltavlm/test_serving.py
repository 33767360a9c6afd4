"""The DeltaVLM server on the tiny config: contract, batching, the pair cache, limits, failures, the agent over HTTP.

Everything here runs in process (FastAPI's TestClient, httpx's ASGI transport) or on a loopback uvicorn
thread; the Ray Serve engine has its own slow tests in ``test_serving_ray.py``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import re
import threading
import time

import cv2
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from agent import Agent
from agent.cli.serve import add_serve_parser, cmd_serve
from agent.settings import AgentSettings, ModelSettings
from deltavlm.feature_cache import PairFeatureCache
from deltavlm.inference import DeltaVLMRunner
from deltavlm.serving import hashing
from deltavlm.serving.app import create_app
from deltavlm.serving.batching import MicroBatcher, Overloaded, micro_batcher
from deltavlm.serving.cli import exposure_warning, serve, settings_from_args
from deltavlm.serving.engine import ServingEngine
from deltavlm.serving.local import BackgroundServer
from deltavlm.serving.metrics import ServerMetrics
from deltavlm.serving.schema import GenerationOptions, RequestLimits
from deltavlm.serving.settings import ServerSettings
from deltavlm.synthetic import write_example
from tools import pairs
from tools.pairs import load_pair, pair_from_arrays
from tools.vlm import HTTPBackend

TOKENS = 6  # short answers keep the tiny model fast
OPTIONS = {"max_new_tokens": TOKENS}


@pytest.fixture(scope="module")
def runner() -> DeltaVLMRunner:
    return DeltaVLMRunner.from_config("tiny")


def _engine(runner: DeltaVLMRunner, **kwargs) -> ServingEngine:
    kwargs.setdefault("max_wait_ms", 2.0)
    return ServingEngine(runner, **kwargs)


@pytest.fixture
def client(runner):
    app = create_app(_engine(runner), ServerSettings(model="tiny"))
    with TestClient(app) as test_client:
        yield test_client


def _images(seed: int, shape: tuple[int, int] = (48, 64)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (*shape, 3), dtype=np.uint8), rng.integers(0, 256, (*shape, 3), dtype=np.uint8)


def _png(image: np.ndarray) -> bytes:
    converted = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 and image.shape[2] == 3 else image
    ok, buffer = cv2.imencode(".png", converted)
    assert ok
    return buffer.tobytes()


def _b64(image: np.ndarray) -> str:
    return base64.b64encode(_png(image)).decode()


def _upload(t1: np.ndarray, t2: np.ndarray) -> dict[str, str]:
    return {"t1_png_b64": _b64(t1), "t2_png_b64": _b64(t2)}


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


# --- the contract --------------------------------------------------------------------------------------


def test_openapi_schema_names_every_route_and_model(client):
    schema = client.get("/openapi.json").json()
    assert {"/health", "/metrics", "/v1/pairs", "/v1/chat"} <= set(schema["paths"])
    assert {"PairUpload", "PairCreated", "ChatRequest", "ChatResponse", "HealthResponse"} <= set(
        schema["components"]["schemas"]
    )
    assert {"401", "404", "413", "422", "503"} <= set(schema["paths"]["/v1/chat"]["post"]["responses"])


def test_health_names_model_device_dtype_and_readiness(client):
    health = client.get("/health").json()
    assert health["ready"] is True and health["status"] == "ok"
    assert (health["model"], health["device"], health["dtype"]) == ("tiny", "cpu", "float32")
    assert health["limits"]["max_pixels"] == RequestLimits().max_pixels


def test_pair_id_is_the_agents_content_hash(client):
    assert pairs.pair_hash is hashing.pair_hash  # one definition, re-exported by tools.pairs
    t1, t2 = _images(1)
    created = client.post("/v1/pairs", json=_upload(t1, t2)).json()
    assert created == {"pair_id": pair_from_arrays(t1, t2).pair_id, "encoded": True, "width": 64, "height": 48}
    assert client.post("/v1/pairs", json=_upload(t1, t2)).json()["encoded"] is False
    # gray and RGBA PNGs become the same RGB arrays, and ids, as the agent's loader makes of them (both dates grey:
    # the loader compares a grey date with a colour one in grey, so a mixed upload is not the same arrays)
    gray = _images(2)[0][:, :, 0]
    rgba = np.dstack([np.repeat(t2[:, :, :1], 3, axis=2), np.full(t2.shape[:2], 200, np.uint8)])
    rgba_png = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))[1].tobytes()
    payload = {"t1_png_b64": _b64(gray), "t2_png_b64": base64.b64encode(rgba_png).decode()}
    assert client.post("/v1/pairs", json=payload).json()["pair_id"] == pair_from_arrays(gray, rgba).pair_id


def test_a_held_pair_can_be_referenced_by_id(client):
    t1, t2 = _images(3)
    pair_id = client.post("/v1/pairs", json=_upload(t1, t2)).json()["pair_id"]
    assert client.post("/v1/pairs", json={"pair_id": pair_id}).json()["encoded"] is False
    missing = client.post("/v1/pairs", json={"pair_id": "0" * 32})
    assert missing.status_code == 404 and "upload its images" in missing.json()["detail"]


def test_a_dialog_encodes_its_pair_once_and_hits_the_cache_every_turn(client, runner):
    t1, t2 = _images(4)
    calls, hits = runner.vision_encoder_calls, runner.cache_stats().hits
    pair_id = client.post("/v1/pairs", json=_upload(t1, t2)).json()["pair_id"]
    history: list[dict[str, str]] = []
    for question in ["Has anything changed?", "How many buildings?", "Where?", "Describe it.", "Why?"]:
        request = {"pair_id": pair_id, "question": question, "history": history, "options": OPTIONS}
        reply = client.post("/v1/chat", json=request).json()
        assert reply["pair_encodes"] == 1 and reply["model"] == "tiny"
        assert 0 < reply["tokens"] <= TOKENS
        assert set(reply["timings"]) == {"queue_s", "generate_s", "total_s"}
        expected = runner.answer(t1, t2, question, [(h["question"], h["answer"]) for h in history], **OPTIONS)
        assert reply["text"] == expected  # the server answers exactly what the in-process runner answers
        history.append({"question": question, "answer": reply["text"]})
    assert runner.vision_encoder_calls - calls == 1
    assert runner.cache_stats().hits - hits >= 5
    metrics = client.get("/metrics").text
    assert _metric(metrics, "deltavlm_feature_cache_hits_total") == runner.cache_stats().hits
    assert _metric(metrics, "deltavlm_vision_encoder_calls_total") == runner.vision_encoder_calls
    assert 'deltavlm_requests_total{route="/v1/chat",status="200"} 5' in metrics


def test_a_pair_whose_features_were_evicted_is_encoded_again_and_says_so(runner):
    small = DeltaVLMRunner(runner.model, runner.tokenizers)
    small.cache = PairFeatureCache(10**9, 1)  # room for one pair's features (set after: an empty cache is falsy)
    with TestClient(create_app(_engine(small))) as client:
        first = client.post("/v1/pairs", json=_upload(*_images(5))).json()["pair_id"]
        client.post("/v1/pairs", json=_upload(*_images(6)))  # pushes the first pair's features out
        reply = client.post("/v1/chat", json={"pair_id": first, "question": "Changed?", "options": OPTIONS}).json()
        assert reply["pair_encodes"] == 2


# --- batching ------------------------------------------------------------------------------------------


async def _concurrently(app, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
        return await asyncio.gather(*(client.post(path, json=body) for path, body in requests))


def test_concurrent_uploads_share_one_encoder_pass_and_chats_one_generate(runner):
    engine = _engine(runner, max_batch_size=8, max_wait_ms=300.0)
    app = create_app(engine)
    images = [_images(10 + i) for i in range(4)]
    calls = runner.vision_encoder_calls
    created = asyncio.run(_concurrently(app, [("/v1/pairs", _upload(*p)) for p in images]))
    assert all(r.json()["encoded"] for r in created)
    assert runner.vision_encoder_calls - calls == 1  # four pairs, one batched Bi-VE forward
    questions = ["Has anything changed?", "How many roads?", "Where are the changes?", "Describe it."]
    chats = [
        ("/v1/chat", {"pair_id": r.json()["pair_id"], "question": q, "options": OPTIONS})
        for r, q in zip(created, questions, strict=True)
    ]
    replies = [r.json() for r in asyncio.run(_concurrently(app, chats))]
    assert [r["batch_size"] for r in replies] == [4] * 4
    for (t1, t2), question, reply in zip(images, questions, replies, strict=True):
        assert reply["text"] == runner.answer(t1, t2, question, **OPTIONS)  # batching changes no answer
    metrics = engine.metrics
    assert metrics.batch_size.count(stage="generate") == 1 and metrics.batch_size.total(stage="generate") == 4
    assert metrics.batch_size.total(stage="encode") == 4


def test_requests_with_different_generation_options_are_decoded_apart(runner):
    app = create_app(_engine(runner, max_wait_ms=300.0))
    t1, t2 = _images(20)
    pair_id = asyncio.run(_concurrently(app, [("/v1/pairs", _upload(t1, t2))]))[0].json()["pair_id"]
    chats = [
        ("/v1/chat", {"pair_id": pair_id, "question": "Changed?", "options": {"max_new_tokens": n}}) for n in (2, 5)
    ]
    short, long = (r.json() for r in asyncio.run(_concurrently(app, chats)))
    assert short["batch_size"] == long["batch_size"] == 1
    assert short["tokens"] <= 2 < long["tokens"] <= 5


def test_batch_size_one_turns_batching_off(runner):
    app = create_app(_engine(runner, max_batch_size=1, max_wait_ms=300.0))
    uploads = asyncio.run(_concurrently(app, [("/v1/pairs", _upload(*_images(30 + i))) for i in range(3)]))
    chats = [
        ("/v1/chat", {"pair_id": r.json()["pair_id"], "question": "Changed?", "options": OPTIONS}) for r in uploads
    ]
    assert [r.json()["batch_size"] for r in asyncio.run(_concurrently(app, chats))] == [1, 1, 1]


def test_micro_batcher_groups_by_size_and_time_and_isolates_failures():
    seen: list[list[int]] = []

    async def double(items: list[int]) -> list[object]:
        seen.append(items)
        return [ValueError(f"bad {i}") if i < 0 else 2 * i for i in items]

    async def scenario() -> list[object]:
        batcher = MicroBatcher(double, max_batch_size=3, max_wait_s=0.05)
        results = await asyncio.gather(*(batcher.submit(i) for i in [1, 2, -3, 4]), return_exceptions=True)
        late = await batcher.submit(5)  # alone: it leaves after max_wait, not never
        await batcher.aclose()
        return [*results, late]

    results = asyncio.run(scenario())
    assert seen == [[1, 2, -3], [4], [5]]
    assert results[:2] == [2, 4] and isinstance(results[2], ValueError) and results[3:] == [8, 10]


def test_micro_batcher_refuses_beyond_its_queue():
    async def slow(items: list[int]) -> list[int]:
        await asyncio.sleep(0.2)
        return items

    async def scenario() -> list[object]:
        batcher = micro_batcher(slow, 1, 0.0, "test", max_queue=1)
        return await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert any(isinstance(o, Overloaded) for o in outcomes) and 0 in outcomes


# --- limits and malformed input ------------------------------------------------------------------------


def _tight_app(runner, tmp_path=None, **limits) -> TestClient:
    settings = ServerSettings(limits=RequestLimits(**limits), data_root=tmp_path)
    return TestClient(create_app(_engine(runner, limits=settings.limits), settings))


def _big_blank_png(width: int, height: int) -> str:
    return base64.b64encode(_png(np.zeros((height, width, 3), np.uint8))).decode()


def test_images_beyond_the_limits_are_refused_before_decoding(runner):
    t1, t2 = _images(40)
    with _tight_app(runner, max_pixels=100_000, max_image_bytes=4096) as client:
        big = client.post("/v1/pairs", json={"t1_png_b64": _big_blank_png(400, 300), "t2_png_b64": _b64(t2)})
        assert big.status_code == 413 and "120000 pixels; the limit is 100000" in big.json()["detail"]
        heavy = client.post("/v1/pairs", json=_upload(t1, t2))  # noise does not compress: > 4096 bytes
        assert heavy.status_code == 413 and "the limit is 4096 bytes" in heavy.json()["detail"]
        body = client.post("/v1/pairs", content=b"x" * (RequestLimits(max_image_bytes=4096).max_body_bytes + 1))
        assert body.status_code == 413 and "request body" in body.json()["detail"]
        assert client.get("/health").json()["ready"] is True


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ({"t1_png_b64": "%%%", "t2_png_b64": "%%%"}, 422, "not valid base64"),
        ({"t1_png_b64": base64.b64encode(b"\xff\xd8\xff\xe0 a jpeg").decode(), "t2_png_b64": "AAAA"}, 415, "not a PNG"),
        ({"t1_png_b64": "AAAA"}, 422, "both t1_png_b64 and t2_png_b64"),
        ({"pair_id": "abc", "t1_path": "a.png", "t2_path": "b.png"}, 422, "exactly one of"),
        ({}, 422, "exactly one of"),
        ({"t1_path": "a.png", "t2_path": "b.png"}, 403, "--data-root"),
    ],
)
def test_malformed_uploads_get_a_clear_4xx(client, payload, status, words):
    response = client.post("/v1/pairs", json=payload)
    assert response.status_code == status and words in str(response.json()["detail"])


def test_mismatched_truncated_and_16_bit_pngs_are_refused(client):
    t1, t2 = _images(41)
    assert "differ in size" in client.post("/v1/pairs", json=_upload(t1, t2[:20])).json()["detail"]
    truncated = base64.b64encode(_png(t1)[:60]).decode()
    response = client.post("/v1/pairs", json={"t1_png_b64": truncated, "t2_png_b64": _b64(t2)})
    assert response.status_code == 422 and "could not be decoded" in response.json()["detail"]
    deep = base64.b64encode(cv2.imencode(".png", (t1.astype(np.uint16) * 257))[1].tobytes()).decode()
    response = client.post("/v1/pairs", json={"t1_png_b64": deep, "t2_png_b64": _b64(t2)})
    assert response.status_code == 422 and "16-bit" in response.json()["detail"]


def test_malformed_json_is_a_422_that_does_not_echo_the_input(client):
    broken = client.post("/v1/chat", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422
    huge = "A" * 100_000
    response = client.post("/v1/chat", json={"pair_id": 5, "question": huge})
    assert response.status_code == 422 and len(response.content) < 2000


def test_chat_limits_are_enforced_with_the_limit_named(runner):
    t1, t2 = _images(42)
    with _tight_app(runner, max_turns=2, max_new_tokens=16, max_beams=2, max_history_chars=100) as client:
        pair_id = client.post("/v1/pairs", json=_upload(t1, t2)).json()["pair_id"]
        base = {"pair_id": pair_id, "question": "Changed?", "options": {"max_new_tokens": 8}}
        turn = {"question": "q", "answer": "a"}
        cases = [
            ({"history": [turn] * 3}, "limit is 2"),
            ({"history": [{"question": "q" * 80, "answer": "a" * 80}]}, "limit is 100"),
            ({"options": {"max_new_tokens": 17}}, "exceeds this server's 16"),
            ({"options": {"num_beams": 3, "max_new_tokens": 8}}, "exceeds this server's 2"),
            ({"options": {"max_new_tokens": 10_000}}, "less than or equal to 512"),
            ({"question": ""}, "at least 1 character"),
            ({"question": "x" * 2001}, "at most 2000 characters"),
        ]
        for change, words in cases:
            response = client.post("/v1/chat", json={**base, **change})
            assert response.status_code == 422 and words in str(response.json()["detail"]), change
        oversized = client.post("/v1/chat", content=b"x" * (64 * 1024 + 8 * 100 + 1))  # a chat carries no images
        assert oversized.status_code == 413
        unknown = client.post("/v1/chat", json={**base, "pair_id": "f" * 32})
        assert unknown.status_code == 404 and "upload the pair" in unknown.json()["detail"]
        metrics = client.get("/metrics").text
        assert 'deltavlm_rejected_total{reason="turns"} 1' in metrics
        assert 'deltavlm_pair_lookups_total{result="miss"} 1' in metrics


def test_paths_below_the_data_root_only(runner, tmp_path):
    t1, t2 = _images(43)
    (tmp_path / "a.png").write_bytes(_png(t1))
    (tmp_path / "b.png").write_bytes(_png(t2))
    (tmp_path.parent / "outside.png").write_bytes(_png(t1))
    with _tight_app(runner, tmp_path) as client:
        ok = client.post("/v1/pairs", json={"t1_path": "a.png", "t2_path": "b.png"}).json()
        assert ok["pair_id"] == pair_from_arrays(t1, t2).pair_id
        escape = client.post("/v1/pairs", json={"t1_path": "../outside.png", "t2_path": "b.png"})
        assert escape.status_code == 403 and "outside" in escape.json()["detail"]
        absolute = client.post("/v1/pairs", json={"t1_path": str(tmp_path / "a.png"), "t2_path": "/etc/passwd"})
        assert absolute.status_code == 403
        assert client.post("/v1/pairs", json={"t1_path": "a.png", "t2_path": "nope.png"}).status_code == 404


def test_bearer_token_guards_everything_but_health(runner):
    app = create_app(_engine(runner), ServerSettings(token="s3cret"))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/openapi.json").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            response = client.post("/v1/pairs", json=_upload(*_images(44)), headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
            assert client.get("/metrics", headers=headers).status_code == 401
        good = {"Authorization": "Bearer s3cret"}
        assert client.post("/v1/pairs", json=_upload(*_images(44)), headers=good).status_code == 200
        assert client.get("/metrics", headers=good).status_code == 200


# --- failures inside the server ------------------------------------------------------------------------


def test_a_model_failure_is_a_500_for_that_request_only(client, runner, monkeypatch):
    pair_id = client.post("/v1/pairs", json=_upload(*_images(50))).json()["pair_id"]

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(runner, "answer_batch", out_of_memory)
    failed = client.post("/v1/chat", json={"pair_id": pair_id, "question": "Changed?", "options": OPTIONS})
    assert failed.status_code == 500 and "CUDA out of memory" in failed.json()["detail"]
    monkeypatch.undo()
    again = client.post("/v1/chat", json={"pair_id": pair_id, "question": "Changed?", "options": OPTIONS})
    assert again.status_code == 200


def test_a_full_queue_answers_503_with_retry_after(runner, monkeypatch):
    real = runner.answer_batch

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "answer_batch", slow)
    engine = _engine(runner, max_batch_size=1, batcher_factory=functools.partial(micro_batcher, max_queue=1))
    app = create_app(engine)
    pair_id = asyncio.run(_concurrently(app, [("/v1/pairs", _upload(*_images(51)))]))[0].json()["pair_id"]
    chats = [("/v1/chat", {"pair_id": pair_id, "question": f"q{i}", "options": OPTIONS}) for i in range(4)]
    responses = asyncio.run(_concurrently(app, chats))
    codes = sorted(r.status_code for r in responses)
    assert codes[0] == 200 and codes[-1] == 503
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["detail"]


def test_health_answers_while_the_model_loads_and_when_loading_fails(runner):
    release = threading.Event()

    def load(metrics: ServerMetrics) -> ServingEngine:
        assert release.wait(10)
        return _engine(runner, metrics=metrics)

    with TestClient(create_app(load, ServerSettings(model="tiny"))) as client:
        loading = client.get("/health").json()
        assert loading["ready"] is False and loading["status"] == "loading"
        busy = client.post("/v1/chat", json={"pair_id": "x", "question": "Changed?"})
        assert busy.status_code == 503 and "still loading" in busy.json()["detail"]
        release.set()
        deadline = time.monotonic() + 10
        while not client.get("/health").json()["ready"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get("/health").json()["ready"] is True

    def broken(metrics: ServerMetrics) -> ServingEngine:
        raise FileNotFoundError("no weights at /models/deltavlm")

    with TestClient(create_app(broken, ServerSettings(model="full"))) as client:
        deadline = time.monotonic() + 10
        while client.get("/health").json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.02)
        health = client.get("/health").json()
        assert health["status"] == "failed" and "no weights" in health["detail"]
        assert "failed to load" in client.post("/v1/pairs", json={"pair_id": "x"}).json()["detail"]


# --- the agent over HTTP, on a real loopback socket ----------------------------------------------------


@pytest.fixture
def example(tmp_path):
    paths = write_example(tmp_path / "example", seed=7)
    return paths, load_pair(paths.t1, paths.t2)


def _http_backend(url: str) -> HTTPBackend:
    return HTTPBackend(url, timeout_s=10.0, retries=1, backoff_s=0.05, options=GenerationOptions(max_new_tokens=TOKENS))


def _fresh_engine() -> ServingEngine:
    """An engine on a newly built runner: what a server process starts with (no cached features)."""
    return _engine(DeltaVLMRunner.from_config("tiny"))


def test_agent_over_http_end_to_end_then_the_server_stops_and_comes_back(example, tmp_path):
    paths, pair = example
    server = BackgroundServer(create_app(_fresh_engine())).start()
    port = server.port
    backend = _http_backend(server.url)
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "artefacts"), vlm_backend=backend)
    ask = functools.partial(agent.ask, pair, thread_id="t1", mask=paths.mask, mask_kind="levir-mci")
    try:
        for question in ["Has anything changed?", "How many new buildings?", "Describe the changes."]:
            answer = ask(question)
            reply = answer.evidence.model
            # the tiny model's words are noise: the tool refuses them, but only after the server answered
            assert reply is not None and (reply.text or "unreadable" in reply.error)
            assert reply.vision_encodes == 1 and answer.changed is True
        server.stop()  # mid-conversation
        down = ask("Where did the buildings change?")
        assert down.changed is True and down.cells and not down.model_used
        assert "DeltaVLM did not answer" in down.text and "unreachable" in down.evidence.model.error
        server = BackgroundServer(create_app(_fresh_engine()), port=port).start()  # restarted: the pair is unknown
        back = ask("Describe the changes.")
        assert back.evidence.model.vision_encodes == 1  # re-uploaded after the 404, encoded once there
        assert "unreachable" not in (back.evidence.model.error or "")
    finally:
        server.stop()
        agent.close()


def test_agent_settings_reach_the_server_with_a_token(example, tmp_path):
    _, pair = example
    app = create_app(_fresh_engine(), ServerSettings(token="tok"))
    with BackgroundServer(app) as server:
        model = ModelSettings(backend="http", endpoint=server.url, token="tok", timeout_s=30, retries=0)
        answer = Agent(AgentSettings(model=model, artefact_dir=tmp_path / "a")).ask(pair, "Has anything changed?")
        assert answer.evidence.model.vision_encodes == 1
        wrong = ModelSettings(backend="http", endpoint=server.url, token="nope", timeout_s=30, retries=0)
        refused = Agent(AgentSettings(model=wrong, artefact_dir=tmp_path / "b")).ask(pair, "Has anything changed?")
        assert "401" in refused.evidence.model.error and "verifiers alone" in refused.text


def test_garbage_from_the_server_falls_back_to_the_verifiers(example, tmp_path):
    _, pair = example
    garbage = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>proxy error</html>"))
    backend = HTTPBackend("http://127.0.0.1:1", retries=0, transport=garbage)
    answer = Agent(AgentSettings(artefact_dir=tmp_path / "a"), vlm_backend=backend).ask(pair, "Has anything changed?")
    assert answer.changed is not None and "not a pair id" in answer.evidence.model.error


# --- the command line ----------------------------------------------------------------------------------


def _serve_args(*argv: str):
    import argparse

    parser = argparse.ArgumentParser(prog="changeagent")
    add_serve_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


def test_serve_options_become_settings(monkeypatch):
    monkeypatch.setenv("CHANGEAGENT_TOKEN", "from-env")
    args = _serve_args("--model", "tiny", "--max-batch-size", "1", "--max-pixels", "1000", "--engine", "uvicorn")
    settings = settings_from_args(args)
    assert (settings.host, settings.port, settings.token) == ("127.0.0.1", 8700, "from-env")
    assert settings.max_batch_size == 1 and settings.limits.max_pixels == 1000 and settings.engine == "uvicorn"
    assert exposure_warning(settings) is None
    assert "WITHOUT a token" in exposure_warning(settings.model_copy(update={"host": "0.0.0.0", "token": None}))
    assert "with a bearer token" in exposure_warning(settings.model_copy(update={"host": "::"}))


def test_serve_refuses_a_misspelt_model_or_a_bad_value_in_a_second(capsys):
    assert serve(ServerSettings(model="tinyy", engine="uvicorn")) == 2
    assert "no DeltaVLM config 'tinyy'" in capsys.readouterr().err
    assert cmd_serve(_serve_args("--model", "tiny", "--max-batch-size", "0")) == 2
    assert "max_batch_size: Input should be greater than or equal to 1" in capsys.readouterr().err
