"""Facts, their sources, and the reconciliation policy.

Policy (every answer that applies it says so):

1. Each source proposes facts with a confidence: the verifiers take their mask's confidence (1.0 for a
   user's mask, the provider's own for a learned one, at most 0.6 for the classical one); DeltaVLM takes
   the trust settings (yes/no 0.75, counts 0.5, cells 0.55, captions 0.6, after the paper's measured
   accuracy). A classical mask has no categories, so it proposes only "changed", the changed cells and a
   count of changed regions; category counts and cells then come from the model alone.
2. Within a turn, the most confident proposal of each fact wins; a tie goes to the verifier, because it
   is deterministic and inspectable. The losing proposal is reported as a conflict.
3. Facts must agree with each other: nothing changed ⇔ no counts and no cells. When they disagree, the
   more confident side decides and the other is corrected, with a note.
4. Across turns, the ledger keeps every established fact. A new value replaces the ledger's only when it
   is at least as confident, and the answer names the earlier turn it corrects; otherwise the earlier
   fact stands and the answer says so.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from deltavlm.rules import CATEGORIES
from tools.verify import Verification

FactValue = bool | int | str | list[str]
"""Whether something changed, a count, a caption, or a list of cells."""


class Fact(BaseModel):
    key: str
    value: FactValue
    source: str
    confidence: float
    turn: int
    detail: str = ""


Resolution = Literal["more_confident", "tie_verifier", "revised", "kept_earlier", "to_no_change", "to_change"]
"""How a conflict was settled: the more confident proposal of a turn won; a tie went to the verifier; a later turn
revised an earlier answer, or the earlier, more confident one stood; a fact was corrected to agree with "no change",
or "no change" was corrected because another fact showed change. ``agent.answering`` words each."""


class Conflict(BaseModel):
    """Two sources disagreed on a fact, and what was done about it."""

    fact: str
    kept: FactValue
    kept_source: str
    rejected: FactValue
    rejected_source: str
    resolution: Resolution
    earlier_turn: int | None = Field(None, description="revised / kept_earlier: the earlier turn (0-based).")
    shown_by: str | None = Field(None, description="to_change: the fact that showed change.")
    shown_value: FactValue | None = Field(None, description="to_change: that fact's value.")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return sorted(a) == sorted(b)
    return a == b


def _is_verifier(source: str) -> bool:
    return source.startswith("verifier")


def _pick(candidates: list[Fact]) -> Fact:
    return max(candidates, key=lambda f: (f.confidence, _is_verifier(f.source)))


def _conflict(kept: Fact, rejected: Fact, resolution: Resolution, **facts: Any) -> Conflict:
    return Conflict(
        fact=kept.key,
        kept=kept.value,
        kept_source=kept.source,
        rejected=rejected.value,
        rejected_source=rejected.source,
        resolution=resolution,
        **facts,
    )


def _implies_change(fact: Fact) -> bool | None:
    """What a count or cell fact says about "changed" (None when it says nothing)."""
    if fact.key.startswith("count.") or fact.key == "regions":
        return fact.value > 0
    if fact.key.startswith("cells"):
        return bool(fact.value) or None  # empty cells do not prove no change (small objects)
    return None


def _make_consistent(facts: dict[str, Fact], conflicts: list[Conflict], turn: int) -> None:
    changed = facts.get("changed")
    if changed is None:
        return
    for key, fact in list(facts.items()):
        implied = _implies_change(fact)
        if implied is None or implied == changed.value:
            continue
        if not changed.value and implied:
            if changed.confidence >= fact.confidence:
                empty = 0 if key.startswith("count.") or key == "regions" else []
                facts[key] = fact.model_copy(
                    update={"value": empty, "source": changed.source, "confidence": changed.confidence, "turn": turn}
                )
                conflicts.append(_conflict(facts[key], fact, "to_no_change"))
            else:
                overruled = changed
                facts["changed"] = changed = changed.model_copy(
                    update={"value": True, "source": fact.source, "confidence": fact.confidence, "turn": turn}
                )
                conflicts.append(_conflict(changed, overruled, "to_change", shown_by=key, shown_value=fact.value))


def reconcile(
    candidates: list[Fact], ledger: dict[str, Fact], turn: int
) -> tuple[dict[str, Fact], list[Conflict], dict[str, Fact]]:
    """Apply the policy: this turn's facts, the conflicts found, and the updated ledger."""
    conflicts: list[Conflict] = []
    by_key: dict[str, list[Fact]] = {}
    for fact in candidates:
        by_key.setdefault(fact.key, []).append(fact)
    final: dict[str, Fact] = {}
    for key, proposals in by_key.items():
        best = _pick(proposals)
        final[key] = best
        for other in proposals:
            if other is not best and not _same(other.value, best.value):
                why: Resolution = "more_confident" if other.confidence < best.confidence else "tie_verifier"
                conflicts.append(_conflict(best, other, why))
    earlier = dict(ledger)
    for key, fact in list(final.items()):
        before = earlier.get(key)
        if before is None or _same(before.value, fact.value):
            continue
        if fact.confidence >= before.confidence:
            conflicts.append(_conflict(fact, before, "revised", earlier_turn=before.turn))
        else:
            conflicts.append(_conflict(before, fact, "kept_earlier", earlier_turn=before.turn))
            final[key] = before
    merged = {**earlier, **final}
    _make_consistent(merged, conflicts, turn)
    for key, fact in merged.items():
        if key in final or not _same(fact.value, earlier[key].value):
            final[key] = fact
    return final, conflicts, merged


def verifier_facts(verification: Verification, turn: int) -> list[Fact]:
    """The facts a verification supports, at its mask's confidence."""
    source = verification.source
    label = f"verifier ({source.provider} mask)"
    conf = float(source.confidence)
    values: dict[str, FactValue] = {
        "changed": verification.summary.changed,
        "cells": list(verification.summary.cells),
        "regions": verification.summary.changed_regions,
    }
    if source.categorical:
        for category in CATEGORIES:
            values[f"count.{category}"] = verification.summary.counts[category]
            values[f"cells.{category}"] = list(verification.summary.category_cells[category])
    return [Fact(key=key, value=value, source=label, confidence=conf, turn=turn) for key, value in values.items()]
