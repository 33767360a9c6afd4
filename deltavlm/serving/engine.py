"""The serving core: pairs held by id, batched encoding and generation, one model thread, metrics.

HTTP and the serving engine (uvicorn or Ray Serve) sit on top of :class:`ServingEngine`; nothing here
knows about either, so the fast tests drive the same code the server runs.

- Pairs are held by id (:class:`PairStore`, LRU bounded in bytes and entries) because a chat request names
  its pair instead of resending the pixels; when a pair leaves the store the client gets 404 and re-uploads.
- The features of a pair live in the runner's :class:`~deltavlm.feature_cache.PairFeatureCache` (LRU, bounded
  in bytes, shared by every request), so a conversation encodes its pair once: at upload. If the features
  were evicted meanwhile, the next chat re-encodes from the held pixels, and ``pair_encodes`` says so.
- Uploads are batched into one Bi-VE forward; chats with equal generation options into one ``generate``
  (with the LLM's KV cache). Both run on one model thread, so the event loop keeps answering
  ``/health`` and ``/metrics`` while the model works, and the model sees one caller at a time.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from deltavlm.feature_cache import pair_key
from deltavlm.inference import AnswerRequest, DeltaVLMRunner
from deltavlm.serving.batching import Batcher, BatcherFactory, Overloaded, micro_batcher
from deltavlm.serving.hashing import pair_hash
from deltavlm.serving.metrics import ServerMetrics
from deltavlm.serving.schema import GenerationOptions, HealthResponse, RequestLimits

log = logging.getLogger(__name__)


@dataclass(eq=False)
class StoredPair:
    """One pair's pixels as the server holds them, with its ids and how often it was encoded."""

    pair_id: str
    t1: np.ndarray
    t2: np.ndarray
    feature_key: str
    encodes: int = 0

    @property
    def nbytes(self) -> int:
        return int(self.t1.nbytes + self.t2.nbytes)


class PairStore:
    """Pairs by id, least recently used out first once the byte or entry budget is exceeded."""

    def __init__(self, max_bytes: int, max_entries: int) -> None:
        if max_bytes <= 0 or max_entries <= 0:
            raise ValueError("pair store bounds must be positive")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._items: collections.OrderedDict[str, StoredPair] = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.evictions = 0

    def get(self, pair_id: str) -> StoredPair | None:
        with self._lock:
            pair = self._items.get(pair_id)
            if pair is not None:
                self._items.move_to_end(pair_id)
            return pair

    def put(self, pair: StoredPair) -> StoredPair:
        """Keep ``pair``; when its id is already held, the held one (with its encode count) is returned."""
        with self._lock:
            held = self._items.get(pair.pair_id)
            if held is not None:
                self._items.move_to_end(pair.pair_id)
                return held
            self._items[pair.pair_id] = pair
            self._bytes += pair.nbytes
            while len(self._items) > 1 and (self._bytes > self.max_bytes or len(self._items) > self.max_entries):
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes
                self.evictions += 1
            return pair

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes


class PairDirectory(Protocol):
    """Pairs held beyond this process (Ray Serve with several replicas: one store shared by all of them)."""

    async def publish(self, pair_id: str, t1: np.ndarray, t2: np.ndarray) -> None: ...

    async def lookup(self, pair_id: str) -> tuple[np.ndarray, np.ndarray] | None: ...


@dataclass
class EncodeJob:
    pair: StoredPair
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class ChatJob:
    pair: StoredPair
    question: str
    history: list[tuple[str, str]]
    options: GenerationOptions
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class ChatResult:
    text: str
    tokens: int
    queue_s: float
    generate_s: float
    batch_size: int
    pair_encodes: int


class _TokenCounter:
    """Counts the new tokens per row of the model's last ``generate`` call.

    ``DeltaVLMRunner.answer_batch`` returns decoded text only, and re-tokenising text does not give back the
    generated count, so the model's ``generate`` is wrapped once (a pass-through) to read its output shape.
    Only the model thread calls it, so ``last`` belongs to the batch that thread just ran.
    """

    def __init__(self, runner: DeltaVLMRunner) -> None:
        self._generate = runner.model.generate
        tokenizer = runner.tokenizers.llm
        self._stops = {t for t in (tokenizer.eos_token_id, tokenizer.pad_token_id) if t is not None}
        self.last: list[int] = []

    @classmethod
    def install(cls, runner: DeltaVLMRunner) -> _TokenCounter:
        """Wrap the runner's model once; a second engine on the same runner shares the wrapper."""
        existing = runner.model.__dict__.get("generate")
        if isinstance(existing, cls):
            return existing
        counter = cls(runner)
        runner.model.generate = counter  # type: ignore[method-assign]  # instance attribute shadows the method
        return counter

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        tokens = self._generate(*args, **kwargs)
        counts = []
        for row in tokens.tolist():
            stop = next((i for i, token in enumerate(row) if token in self._stops), len(row))
            counts.append(stop)
        self.last = counts
        return tokens


