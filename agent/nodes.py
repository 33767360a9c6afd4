"""Node logic of the conversation graph (the wiring lives in ``graphs/``).

Each node reads the thread state and the run context (settings, the pair store, the model tool) and
returns the state keys it changes. Heavy objects (pixels, masks, verdicts) live in the context's
:class:`PairStore`, keyed by the pair's content hash, never in the checkpointed state.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime

from agent.answer import Answer, Evidence
from agent.compose import compose_text
from agent.intents import Route, route_question
from agent.ledger import Conflict, Fact, reconcile, verifier_facts
from agent.model_facts import MODEL_INSTRUCTIONS, model_facts
from agent.planner import LLMPlanner
from agent.settings import AgentSettings
from agent.state import ThreadState
from tools.classical_mask import ClassicalMaskProvider
from tools.geojson import changes_geojson, write_geojson
from tools.masks import ChangeMask, MaskProvider
from tools.overlay import render_overlay, save_png
from tools.pairs import ImagePair
from tools.verify import Verification, verify
from tools.vlm import DeltaVLMTool, VLMReply

MODEL_INTENTS = {"binary", "count", "locate", "caption", "open_qa"}


@dataclass
class PairEntry:
    """Everything computed for one pair, computed once."""

    pair: ImagePair
    provider: MaskProvider
    mask: ChangeMask | None = None
    verification: Verification | None = None


class PairStore:
    """LRU of pairs and their masks and verdicts, so a conversation decodes and verifies a pair once."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, PairEntry] = OrderedDict()
        self.verifications = 0

    def put(self, pair: ImagePair, provider: MaskProvider) -> PairEntry:
        entry = self._entries.get(pair.pair_id)
        if entry is None or _provider_key(entry.provider) != _provider_key(provider):
            entry = PairEntry(pair=pair, provider=provider)
            self._entries[pair.pair_id] = entry
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

    def verified(self, pair_id: str, settings: AgentSettings) -> tuple[ChangeMask, Verification]:
        entry = self.get(pair_id)
        if entry.verification is None:
            entry.mask = entry.provider.provide(entry.pair)
            entry.verification = verify(entry.mask, settings.rules)
            self.verifications += 1
        assert entry.mask is not None
        return entry.mask, entry.verification


def _provider_key(provider: MaskProvider) -> tuple[str, str]:
    return provider.name, repr(vars(provider))


@dataclass
class AgentContext:
    """The run context every node receives (LangGraph ``context_schema``)."""

    settings: AgentSettings
    store: PairStore
    vlm: DeltaVLMTool | None = None
    default_provider: MaskProvider = field(default_factory=ClassicalMaskProvider)
    planner: LLMPlanner | None = None


