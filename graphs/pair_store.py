"""Pixels, masks and verdicts of the pairs under discussion, computed once and kept out of the checkpoint."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from deltavlm.rules import RuleSettings
from tools.masks import ChangeMask, MaskProvider
from tools.pairs import ImagePair
from tools.verify import Verification, verify


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
        self.verifications = 0

    def put(self, pair: ImagePair, provider: MaskProvider) -> PairEntry:
        entry = self._entries.get(pair.pair_id)
        if entry is None or _provider_key(entry.provider) != _provider_key(provider) or entry.pair.gsd_m != pair.gsd_m:
            # a new pixel size changes a computed mask's scale and confidence: the mask is made again
            entry = PairEntry(pair=pair, provider=provider)
            self._entries[pair.pair_id] = entry
        elif entry.pair.georef != pair.georef:  # same pixels placed anew (tools.georef): exports and areas follow
            entry.pair, entry.derived = pair, {}
        self._entries.move_to_end(pair.pair_id)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return entry

    def seed(self, pair: ImagePair, provider: MaskProvider, mask: ChangeMask, verification: Verification) -> None:
        """Hand over a mask and verdict computed elsewhere (a batch worker) so the agent does not redo them."""
        entry = self.put(pair, provider)
        entry.mask, entry.verification = mask, verification

    def get(self, pair_id: str) -> PairEntry:
        entry = self._entries[pair_id]
        self._entries.move_to_end(pair_id)
        return entry

    def verified(self, pair_id: str, rules: RuleSettings) -> tuple[ChangeMask, Verification]:
        entry = self.get(pair_id)
        if entry.verification is None:
            entry.mask = entry.provider.provide(entry.pair)
            entry.verification = verify(entry.mask, rules)
            self.verifications += 1
        assert entry.mask is not None
        return entry.mask, entry.verification


def _provider_key(provider: MaskProvider) -> tuple[str, str]:
    return provider.name, repr(vars(provider))
