"""The agent's policy as the graph calls it: read the question, reconcile the sources, compose the answer.

``graphs/`` runs tools and moves state; every decision about language and trust is made here and reaches the
graph in its run context (:class:`graphs.context.Policy`). Every front-end (CLI, page, batch) reaches this policy
through ``Agent.ask``, so they all read questions with the same reader.
"""

from __future__ import annotations

from typing import Any

from agent.answer import Answer, Evidence
from agent.answering import HEDGE_BELOW, Knowledge, compose
from agent.ledger import Conflict, Fact, reconcile, verifier_facts
from agent.model_facts import MODEL_INSTRUCTIONS, model_facts
from agent.planner import LLMPlanner
from agent.reading import Request, orient_request, read_request
from agent.reading.request import FACT_ASKS
from agent.settings import AgentSettings
from deltavlm.rules import CATEGORIES
from graphs.context import Artefact
from graphs.state import ThreadState
from tools.orientation import Orientation
from tools.vlm import VLMReply

MODEL_KINDS = {"changed": "binary", "count": "count", "where": "locate", "describe": "caption"}
"""Whole-image asks DeltaVLM was trained on, by the release's question type."""
THREAD_MEMORY = 8
"""Earlier requests a follow-up may draw on."""

_FACT_NAMES = {
    "changed": "whether anything changed",
    "cells": "the changed cells",
    "regions": "the number of changed regions",
    "caption": "the description",
    **{f"count.{c}": f"the {c} count" for c in CATEGORIES},
    **{f"cells.{c}": f"the {c} cells" for c in CATEGORIES},
}


def model_kind(request: dict[str, Any]) -> str | None:
    """The release's question type for a request, or None when DeltaVLM's fixed answers do not fit it."""
    if request["region"] != "image" or request.get("other_subject"):
        return None
    if request["ask"] == "changed" and request["categories"]:
        return None
    return MODEL_KINDS.get(request["ask"])


class AgentPolicy:
    """The default policy: the reader (or an LLM planner checked by it), the ledger and the answer composer."""

    def __init__(
        self, settings: AgentSettings, planner: LLMPlanner | None = None, *, model_problem: str | None = None
    ) -> None:
        self.settings = settings
        self.planner = planner
        self.model_problem = model_problem
        """Why the configured DeltaVLM is absent (it failed to load); every answer says so."""

    def read(
        self, question: str, turns: list[dict[str, Any]], orientation: Orientation | None = None
    ) -> dict[str, Any]:
        previous = [Request(**t["route"]) for t in turns[-THREAD_MEMORY:] if t.get("route")]
        if self.planner is not None:
            request = self.planner.plan(question, previous, turns)
        else:
            request = read_request(question, previous)
        return orient_request(request, question, orientation).model_dump()

    def needs_facts(self, request: dict[str, Any]) -> bool:
        return request["ask"] in FACT_ASKS or request["ask"] == "open"

    def model_instruction(self, request: dict[str, Any], question: str) -> str | None:
        """The release's wording for the fixed question types, the user's words for open questions."""
        if request["ask"] == "open":
            return question
        kind = model_kind(request)
        return MODEL_INSTRUCTIONS[kind] if kind else None

    def reconcile(self, state: ThreadState) -> dict[str, Any]:
        turn = state["turn"]
        candidates = verifier_facts(state["verification"], turn)
        parsed: dict[str, Any] | None = None
        reply = state.get("model_reply")
        kind = model_kind(state["route"])
        if reply and reply.get("text") and kind:
            proposals, parsed = model_facts(reply["text"], kind, self.settings.trust, turn)
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
        request = Request(**state["route"])
        reader = "planner" if self.planner is not None else "reader"
        if request.ask in ("explain", "confirm"):
            return _about_previous(state, request, reader)
        if state.get("verification") is None:  # a decline: no facts were computed, none are given
            composed = compose(request, Knowledge(facts={}, verification={}))
            answer = Answer(
                question=state["question"],
                text=composed.text,
                first_sentence=composed.first,
                intent=request.ask,
                thread_id="",
                turn=state["turn"],
                confidence=0.0,
                evidence=Evidence(tools=[reader], route=request),
            )
            return _finish(state, request, answer, None)
        ledger = state.get("ledger") or {}
        produced = state.get("reconciled") or {}
        facts = {
            **{k: Fact(**v) for k, v in ledger.items()},
            **{k: Fact(**v) for k, v in produced.get("facts", {}).items()},
        }
        conflicts = [Conflict(**c) for c in produced.get("conflicts", [])]
        verification = state["verification"]
        reply = state.get("model_reply")
        model_text = reply.get("text") if reply else None
        composed = compose(request, Knowledge(facts, verification, has_model, model_text))
        stated = [k for k in dict.fromkeys(composed.stated) if k in facts]
        notes = [
            f"Note on {_FACT_NAMES.get(c.fact, c.fact)}: {c.rejected_source} said {_value(c.rejected)}, "
            f"but I {c.resolution}."
            for c in {c.fact: c for c in conflicts if c.fact in stated}.values()
        ]
        if reply and reply.get("error"):
            notes.append(f"DeltaVLM did not answer ({reply['error']}), so this answer comes from the verifiers alone.")
        elif self.model_problem:
            notes.append(f"{self.model_problem}, so this answer comes from the verifiers alone.")
        tools = [reader, f"mask:{verification['source']['provider']}", "verifiers"]
        if reply:
            tools.insert(1, "deltavlm")
        answer = Answer(
            question=state["question"],
            text=" ".join([composed.text, *notes]),
            first_sentence=composed.first,
            intent=request.ask,
            thread_id="",
            turn=state["turn"],
            changed=facts["changed"].value if "changed" in facts else None,
            counts={c: int(facts[f"count.{c}"].value) for c in CATEGORIES if f"count.{c}" in facts} or None,
            changed_regions=int(facts["regions"].value) if "regions" in facts else None,
            cells=list(facts["cells"].value) if "cells" in facts else None,
            category_cells={c: list(facts[f"cells.{c}"].value) for c in CATEGORIES if f"cells.{c}" in facts} or None,
            caption=facts["caption"].value if "caption" in facts else None,
            confidence=composed.confidence,
            hedged=composed.confidence < HEDGE_BELOW,
            model_used=bool(reply and reply.get("text")),
            evidence=Evidence(
                tools=tools,
                route=request,
                mask=verification["source"],
                verifier={k: v for k, v in verification.items() if k not in ("source", "regions")},
                regions=_regions_evidence(verification["regions"], composed.regions),
                model=VLMReply(**reply) if reply else None,
                model_parsed=produced.get("model_parsed"),
                facts={k: facts[k].model_dump() for k in stated},
            ),
            conflicts=conflicts,
        )
        return _finish(state, request, answer, reply)

    def artefacts(self, request: dict[str, Any]) -> set[Artefact]:
        wanted: set[Artefact] = set()
        if request["ask"] == "show" or request["wants_overlay"]:
            wanted.add("overlay")
        if request["ask"] == "export" or request["wants_export"]:
            wanted.add("geojson")
        return wanted