def route_node(state: ThreadState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    turns = state.get("turns") or []
    previous = Route(**turns[-1]["route"]) if turns else None
    planner = runtime.context.planner
    if planner is not None:
        route = planner.plan(state["question"], previous, turns)
    else:
        route = route_question(state["question"], previous)
    return {"route": route.model_dump(), "turn": len(turns), "model_reply": None, "verification": None}


def _compact(verification: Verification) -> dict[str, Any]:
    """The verifier's numbers as plain JSON values for the state."""
    s = verification.summary
    return {
        "changed": s.changed,
        "changed_pixels": s.changed_pixels,
        "changed_fraction": s.changed_fraction,
        "counts": s.counts,
        "changed_regions": s.changed_regions,
        "cells": s.cells,
        "category_cells": s.category_cells,
        "cell_fractions": s.cell_fractions,
        "source": verification.source.model_dump(),
        "rules": {
            "counts": verification.counts.rule,
            "grid": verification.grid.rule,
            "binary": verification.binary.rule,
        },
    }


def verify_node(state: ThreadState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    _, verification = runtime.context.store.verified(state["pair_id"], runtime.context.settings)
    return {"verification": _compact(verification)}


def perceive_node(state: ThreadState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask DeltaVLM in the release's wording for the fixed types, the user's words for open questions."""
    vlm = runtime.context.vlm
    assert vlm is not None
    route = Route(**state["route"])
    instruction = MODEL_INSTRUCTIONS.get(route.intent, state["question"])
    history = [
        (t["model"]["instruction"], t["model"]["text"])
        for t in state.get("turns") or []
        if t.get("model") and t["model"].get("text")
    ]
    entry = runtime.context.store.get(state["pair_id"])
    return {"model_reply": vlm.ask(entry.pair, instruction, history).model_dump()}


def needs_model(state: ThreadState, runtime: Runtime[AgentContext]) -> bool:
    return runtime.context.vlm is not None and state["route"]["intent"] in MODEL_INTENTS


def reconcile_node(state: ThreadState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    turn = state["turn"]
    route = Route(**state["route"])
    candidates = verifier_facts(state["verification"], turn)
    parsed: dict[str, Any] | None = None
    reply = state.get("model_reply")
    if reply and reply.get("text"):
        proposals, parsed = model_facts(reply["text"], route, runtime.context.settings.trust, turn)
        candidates.extend(proposals)
    facts, conflicts, ledger = reconcile(candidates, state.get("ledger") or {}, turn)
    return {
        "ledger": ledger,
        "reconciled": {
            "facts": {k: f.model_dump() for k, f in facts.items()},
            "conflicts": [c.model_dump() for c in conflicts],
            "model_parsed": parsed,
        },
    }


def _model_note(reply: dict[str, Any] | None) -> str | None:
    if reply and reply.get("error"):
        return f"DeltaVLM did not answer ({reply['error']}), so this answer comes from the verifiers alone."
    return None


def _relevant(route: Route, facts: dict[str, Fact]) -> list[str]:
    keys = {
        "binary": ["changed"],
        "count": [f"count.{c}" for c in route.categories or ("road", "building")] + ["regions"],
        "locate": [f"cells.{c}" for c in route.categories] + ["cells"],
        "caption": ["caption", "changed"],
        "open_qa": ["changed"],
    }.get(route.intent, ["changed", "cells"])
    return [k for k in keys if k in facts]


def compose_node(state: ThreadState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    route = Route(**state["route"])
    ctx = runtime.context
    turn = state["turn"]
    ledger = state.get("ledger") or {}
    if route.intent == "explain":
        return _explain(state, route)
    produced = state.get("reconciled") or {}
    facts = {k: Fact(**v) for k, v in produced.get("facts", {}).items()}
    facts = {**{k: Fact(**v) for k, v in ledger.items()}, **facts}
    conflicts = [Conflict(**c) for c in produced.get("conflicts", [])]
    verification = state["verification"]
    reply = state.get("model_reply")
    model_text = reply.get("text") if reply else None
    relevant = _relevant(route, facts)
    text = compose_text(
        route, facts, verification, conflicts, _model_note(reply), ctx.vlm is not None, model_text, relevant
    )
    tools = ["router", f"mask:{verification['source']['provider']}", "verifiers"]
    if reply:
        tools.insert(1, "deltavlm")
    answer = Answer(
        question=state["question"],
        text=text,
        intent=route.intent,
        thread_id="",
        turn=turn,
        changed=facts["changed"].value if "changed" in facts else None,
        counts={c: int(facts[f"count.{c}"].value) for c in ("road", "building") if f"count.{c}" in facts} or None,
        changed_regions=int(facts["regions"].value) if "regions" in facts else None,
        cells=list(facts["cells"].value) if "cells" in facts else None,
        category_cells={c: list(facts[f"cells.{c}"].value) for c in ("road", "building") if f"cells.{c}" in facts}
        or None,
        caption=facts["caption"].value if "caption" in facts else None,
        confidence=min((facts[k].confidence for k in relevant), default=0.0),
        model_used=bool(reply and reply.get("text")),
        evidence=Evidence(
            tools=tools,
            route=route,
            mask=verification["source"],
            verifier={k: v for k, v in verification.items() if k != "source"},
            model=VLMReply(**reply) if reply else None,
            model_parsed=produced.get("model_parsed"),
            facts={k: facts[k].model_dump() for k in relevant},
        ),
        conflicts=conflicts,
    )
    return _finish(state, route, answer, reply)


def _explain(state: ThreadState, route: Route) -> dict[str, Any]:
    turns = state.get("turns") or []
    if not turns:
        text = "There is no earlier answer to explain yet; ask me about the change first."
        previous = None
    else:
        previous = turns[-1]["answer"]
        evidence = previous["evidence"]
        facts = evidence.get("facts") or {}
        sources = "; ".join(
            f"{k} = {v['value']!r} from {v['source']} (confidence {v['confidence']:.2f})" for k, v in facts.items()
        )
        mask = evidence.get("mask") or {}
        text = (
            f'My previous answer ("{previous["text"]}") rests on: {sources or "no recorded facts"}. '
            f"Mask: {mask.get('detail', 'none')}."
        )
    answer = Answer(
        question=state["question"],
        text=text,
        intent="explain",
        thread_id="",
        turn=state["turn"],
        confidence=previous["confidence"] if previous else 0.0,
        evidence=Evidence(tools=["router", "ledger"], route=route, facts=state.get("ledger") or {}),
    )
    return _finish(state, route, answer, None)


def _finish(state: ThreadState, route: Route, answer: Answer, reply: dict[str, Any] | None) -> dict[str, Any]:
    record = {
        "question": state["question"],
        "route": route.model_dump(),
        "answer": answer.model_dump(mode="json"),
        "model": {"instruction": reply["instruction"], "text": reply.get("text")} if reply else None,
    }
    return {"answer": answer.model_dump(mode="json"), "turns": [record]}


def wants_artefacts(state: ThreadState, runtime: Runtime[AgentContext]) -> bool:
    route = state["route"]
    return route["intent"] in ("export", "show") or route["wants_overlay"] or route["wants_export"]


def file_safe_name(text: str, fallback: str) -> str:
    """``text`` as a file or folder name; names and thread ids are caller-chosen (e.g. "site 4/2026").

    Unsafe characters become ``_``; when anything had to change, a hash of the original is appended so that
    two different texts never share a name ("a/b" and "a_b" stay apart).
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:48].strip("._") or fallback
    return safe if safe == text else f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def export_node(state: ThreadState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Write the overlay and/or GeoJSON for this turn and attach their paths to the answer."""
    ctx = runtime.context
    route = Route(**state["route"])
    entry = ctx.store.get(state["pair_id"])
    mask, verification = ctx.store.verified(state["pair_id"], ctx.settings)
    thread_id = str(get_config()["configurable"]["thread_id"])
    # One folder per pair and thread: two conversations about the same pair must not overwrite each other's files.
    folder = Path(ctx.settings.artefact_dir) / state["pair_id"][:16] / file_safe_name(thread_id, "thread")
    turn = state["turn"] + 1
    artefacts: dict[str, str] = {}
    if route.intent == "show" or route.wants_overlay:
        artefacts["overlay"] = str(
            save_png(render_overlay(entry.pair, mask, verification), folder / f"turn{turn}_overlay.png")
        )
    if route.intent == "export" or route.wants_export:
        collection = changes_geojson(
            verification, mask, entry.pair.georef, pair_name=entry.pair.name, objects=True, crs=ctx.settings.geojson_crs
        )
        artefacts["geojson"] = str(write_geojson(collection, folder / f"turn{turn}_changes.geojson"))
    answer = dict(state["answer"])
    answer["artefacts"] = artefacts
    answer["text"] += "".join(f" {kind.capitalize()}: {path}." for kind, path in artefacts.items())
    return {"answer": answer}
