"""Pixels, masks and verdicts of the pairs under discussion, computed once and kept out of the checkpoint.

An entry is keyed by everything its mask and numbers depend on (:class:`PairKey`): the pixels (content hash),
the georeference, the metres per pixel, how the pixels were scaled to 8-bit, where both dates hold data, the
files the pixels came from (a learned provider may read their other bands) and the mask provider's typed key.
The same pixels at two pixel sizes, or with two masks, are two entries; neither is ever answered from the other.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from deltavlm.rules import RuleSettings
from tools.masks import ChangeMask, MaskProvider, ProviderKey, provider_key
from tools.pairs import ImagePair
from tools.raster import Georef
from tools.verify import Verification, verify


class PairKey(BaseModel):
    """What a pair's mask and numbers depend on."""

    model_config = ConfigDict(frozen=True)

    pair_id: str
    georef: Georef | None
    gsd_m: float | None
    scaling: str
    valid: str | None
    files: tuple[str, ...]
    provider: ProviderKey

    @classmethod
    def of(cls, pair: ImagePair, provider: MaskProvider, spec: ProviderKey | None = None) -> PairKey:
        files = tuple(str(p.resolve()) for p in (pair.t1_path, pair.t2_path) if p is not None)
        return cls(
            pair_id=pair.pair_id,
            georef=pair.georef,
            gsd_m=pair.gsd_m,
            scaling=pair.scaling,
            valid=pair.valid_id,
            files=files,
            provider=spec if spec is not None else provider_key(provider),
        )

    @property
    def digest(self) -> str:
        """A short stable name of the key (the thread's state holds it to find the entry)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:32]


@dataclass
class PairEntry:
    """Everything computed for one pair, computed once."""

    pair: ImagePair
    provider: MaskProvider
    mask: ChangeMask | None = None
    verification: Verification | None = None
    derived: dict[Any, Any] = field(default_factory=dict)
    """Results derived from the verification (per-region change for a pixel size), computed once per key."""


class PairStore:
    """LRU of pairs and their masks and verdicts, so a conversation decodes and verifies a pair once."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, PairEntry] = OrderedDict()
        self._by_object: dict[tuple[int, ProviderKey], str] = {}
        """The key last made for a pair object and a provider key: a thread's turns pass the same pair object, and
        its key (paths resolved, georeference written out, hashed) need not be made again while the entry holds
        that very object (a pair is not changed after loading; ``pair_id`` relies on that too)."""
        self.verifications = 0

    def put(self, pair: ImagePair, provider: MaskProvider) -> str:
        """The entry's key for ``pair`` read by ``provider`` (made when new); ``get`` and ``verified`` take it."""
        spec = provider_key(provider)  # every turn: a mask file edited since is another provider key
        key = self._by_object.get((id(pair), spec))
        entry = self._entries.get(key) if key is not None else None
        if entry is None or entry.pair is not pair:
            key = PairKey.of(pair, provider, spec).digest
            if key not in self._entries:
                self._entries[key] = PairEntry(pair=pair, provider=provider)
            if self._entries[key].pair is pair:
                self._by_object[(id(pair), spec)] = key
        self._entries.move_to_end(key)
        if len(self._entries) > self.capacity:
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
            self._by_object = {k: v for k, v in self._by_object.items() if v in self._entries}
        return key

    def seed(self, pair: ImagePair, provider: MaskProvider, mask: ChangeMask, verification: Verification) -> str:
        """Hand over a mask and verdict computed elsewhere (a batch worker) so the agent does not redo them."""
        key = self.put(pair, provider)
        entry = self._entries[key]
        entry.mask, entry.verification = mask, verification
        return key

    def get(self, key: str) -> PairEntry:
        entry = self._entries[key]
        self._entries.move_to_end(key)
        return entry

    def verified(self, key: str, rules: RuleSettings) -> tuple[ChangeMask, Verification]:
        entry = self.get(key)
        if entry.verification is None:
            entry.mask = entry.provider.provide(entry.pair)
            entry.verification = verify(entry.mask, rules)
            self.verifications += 1
        assert entry.mask is not None
        return entry.mask, entry.verification
