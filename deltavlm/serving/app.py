"""The HTTP surface of the DeltaVLM server: a FastAPI app over a :class:`ServingEngine`.

The same app runs under uvicorn, under Ray Serve (as the replica's ingress) and in-process in the tests.
Every failure has a status a client can act on: 401 wrong token, 404 unknown pair (re-upload it),
413 too large, 415 not a PNG, 422 malformed or beyond a limit, 503 loading or overloaded (retry later),
500 a model failure (logged; the server keeps serving). No request can take the process down: bodies are
bounded before they are read, images before they are decoded, and the model runs on its own thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deltavlm.serving.batching import BatcherFactory, Overloaded, micro_batcher
from deltavlm.serving.engine import PairDirectory, ServingEngine, StoredPair
from deltavlm.serving.limits import RequestRejected, check_chat, check_pair, decode_png_b64, read_png_under
from deltavlm.serving.metrics import CONTENT_TYPE, ServerMetrics
from deltavlm.serving.schema import (
    ChatRequest,
    ChatResponse,
    ErrorResponse,
    HealthResponse,
    PairCreated,
    PairUpload,
)
from deltavlm.serving.settings import ServerSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

EngineFactory = Callable[[ServerMetrics], ServingEngine]
CHAT_BODY_BYTES = 64 * 1024  # a chat request without its history: ids, question, options
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
ROUTES = frozenset({"/health", "/metrics", "/v1/pairs", "/v1/chat", "/docs", "/openapi.json"})
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        401: "Missing or wrong bearer token.",
        404: "Unknown pair id: upload the pair (again).",
        413: "Body, image bytes or pixels beyond the server's limits.",
        415: "An image that is not a PNG.",
        422: "Malformed request, or beyond a limit (turns, tokens, beams, history).",
        503: "Model loading, or too many requests queued: retry later.",
    }.items()
}


_BEARER = HTTPBearer(auto_error=False, description="Required when the server was started with a token.")


def _authorize(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)] = None) -> None:
    """Documents the token in the OpenAPI schema; :class:`ServerGuard` has already checked it."""


class EngineSlot:
    """The engine once it exists: loading the model can take minutes, and /health answers meanwhile."""

    def __init__(self, source: ServingEngine | EngineFactory) -> None:
        if isinstance(source, ServingEngine):
            self.engine: ServingEngine | None = source
            self.factory: EngineFactory | None = None
            self.metrics = source.metrics
        else:
            self.engine = None
            self.factory = source
            self.metrics = ServerMetrics()
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start_loading(self) -> None:
        if self.engine is None and self.factory is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._load())

    async def _load(self) -> None:
        assert self.factory is not None
        try:
            self.engine = await asyncio.to_thread(self.factory, self.metrics)
        except Exception as exc:
            log.exception("loading the model failed")
            self.error = f"{type(exc).__name__}: {exc}"

    def require(self) -> ServingEngine:
        if self.engine is not None:
            return self.engine
        if self.error is not None:
            raise RequestRejected(503, f"the model failed to load: {self.error}", "not_ready")
        raise RequestRejected(503, "the model is still loading; retry shortly", "not_ready")


class _BodyTooLarge(HTTPException):
    """Raised while the body streams in, so an oversized chunked upload is cut off too."""


class _BodyTimeout(HTTPException):
    """Raised when a client stops sending its body: a half-sent request must not hold a connection forever."""


class ServerGuard:
    """Outermost ASGI layer: bearer token and body size checked before a byte of body is read, the body's
    arrival bounded in time; metrics."""

    def __init__(self, app: ASGIApp, settings: ServerSettings, metrics: ServerMetrics) -> None:
        self.app = app
        self.token = settings.token.encode() if settings.token else None
        self.max_body = settings.limits.max_body_bytes
        self.max_chat_body = CHAT_BODY_BYTES + 8 * settings.limits.max_history_chars  # no images in a chat
        self.body_timeout_s = settings.body_timeout_s
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope.get("path", "")
        route = path if path in ROUTES else "other"
        status = 500  # until a response starts: an exception that escapes is a 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope, path)
            if refusal is not None:
                await refusal(scope, receive, send_wrapper)
                return
            received = 0
            limit = self._body_limit(path)
            deadline = time.monotonic() + self.body_timeout_s
            body_done = False

            async def receive_wrapper() -> Message:
                nonlocal received, body_done
                if body_done:  # after the body only a disconnect can come; it is not the client's to rush
                    return await receive()
                try:
                    message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - time.monotonic()))
                except TimeoutError as exc:
                    self.metrics.rejected.inc(reason="body_timeout")
                    raise _BodyTimeout(
                        408, f"the request body did not arrive within {self.body_timeout_s:g} s"
                    ) from exc
                if message["type"] == "http.request":
                    body_done = not message.get("more_body", False)
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise _BodyTooLarge(413, f"the request body exceeds {limit} bytes")
                return message

            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            self.metrics.requests.inc(route=route, status=str(status))
            self.metrics.request_seconds.observe(time.perf_counter() - started, route=route)

    def _refusal(self, scope: Scope, path: str) -> JSONResponse | None:
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if self.token is not None and path not in OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            scheme, _, credential = given.partition(b" ")
            if scheme.lower() != b"bearer" or not secrets.compare_digest(credential.strip(), self.token):
                self.metrics.rejected.inc(reason="auth")
                return JSONResponse(
                    {"detail": "missing or wrong bearer token"}, 401, headers={"WWW-Authenticate": "Bearer"}
                )
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return JSONResponse({"detail": "invalid Content-Length header"}, 400)
            limit = self._body_limit(path)
            if declared > limit:
                self.metrics.rejected.inc(reason="body_bytes")
                return JSONResponse({"detail": f"the request body is {declared} bytes; the limit is {limit}"}, 413)
        return None

    def _body_limit(self, path: str) -> int:
        return self.max_chat_body if path == "/v1/chat" else self.max_body


M = TypeVar("M", bound=BaseModel)


def body_off_the_loop(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency that parses and validates the JSON body of ``model`` on a worker thread.

    FastAPI parses a body on the event loop; a burst of multi-megabyte uploads then holds the loop for seconds,
    and ``/health`` (5.4 s in the probe) waits behind them. Parsed on a thread, the loop keeps its turn every
    few milliseconds (the interpreter's switch interval) and answers ``/health`` meanwhile."""

    async def parse(request: Request) -> M:
        raw = await request.body()
        try:
            return await asyncio.to_thread(model.model_validate_json, raw)
        except ValidationError as exc:
            errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
            raise RequestValidationError(errors) from None

    return parse


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of ``model``, which a dependency-parsed body would otherwise not document."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _document_bodies(app: FastAPI, models: tuple[type[BaseModel], ...]) -> None:
    """Add the body models (and the models they use) to the app's OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, part in model_schema.pop("$defs", {}).items():
                    components.setdefault(name, part)
                components[model.__name__] = model_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _model_call(call: Awaitable[T]) -> T:
    """Await the engine; a model failure (already logged with its traceback) becomes a 500 for this request."""
    try:
        return await call
    except (Overloaded, RequestRejected):
        raise
    except Exception as exc:
        raise RequestRejected(500, f"the model failed ({type(exc).__name__}: {exc})", "model_error") from exc


def _hold_upload(engine: ServingEngine, upload: PairUpload, settings: ServerSettings) -> StoredPair:
    """Decode, check and keep an uploaded pair (CPU work, run off the event loop)."""
    limits = engine.limits
    if upload.mode == "images":
        assert upload.t1_png_b64 is not None and upload.t2_png_b64 is not None
        t1 = decode_png_b64(upload.t1_png_b64, "t1", limits)
        t2 = decode_png_b64(upload.t2_png_b64, "t2", limits)
    else:
        assert upload.t1_path is not None and upload.t2_path is not None
        t1 = read_png_under(settings.data_root, upload.t1_path, "t1", limits)
        t2 = read_png_under(settings.data_root, upload.t2_path, "t2", limits)
    check_pair(t1, t2)
    return engine.hold_pair(t1, t2)


def create_app(source: ServingEngine | EngineFactory, settings: ServerSettings | None = None) -> FastAPI:
    """The app over a ready engine, or over a factory that loads one in the background at startup."""
    settings = settings or ServerSettings()
    slot = EngineSlot(source)
    metrics = slot.metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        slot.start_loading()
        yield
        if slot.factory is not None and slot.engine is not None:  # close only what this app built
            await slot.engine.aclose()

    app = FastAPI(
        title="DeltaVLM server",
        version="1",
        description="Change questions about bi-temporal image pairs: upload a pair once, then chat by its id.",
        lifespan=lifespan,
    )
    app.state.slot = slot
    _document_bodies(app, (PairUpload, ChatRequest))

    @app.exception_handler(RequestRejected)
    async def rejected(_: Request, exc: RequestRejected) -> JSONResponse:
        metrics.rejected.inc(reason=exc.reason)
        return JSONResponse({"detail": exc.detail}, exc.status)

    @app.exception_handler(Overloaded)
    async def overloaded(_: Request, exc: Overloaded) -> JSONResponse:
        metrics.rejected.inc(reason="overloaded")
        return JSONResponse({"detail": f"the server is busy: {exc}"}, 503, headers={"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.rejected.inc(reason="malformed")
        errors = [{k: e.get(k) for k in ("loc", "msg", "type")} for e in exc.errors()]  # never echo the input
        return JSONResponse({"detail": errors}, 422)

    @app.exception_handler(Exception)
    async def failed(_: Request, exc: Exception) -> JSONResponse:
        log.error("request failed", exc_info=exc)
        return JSONResponse({"detail": f"the model failed ({type(exc).__name__}: {exc}); see the server log"}, 500)

    @app.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        """Liveness and readiness: 200 whenever the process answers; ``ready`` says whether the model does."""
        if slot.engine is not None:
            return slot.engine.health()
        return HealthResponse(
            status="failed" if slot.error else "loading",
            ready=False,
            model=settings.model,
            engine=settings.engine,
            detail=slot.error or "loading the model",
            limits=settings.limits,
        )

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=[Depends(_authorize)])
    async def prometheus() -> PlainTextResponse:
        """Prometheus text: requests, batch sizes, queue/encode/generate time, cache hits, encoder calls."""
        return PlainTextResponse(metrics.registry.render(), media_type=CONTENT_TYPE)

    @app.post(
        "/v1/pairs",
        response_model=PairCreated,
        responses=ERRORS,
        dependencies=[Depends(_authorize)],
        openapi_extra=_json_body(PairUpload),
    )
    async def create_pair(upload: Annotated[PairUpload, Depends(body_off_the_loop(PairUpload))]) -> PairCreated:
        """Upload a pair (or name one held), get its content hash as id; its features are computed once."""
        engine = slot.require()
        if upload.mode == "reference":
            assert upload.pair_id is not None
            pair = await engine.find_pair(upload.pair_id)
            if pair is None:
                raise RequestRejected(404, f"pair {upload.pair_id} is not held here; upload its images", "unknown_pair")
        else:
            pair = await asyncio.to_thread(_hold_upload, engine, upload, settings)
            await engine.publish(pair)
        await engine.note_pair(pair.pair_id)
        encoded = await _model_call(engine.encode(pair))
        return PairCreated(pair_id=pair.pair_id, encoded=encoded, width=pair.t1.shape[1], height=pair.t1.shape[0])

    @app.post(
        "/v1/chat",
        response_model=ChatResponse,
        responses=ERRORS,
        dependencies=[Depends(_authorize)],
        openapi_extra=_json_body(ChatRequest),
    )
    async def chat(request: Annotated[ChatRequest, Depends(body_off_the_loop(ChatRequest))]) -> ChatResponse:
        """Answer one question about a held pair, given the conversation so far."""
        started = time.perf_counter()
        engine = slot.require()
        check_chat(request, engine.limits)
        pair = await engine.find_pair(request.pair_id)
        metrics.pair_lookups.inc(result="miss" if pair is None else "hit")
        if pair is None:
            raise RequestRejected(
                404,
                f"unknown pair id {request.pair_id[:40]}: upload the pair with POST /v1/pairs "
                "(the server restarted or dropped it for space)",
                "unknown_pair",
            )
        await engine.note_pair(pair.pair_id)
        history = [(turn.question, turn.answer) for turn in request.history]
        result = await _model_call(engine.chat(pair, request.question, history, request.options))
        return ChatResponse(
            text=result.text,
            tokens=result.tokens,
            timings={
                "queue_s": round(result.queue_s, 6),
                "generate_s": round(result.generate_s, 6),
                "total_s": round(time.perf_counter() - started, 6),
            },
            model=engine.model_name,
            batch_size=result.batch_size,
            pair_encodes=result.pair_encodes,
        )

    app.add_middleware(ServerGuard, settings=settings, metrics=metrics)
    return app


def engine_factory(
    settings: ServerSettings,
    batcher_factory: BatcherFactory | None = None,
    engine_name: str | None = None,
    directory: PairDirectory | None = None,
) -> EngineFactory:
    """A factory that loads the model the settings name and wraps it in an engine (for :func:`create_app`)."""
    from deltavlm.serving.settings import load_runner

    batchers = batcher_factory or functools.partial(micro_batcher, max_queue=settings.max_queue)

    def build(metrics: ServerMetrics) -> ServingEngine:
        return ServingEngine(
            load_runner(settings),
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            queue_timeout_s=settings.queue_timeout_s,
            pair_store_bytes=settings.pair_store_mb * 2**20,
            pair_store_entries=settings.pair_store_entries,
            limits=settings.limits,
            batcher_factory=batchers,
            engine_name=engine_name or settings.engine,
            metrics=metrics,
            directory=directory,
        )

    return build
