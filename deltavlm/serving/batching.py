"""Request batching, independent of the serving engine: many awaiting callers, one model call per batch.

A GPU answers eight questions in about the time it answers one, so concurrent requests are gathered into
one call: a batch closes when it holds ``max_batch_size`` items or when its oldest item has waited
``max_wait_s``, whichever comes first. Measuring the wait from the oldest item (not from when the worker
woke up) keeps the latency batching adds at ``max_wait_s`` even while the model was busy. The batch
function is ``async`` and takes the items in submission order; it returns one result per item, and a
result that is an exception is raised in that item's caller only, so one bad request never fails its
neighbours.

:class:`MicroBatcher` is the asyncio implementation (the uvicorn engine and the in-process tests);
:func:`ray_serve_batcher` puts Ray Serve's ``@serve.batch`` behind the same interface, so the engine's
batch functions run unchanged under either.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BatchFunction = Callable[[list[T]], Awaitable[list[Any]]]


class Overloaded(RuntimeError):
    """The queue is full or a request waited past its deadline; the caller should retry later (HTTP 503)."""


class Batcher(Protocol[T, R]):
    """What the engine needs from a batching implementation."""

    max_batch_size: int
    max_wait_s: float

    async def submit(self, item: T) -> R: ...

    async def aclose(self) -> None: ...


BatcherFactory = Callable[[BatchFunction, int, float, str], "Batcher[Any, Any]"]


def _unwrap(result: Any) -> Any:
    if isinstance(result, BaseException):
        raise result
    return result


@dataclass
class _Pending(Generic[T]):
    item: T
    future: asyncio.Future[Any]
    enqueued: float = field(default_factory=time.monotonic)


class MicroBatcher(Generic[T, R]):
    """An asyncio micro-batcher: one worker task per event loop, one batch function call at a time.

    One call at a time is deliberate: the model lives on one device and is driven by one thread, so a
    second concurrent batch would only queue behind the first, while waiting here lets it grow instead.
    """

    def __init__(
        self,
        fn: BatchFunction,
        max_batch_size: int = 8,
        max_wait_s: float = 0.01,
        name: str = "batch",
        max_queue: int = 1024,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if max_wait_s < 0:
            raise ValueError("max_wait_s must not be negative")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.name = name
        self._pending: collections.deque[_Pending[T]] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def queued(self) -> int:
        return len(self._pending)

    def _ensure_worker(self) -> None:
        loop = asyncio.get_running_loop()
        if self._worker is not None and not self._worker.done() and self._loop is loop:
            return
        # a new event loop (a test client, a restarted server): earlier futures belong to a dead loop
        self._pending = collections.deque(p for p in self._pending if p.future.get_loop() is loop)
        self._loop = loop
        self._wakeup = asyncio.Event()
        self._worker = loop.create_task(self._run(), name=f"{self.name}-batcher")

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result (raises :class:`Overloaded` when the queue is full)."""
        if self._closed:
            raise Overloaded(f"the {self.name} batcher is shut down")
        self._ensure_worker()
        if len(self._pending) >= self.max_queue:
            raise Overloaded(f"{len(self._pending)} {self.name} requests already queued")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(item, future))
        assert self._wakeup is not None
        self._wakeup.set()
        return _unwrap(await future)

    async def _next_batch(self) -> list[_Pending[T]]:
        wakeup = self._wakeup
        assert wakeup is not None
        while not self._pending:
            wakeup.clear()
            await wakeup.wait()
        deadline = self._pending[0].enqueued + self.max_wait_s
        while len(self._pending) < self.max_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), remaining)
        count = min(self.max_batch_size, len(self._pending))
        return [self._pending.popleft() for _ in range(count)]

    async def _run(self) -> None:
        while True:
            batch = [p for p in await self._next_batch() if not p.future.done()]  # skip callers that left
            if not batch:
                continue
            try:
                results = await self.fn([p.item for p in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{self.name} batch function returned {len(results)} results for {len(batch)}")
            except asyncio.CancelledError:
                for p in batch:
                    if not p.future.done():
                        p.future.cancel()
                raise
            except Exception as exc:  # the batch failed as a whole: every caller in it hears why
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            for p, result in zip(batch, results, strict=True):
                if not p.future.done():
                    p.future.set_result(result)

    async def aclose(self) -> None:
        """Stop the worker; callers still waiting get :class:`Overloaded`."""
        self._closed = True
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._worker
        while self._pending:
            pending = self._pending.popleft()
            if not pending.future.done():
                pending.future.set_exception(Overloaded(f"the {self.name} batcher shut down"))


def micro_batcher(
    fn: BatchFunction, max_batch_size: int, max_wait_s: float, name: str, max_queue: int = 1024
) -> MicroBatcher[Any, Any]:
    """The default :data:`BatcherFactory`."""
    return MicroBatcher(fn, max_batch_size=max_batch_size, max_wait_s=max_wait_s, name=name, max_queue=max_queue)


class RayServeBatcher(Generic[T, R]):
    """Ray Serve's ``@serve.batch`` behind the :class:`Batcher` interface (needs ``ray[serve]``).

    Ray owns the queue and the timing here; its deployment's ``max_queued_requests`` gives back-pressure.
    """

    def __init__(self, fn: BatchFunction, max_batch_size: int, max_wait_s: float, name: str) -> None:
        from ray import serve

        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.name = name

        async def run_batch(items: list[Any]) -> list[Any]:
            return await fn(items)

        run_batch.__name__ = f"{name}_batch"
        self._batched = serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=max_wait_s)(run_batch)

    @property
    def queued(self) -> int:
        return 0  # Ray keeps its own queue; its metrics report it

    async def submit(self, item: T) -> R:
        return _unwrap(await self._batched(item))

    async def aclose(self) -> None:
        return None


def ray_serve_batcher(fn: BatchFunction, max_batch_size: int, max_wait_s: float, name: str) -> RayServeBatcher:
    """The :data:`BatcherFactory` used inside a Ray Serve replica."""
    return RayServeBatcher(fn, max_batch_size, max_wait_s, name)