def _dtype_label(runner: DeltaVLMRunner) -> str:
    weights = str(next(runner.model.language_model.parameters()).dtype).removeprefix("torch.")
    autocast = runner.config.runtime.autocast_dtype
    if runner.model.device.type != "cpu" and autocast != "none" and autocast != weights:
        return f"{weights} (autocast {autocast})"
    return weights


class ServingEngine:
    """DeltaVLM behind two batchers (encode, generate), a pair store and metrics."""

    def __init__(
        self,
        runner: DeltaVLMRunner,
        *,
        max_batch_size: int = 8,
        max_wait_ms: float = 10.0,
        queue_timeout_s: float = 60.0,
        pair_store_bytes: int = 512 * 2**20,
        pair_store_entries: int = 4096,
        limits: RequestLimits | None = None,
        batcher_factory: BatcherFactory = micro_batcher,
        engine_name: str = "uvicorn",
        metrics: ServerMetrics | None = None,
        directory: PairDirectory | None = None,
    ) -> None:
        self.runner = runner
        self.directory = directory
        self.limits = limits or RequestLimits()
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.queue_timeout_s = queue_timeout_s
        self.engine_name = engine_name
        self.pairs = PairStore(pair_store_bytes, pair_store_entries)
        self.metrics = metrics or ServerMetrics()
        self._salt = runner.config.fingerprint()
        self._tokens = _TokenCounter.install(runner)
        self._model_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="deltavlm-model")
        wait_s = max_wait_ms / 1000.0
        self.encoder: Batcher[EncodeJob, bool] = batcher_factory(self._encode_batch, max_batch_size, wait_s, "encode")
        self.generator: Batcher[ChatJob, ChatResult] = batcher_factory(
            self._chat_batch, max_batch_size, wait_s, "generate"
        )
        self.on_pair: Callable[[str], Awaitable[None]] | None = None  # the engine's routing hook (Ray: affinity)
        self._register_metrics()

    # --- description ------------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        return self.runner.config.name

    def health(self) -> HealthResponse:
        stats = self.runner.cache_stats()
        return HealthResponse(
            status="ok",
            ready=True,
            model=self.model_name,
            device=str(self.runner.model.device),
            dtype=_dtype_label(self.runner),
            engine=self.engine_name,
            max_batch_size=self.max_batch_size,
            max_wait_ms=self.max_wait_ms,
            pairs=len(self.pairs),
            feature_cache=stats.model_dump(),
            limits=self.limits,
        )

    def _register_metrics(self) -> None:
        r = self.metrics.registry
        cache = self.runner.cache_stats
        r.callback(
            "deltavlm_feature_cache_hits_total", "Feature-cache lookups served.", lambda: cache().hits, "counter"
        )
        r.callback(
            "deltavlm_feature_cache_misses_total",
            "Feature-cache lookups missed (each one a pair encoded).",
            lambda: cache().misses,
            "counter",
        )
        r.callback(
            "deltavlm_feature_cache_evictions_total",
            "Features dropped for space.",
            lambda: cache().evictions,
            "counter",
        )
        r.callback("deltavlm_feature_cache_entries", "Pairs with cached features.", lambda: cache().entries)
        r.callback("deltavlm_feature_cache_bytes", "Bytes of cached features.", lambda: cache().bytes)
        r.callback(
            "deltavlm_vision_encoder_calls_total",
            "Batched Bi-VE forwards run.",
            lambda: self.runner.vision_encoder_calls,
            "counter",
        )
        r.callback("deltavlm_pairs_held", "Pairs held by id for chat.", lambda: len(self.pairs))
        r.callback("deltavlm_pair_store_bytes", "Bytes of held pair pixels.", lambda: self.pairs.nbytes)
        r.callback(
            "deltavlm_pair_store_evictions_total", "Pairs dropped for space.", lambda: self.pairs.evictions, "counter"
        )
        r.callback(
            "deltavlm_queued_requests",
            "Requests waiting for a batch (uvicorn engine).",
            lambda: getattr(self.encoder, "queued", 0) + getattr(self.generator, "queued", 0),
        )

    # --- the public coroutines ----------------------------------------------------------------------

    def hold_pair(self, t1: np.ndarray, t2: np.ndarray) -> StoredPair:
        """Hash and keep a decoded pair (CPU work: call it off the event loop for large images)."""
        pair = StoredPair(pair_hash(t1, t2), t1, t2, pair_key(t1, t2, salt=self._salt))
        return self.pairs.put(pair)

    async def find_pair(self, pair_id: str) -> StoredPair | None:
        """The pair held here, else one another replica published (fetched, hashed again, held here)."""
        pair = self.pairs.get(pair_id)
        if pair is None and self.directory is not None:
            found = await self.directory.lookup(pair_id)
            if found is not None:
                t1, t2 = (np.array(image) for image in found)  # own, writable copies
                pair = await asyncio.to_thread(self.hold_pair, t1, t2)
                if pair.pair_id != pair_id:
                    return None
        return pair

    async def publish(self, pair: StoredPair) -> None:
        """Make an uploaded pair findable by the other replicas (no-op on a single server)."""
        if self.directory is not None:
            await self.directory.publish(pair.pair_id, pair.t1, pair.t2)

    async def note_pair(self, pair_id: str) -> None:
        """Tell the serving engine this replica holds ``pair_id`` (so it routes the conversation here)."""
        if self.on_pair is not None:
            await self.on_pair(pair_id)

    def is_encoded(self, pair: StoredPair) -> bool:
        return pair.feature_key in self.runner.cache

    async def encode(self, pair: StoredPair) -> bool:
        """Make sure the pair's features are cached; True when this call encoded it."""
        if self.is_encoded(pair):
            return False
        return await self.encoder.submit(EncodeJob(pair))

    async def chat(
        self, pair: StoredPair, question: str, history: Sequence[tuple[str, str]], options: GenerationOptions
    ) -> ChatResult:
        return await self.generator.submit(ChatJob(pair, question, list(history), options))

    async def aclose(self) -> None:
        await self.encoder.aclose()
        await self.generator.aclose()
        self._model_thread.shutdown(wait=False, cancel_futures=True)

    # --- batch functions (called by the batchers on the event loop) ---------------------------------

    async def _on_model_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, fn, *args)

    def _expired(self, enqueued: float, now: float) -> Overloaded | None:
        waited = now - enqueued
        if waited > self.queue_timeout_s:
            return Overloaded(f"waited {waited:.1f} s in the queue (limit {self.queue_timeout_s:g} s)")
        return None

    async def _encode_batch(self, jobs: list[EncodeJob]) -> list[bool | Exception]:
        return await self._on_model_thread(self._encode_sync, jobs)

    async def _chat_batch(self, jobs: list[ChatJob]) -> list[ChatResult | Exception]:
        return await self._on_model_thread(self._chat_sync, jobs)

    # --- on the model thread ------------------------------------------------------------------------

    def _encode_sync(self, jobs: list[EncodeJob]) -> list[bool | Exception]:
        started = time.perf_counter()
        results: list[bool | Exception] = []
        todo: dict[str, StoredPair] = {}
        for job in jobs:
            self.metrics.queue_seconds.observe(started - job.enqueued, stage="encode")
            expired = self._expired(job.enqueued, started)
            if expired is not None:
                results.append(expired)
            elif self.is_encoded(job.pair) or job.pair.feature_key in todo:
                results.append(False)
            else:
                todo[job.pair.feature_key] = job.pair
                results.append(True)
        if todo:
            pairs = list(todo.values())
            try:
                self.runner.encode_pairs([(p.t1, p.t2) for p in pairs])
            except Exception as exc:
                log.exception("encoding %d pairs failed", len(pairs))
                return [exc if r is True else r for r in results]
            for pair in pairs:
                pair.encodes += 1
            self.metrics.batch_size.observe(len(pairs), stage="encode")
            self.metrics.encode_seconds.observe(time.perf_counter() - started)
        return results

    def _chat_sync(self, jobs: list[ChatJob]) -> list[ChatResult | Exception]:
        results: dict[int, ChatResult | Exception] = {}
        groups: dict[str, list[int]] = {}
        now = time.perf_counter()
        for index, job in enumerate(jobs):
            expired = self._expired(job.enqueued, now)
            if expired is not None:
                results[index] = expired
            else:
                groups.setdefault(job.options.model_dump_json(), []).append(index)
        for members in groups.values():
            group = [jobs[i] for i in members]
            try:
                outcome = self._generate_group(group)
            except Exception as exc:  # one failing group (e.g. out of memory) fails its requests only
                log.exception("generation for %d requests failed", len(group))
                outcome = [exc] * len(group)
            results.update(zip(members, outcome, strict=True))
        return [results[i] for i in range(len(jobs))]

    def _generate_group(self, group: list[ChatJob]) -> list[ChatResult]:
        started = time.perf_counter()
        unencoded = {job.pair.feature_key: job.pair for job in group if not self.is_encoded(job.pair)}
        requests = [AnswerRequest(job.pair.t1, job.pair.t2, job.question, job.history) for job in group]
        texts = self.runner.answer_batch(requests, **group[0].options.model_dump())
        tokens = self._tokens.last if len(self._tokens.last) == len(group) else [0] * len(group)
        elapsed = time.perf_counter() - started
        for pair in unencoded.values():
            pair.encodes += 1
        if unencoded:
            self.metrics.batch_size.observe(len(unencoded), stage="encode")
        self.metrics.batch_size.observe(len(group), stage="generate")
        self.metrics.generate_seconds.observe(elapsed)
        self.metrics.generated_tokens.inc(sum(tokens))
        out = []
        for job, text, count in zip(group, texts, tokens, strict=True):
            self.metrics.queue_seconds.observe(started - job.enqueued, stage="generate")
            out.append(
                ChatResult(
                    text=text,
                    tokens=count,
                    queue_s=started - job.enqueued,
                    generate_s=elapsed,
                    batch_size=len(group),
                    pair_encodes=job.pair.encodes,
                )
            )
        return out
