"""The DeltaVLM tool: one interface, two backends (in-process model, HTTP client to the GPU server).

The agent must keep answering when the model is absent, slow, down or talking nonsense, so
:meth:`DeltaVLMTool.ask` never raises: every failure comes back as a :class:`VLMReply` with its
error, and the agent answers from the verifiers and says why.
"""

from __future__ import annotations

import base64
import concurrent.futures
import re
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import httpx
import numpy as np
from pydantic import BaseModel, Field

from deltavlm.serving.schema import ChatRequest, ChatResponse, ChatTurn, GenerationOptions, PairCreated, PairUpload
from tools.pairs import ImagePair


class VLMUnavailable(RuntimeError):
    """The model could not give an answer (not reachable, timed out, refused the request)."""


class VLMReply(BaseModel):
    """What the model said, or why it said nothing."""

    backend: str
    instruction: str
    text: str | None = None
    error: str | None = None
    latency_s: float = 0.0
    vision_encodes: int | None = Field(None, description="Vision-encoder calls so far for this pair, when known.")

    @property
    def ok(self) -> bool:
        return self.text is not None and self.error is None


class VLMBackend(Protocol):
    """A way to reach DeltaVLM."""

    name: str

    def generate(self, pair: ImagePair, question: str, history: Sequence[tuple[str, str]]) -> str: ...


class InProcessBackend:
    """DeltaVLM loaded in this process (the tiny config in tests, a checkpoint on a GPU box)."""

    def __init__(self, config: str | Path, checkpoint: str | Path | None = None, **generation: object) -> None:
        from deltavlm.inference import DeltaVLMRunner

        self.runner = DeltaVLMRunner.from_config(config, checkpoint=checkpoint)
        self.generation = generation
        self.name = f"in-process DeltaVLM ({self.runner.config.name} config)"

    def generate(self, pair: ImagePair, question: str, history: Sequence[tuple[str, str]]) -> str:
        return self.runner.answer(pair.t1, pair.t2, question, history=list(history), **self.generation)

    def vision_encodes(self) -> int:
        return self.runner.vision_encoder_calls


def _png_b64(image: np.ndarray) -> str:
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise VLMUnavailable("could not encode the image as PNG")
    return base64.b64encode(buffer.tobytes()).decode("ascii")


AFFINITY_HEADER = "serve_multiplexed_model_id"


