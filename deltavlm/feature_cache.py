"""A memory-bounded LRU cache of per-pair features, keyed by image content.

A conversation asks many questions about one pair; the Bi-VE + CSRM output depends only on the pixels
and the weights, so it is computed once and reused (the Q-former reads the question and runs per turn).
Keys hash the raw pixels, so the same pair loaded twice hits, and a changed pixel misses. Entries leave
least-recently-used first when either the byte budget or the entry budget is exceeded. Thread-safe,
because a server answers several conversations at once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Generic, Protocol, TypeVar

import numpy as np
from pydantic import BaseModel


class SizedValue(Protocol):
    def nbytes(self) -> int: ...


V = TypeVar("V", bound=SizedValue)


def pair_key(t1: np.ndarray, t2: np.ndarray, salt: str = "") -> str:
    """Content hash of an image pair (shape, dtype and bytes of both dates) plus a model fingerprint."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(salt.encode())
    for image in (t1, t2):
        array = np.ascontiguousarray(image)
        digest.update(f"{array.shape}|{array.dtype}|".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


class CacheStats(BaseModel):
    """Counters for logs and tests."""

    entries: int
    bytes: int
    max_bytes: int
    max_entries: int
    hits: int
    misses: int
    evictions: int


class PairFeatureCache(Generic[V]):
    """LRU mapping from :func:`pair_key` to features, bounded in bytes and in entries."""

    def __init__(self, max_bytes: int, max_entries: int) -> None:
        if max_bytes <= 0 or max_entries <= 0:
            raise ValueError("cache bounds must be positive")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._hits = self._misses = self._evictions = 0

    def get(self, key: str) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self._misses += 1
                return None
            self._items.move_to_end(key)
            self._hits += 1
            return item[0]

    def put(self, key: str, value: V) -> bool:
        """Store a value; one larger than the whole budget is not kept (returns False)."""
        size = value.nbytes()
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            if size > self.max_bytes:
                return False
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes or len(self._items) > self.max_entries:
                _, (_, evicted) = self._items.popitem(last=False)
                self._bytes -= evicted
                self._evictions += 1
            return True

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                entries=len(self._items),
                bytes=self._bytes,
                max_bytes=self.max_bytes,
                max_entries=self.max_entries,
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
            )
