"""The agent's policy as the graph calls it: read the question, reconcile the sources, compose the answer.

``graphs/`` runs tools and moves state; every decision about language and trust is made here and reaches the
graph in its run context (:class:`graphs.context.Policy`).
"""

from __future__ import annotations

from typing import Any

from agent.answer import Answer, Evidence
from agent.compose import compose_text
from agent.intents import Route, route_question
from agent.ledger import Conflict, Fact, reconcile, verifier_facts
from agent.model_facts import MODEL_INSTRUCTIONS, model_facts
from agent.planner import LLMPlanner
from agent.settings import AgentSettings
from graphs.context import Artefact
from graphs.state import ThreadState
from tools.vlm import VLMReply

MODEL_INTENTS = {"binary", "count", "locate", "caption", "open_qa"}


class AgentPolicy:
    """The default policy: the router (or an LLM planner), the ledger and the answer composer."""

    def __init__(
        self, settings: AgentSettings, planner: LLMPlanner | None = None, *, model_problem: str | None = None
    ) -> None:
        self.settings = settings
        self.planner = planner
        self.model_problem = model_problem
        """Why the configured DeltaVLM is absent (it failed to load); every answer says so."""

    def read(self, question: str, turns: list[dict[str, Any]]) -> dict[str, Any]:
        previous = Route(**turns[-1]["route"]) if turns else None
        if self.planner is not None:
            return self.planner.plan(question, previous, turns).model_dump()
        return route_question(question, previous).model_dump()

    def needs_facts(self, request: dict[str, Any]) -> bool:
        return request["intent"] != "explain"

    def model_instruction(self, request: dict[str, Any], question: str) -> str | None:
        """The release's wording for the fixed question types, the user's words for open questions."""
        intent = request["intent"]
        return MODEL_INSTRUCTIONS.get(intent, question) if intent in MODEL_INTENTS else None

    def reconcile(self, state: ThreadState) -> dict[str, Any]:
        turn = state["turn"]
        route = Route(**state["route"])
        candidates = verifier_facts(state["verification"], turn)
        parsed: dict[str, Any] | None = None
        reply = state.get("model_reply")
        if reply and reply.get("text"):
            proposals, parsed = model_facts(reply["text"], route, self.settings.trust, turn)
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

    def compose(self, state: ThreadState, has_model: bool) -> dict[str, Any]:
        route = Route(**state["route"])
        if route.intent == "explain":
            return _explain(state, route)
        ledger = state.get("ledger") or {}
        produced = state.get("reconciled") or {}
        facts = {k: Fact(**v) for k, v in produced.get("facts", {}).items()}
        facts = {**{k: Fact(**v) for k, v in ledger.items()}, **facts}
        conflicts = [Conflict(**c) for c in produced.get("conflicts", [])]
        verification = state["verification"]
        reply = state.get("model_reply")
        model_text = reply.get("text") if reply else None
        relevant = _relevant(route, facts)
        note = _model_note(reply)
        if note is None and self.model_problem:
            note = f"{self.model_problem}, so this answer comes from the verifiers alone."
        text = compose_text(route, facts, verification, conflicts, note, has_model, model_text, relevant)
        tools = ["router", f"mask:{verification['source']['provider']}", "verifiers"]
        if reply:
            tools.insert(1, "deltavlm")
        answer = Answer(
            question=state["question"],
            text=text,
            intent=route.intent,
            thread_id="",
            turn=state["turn"],
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

    def artefacts(self, request: dict[str, Any]) -> set[Artefact]:
        wanted: set[Artefact] = set()
        if request["intent"] == "show" or request["wants_overlay"]:
            wanted.add("overlay")
        if request["intent"] == "export" or request["wants_export"]:
            wanted.add("geojson")
        return wanted


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