def _regions_evidence(summary: dict[str, Any], used: list[str]) -> dict[str, Any]:
    """The per-region numbers the answer used, with the rule, the top cells and the clusters."""
    return {
        "rule": summary["rule"],
        "top_cells": summary["top_cells"],
        "clusters": summary["clusters"],
        "regions": {key: summary["regions"][key] for key in used},
    }


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return " ".join(value) or "none"
    return str(value)


def _about_previous(state: ThreadState, request: Request, reader: str) -> dict[str, Any]:
    """ "why?" and "are you sure?": what the last factual answer rests on, and how sure it is."""
    previous = next((t["answer"] for t in reversed(state.get("turns") or []) if t["route"]["ask"] in FACT_ASKS), None)
    if previous is None:
        opening = "There is no earlier answer to explain yet; ask me about the change first."
        text = opening
    else:
        evidence = previous["evidence"]
        facts = evidence.get("facts") or {}
        mask = evidence.get("mask") or {}
        basis = (
            "; ".join(
                f"{k} = {v['value']!r} from {v['source']} (confidence {v['confidence']:.2f})" for k, v in facts.items()
            )
            or f"the verifiers' numbers on {mask.get('provider', 'the')} mask (confidence {previous['confidence']:.2f})"
        )
        first = previous.get("first_sentence") or previous["text"]
        if request.ask == "confirm":
            sure = previous["confidence"] >= HEDGE_BELOW
            opening = (
                f'{"Yes" if sure else "Not fully"}: my previous answer ("{first}") has confidence '
                f"{previous['confidence']:.2f}, {'at or above' if sure else 'below'} my {HEDGE_BELOW:.2f} threshold."
            )
            text = f"{opening} It rests on {basis}. Mask: {mask.get('detail', 'none')}."
            if not sure:
                text += " For a reliable answer supply a change mask, a learned detector (ONNX) or DeltaVLM."
        else:
            opening = f'My previous answer ("{first}") rests on: {basis}.'
            text = f"{opening} Mask: {mask.get('detail', 'none')}."
    answer = Answer(
        question=state["question"],
        text=text,
        first_sentence=opening,
        intent=request.ask,
        thread_id="",
        turn=state["turn"],
        confidence=previous["confidence"] if previous else 0.0,
        evidence=Evidence(tools=[reader, "ledger"], route=request, facts=state.get("ledger") or {}),
    )
    return _finish(state, request, answer, None)


def _finish(state: ThreadState, request: Request, answer: Answer, reply: dict[str, Any] | None) -> dict[str, Any]:
    dumped = answer.model_dump(mode="json")
    record = {
        "question": state["question"],
        "route": request.model_dump(),
        "answer": dumped,
        "model": {"instruction": reply["instruction"], "text": reply.get("text")} if reply else None,
    }
    return {"answer": dumped, "turns": [record]}