class HTTPBackend:
    """Client of the DeltaVLM server: uploads each pair once, then chats by pair id.

    Connection errors, time-outs and 5xx answers are retried with exponential backoff; a 404 on a
    pair id (the server restarted or evicted it) re-uploads the pair once; other 4xx are final.
    ``timeout_s`` bounds one question as a whole (upload, chat and every retry together), so the agent's
    "no answer within N s" is what the user waits at most, not N s per try.
    Every request names its pair in :data:`AFFINITY_HEADER`, which Ray Serve uses to route a conversation
    to the replica holding that pair (other servers ignore it).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        options: GenerationOptions | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(
            base_url=endpoint.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.options = options or GenerationOptions()
        self.name = f"DeltaVLM server at {endpoint}"
        self._uploaded: set[str] = set()
        self._encodes: int | None = None

    def _post(self, path: str, payload: BaseModel, pair_id: str, deadline: float) -> httpx.Response:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff_s * 2 ** (attempt - 1), max(0.0, deadline - time.monotonic())))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise VLMUnavailable(
                    f"{self.name} gave no answer within {self.timeout_s:g} s ({attempt} tries; last: {last})"
                )
            try:
                response = self.client.post(
                    path,
                    json=payload.model_dump(mode="json", exclude_none=True),
                    headers={AFFINITY_HEADER: pair_id},
                    timeout=min(self.timeout_s, remaining),
                )
            except httpx.HTTPError as exc:
                last = exc
                continue
            if response.status_code >= 500:
                last = VLMUnavailable(f"server error {response.status_code} on {path}: {response.text[:200]}")
                continue
            if response.status_code == 401:
                raise VLMUnavailable(f"{self.name} refused the bearer token (401); check the token setting")
            return response
        raise VLMUnavailable(f"{self.name} unreachable after {self.retries + 1} tries: {last}")

    def _upload(self, pair: ImagePair, deadline: float) -> None:
        upload = PairUpload(t1_png_b64=_png_b64(pair.t1), t2_png_b64=_png_b64(pair.t2))
        response = self._post("/v1/pairs", upload, pair.pair_id, deadline)
        if response.status_code != 200:
            raise VLMUnavailable(f"pair upload refused ({response.status_code}): {response.text[:200]}")
        try:
            created = PairCreated.model_validate(response.json())
        except ValueError as exc:
            raise VLMUnavailable(f"the server's answer to the upload is not a pair id: {exc}") from exc
        if created.pair_id != pair.pair_id:
            raise VLMUnavailable(f"server hashed the pair as {created.pair_id}, expected {pair.pair_id}")
        self._uploaded.add(pair.pair_id)

    def vision_encodes(self) -> int | None:
        """Vision-encoder passes the server reports for the pair of the last answer (1 = encoded once)."""
        return self._encodes

    def generate(self, pair: ImagePair, question: str, history: Sequence[tuple[str, str]]) -> str:
        request = ChatRequest(
            pair_id=pair.pair_id,
            history=[ChatTurn(question=q, answer=a) for q, a in history],
            question=question,
            options=self.options,
        )
        self._encodes = None
        deadline = time.monotonic() + self.timeout_s  # one budget for the whole question
        for _ in range(2):
            if pair.pair_id not in self._uploaded:
                self._upload(pair, deadline)
            response = self._post("/v1/chat", request, pair.pair_id, deadline)
            if response.status_code == 404:
                self._uploaded.discard(pair.pair_id)
                continue
            if response.status_code != 200:
                raise VLMUnavailable(f"chat refused ({response.status_code}): {response.text[:200]}")
            try:
                reply = ChatResponse.model_validate(response.json())
            except ValueError as exc:
                raise VLMUnavailable(f"the server's answer is not a chat response: {exc}") from exc
            self._encodes = reply.pair_encodes
            return reply.text
        raise VLMUnavailable("the server lost the pair twice in a row")


_WORD = re.compile(r"^[a-z]+(?:[-'][a-z]+)*[.,;:!?]*$|^\d+[.,;:]?$|^\[.*\]?,?$|^'[a-z-]+'[,\]]*$")


def unreadable(text: str) -> str | None:
    """Why ``text`` is not an answer a person could read (None when it is).

    An untrained or broken model emits control characters, replacement characters and word salad;
    such text must not reach the user as if it were an answer.
    """
    if any(unicodedata.category(ch) in ("Cc", "Co", "Cs") and ch not in "\n\t" for ch in text) or "\ufffd" in text:
        return "it contains control or undecodable characters"
    tokens = text.lower().split()
    words = sum(1 for token in tokens if _WORD.match(token))
    if tokens and words / len(tokens) < 0.7:
        return f"only {words} of its {len(tokens)} tokens are words"
    return None


class DeltaVLMTool:
    """Runs a backend with a time limit and turns every failure into an explained reply."""

    def __init__(self, backend: VLMBackend, timeout_s: float = 60.0) -> None:
        self.backend = backend
        self.timeout_s = timeout_s
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="deltavlm")

    @property
    def name(self) -> str:
        return self.backend.name

    def ask(self, pair: ImagePair, instruction: str, history: Sequence[tuple[str, str]] = ()) -> VLMReply:
        started = time.perf_counter()
        reply = VLMReply(backend=self.backend.name, instruction=instruction)
        future = self._pool.submit(self.backend.generate, pair, instruction, list(history))
        try:
            text = future.result(timeout=self.timeout_s)
        except concurrent.futures.TimeoutError:
            reply.error = f"no answer within {self.timeout_s:g} s"
        except VLMUnavailable as exc:
            reply.error = str(exc)
        except Exception as exc:  # a broken model must not break the conversation
            reply.error = f"model failed: {type(exc).__name__}: {exc}"
        else:
            if not isinstance(text, str) or not text.strip():
                reply.error = f"model returned no usable text ({text!r:.80})"
            elif (why := unreadable(text)) is not None:
                reply.error = f"model returned unreadable text ({why}): {text.strip()[:60]!r}"
            else:
                reply.text = text.strip()
        reply.latency_s = round(time.perf_counter() - started, 4)
        encodes = getattr(self.backend, "vision_encodes", None)
        reply.vision_encodes = encodes() if callable(encodes) else None
        return reply
