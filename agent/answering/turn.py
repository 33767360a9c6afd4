"""The whole answer of a turn: the composed text, the notes on conflicts and on the model, "why?" and "are you
sure?", and the sentences an export adds. Every sentence here is user-facing, so it lives in ``agent.answering``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent.answer import Answer, Evidence
from agent.answering.aoi import compose_aoi
from agent.answering.compose import HEDGE_BELOW, Knowledge, compose
from agent.ledger import Fact, FactValue
from agent.reading import Request
from agent.reading.request import AOI_REGION, FACT_ASKS
from agent.turn.state import PairFacts, Reconciled
from deltavlm.rules import CATEGORIES
from tools.geojson import describe_export
from tools.georef import unplaced_hint
from tools.pairs import ImagePair
from tools.regions import RegionSummary
from tools.vlm import VLMReply

FACT_NAMES = {
    "changed": "whether anything changed",
    "cells": "the changed cells",
    "regions": "the number of changed regions",
    "caption": "the description",
    **{f"count.{c}": f"the {c} count" for c in CATEGORIES},
    **{f"cells.{c}": f"the {c} cells" for c in CATEGORIES},
}


ARTEFACT_NAMES = {
    "overlay": "Overlay",
    "geojson": "GeoJSON",
    "gpkg": "GeoPackage",
    "shp": "Shapefile",
    "mask_geotiff": "Change mask (GeoTIFF)",
}


def _value(value: FactValue) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return " ".join(value) or "none"
    return str(value)


def _regions_evidence(summary: RegionSummary, used: list[str]) -> RegionSummary:
    """The per-region numbers the answer used, with the rule, the top cells and the clusters."""
    return summary.model_copy(update={"regions": {key: summary.regions[key] for key in used}})


def compose_turn(
    question: str,
    request: Request,
    *,
    turn: int,
    facts: PairFacts | None,
    ledger: Mapping[str, Fact],
    reconciled: Reconciled,
    reply: VLMReply | None,
    previous: Sequence[tuple[Request, Answer]],
    reader: str,
    has_model: bool,
    model_problem: str | None,
) -> Answer:
    """The answer to ``request``: from the facts of this turn, or from the earlier answers for explain/confirm."""
    if request.ask in ("explain", "confirm"):
        return about_previous(question, request, turn, previous, ledger, reader)
    if facts is None:  # a decline: no facts were computed, none are given
        composed = compose(request, Knowledge(facts={}, pair=None))
        return Answer(
            question=question,
            text=composed.text,
            first_sentence=composed.first,
            intent=request.ask,
            thread_id="",
            turn=turn,
            confidence=0.0,
            evidence=Evidence(tools=[reader], route=request),
        )
    if request.region == AOI_REGION:
        return aoi_answer(question, request, turn, facts, reader)
    known = {**ledger, **reconciled.facts}
    model_text = reply.text if reply else None
    composed = compose(request, Knowledge(known, facts, has_model, model_text))
    stated = [k for k in dict.fromkeys(composed.stated) if k in known]
    notes = [
        f"Note on {FACT_NAMES.get(c.fact, c.fact)}: {c.rejected_source} said {_value(c.rejected)}, "
        f"but I {c.resolution}."
        for c in {c.fact: c for c in reconciled.conflicts if c.fact in stated}.values()
    ]
    if reply and reply.error:
        notes.append(f"DeltaVLM did not answer ({reply.error}), so this answer comes from the verifiers alone.")
    elif model_problem:
        notes.append(f"{model_problem}, so this answer comes from the verifiers alone.")
    verification = facts.verification
    tools = [reader, f"mask:{verification.source.provider}", "verifiers"]
    if reply:
        tools.insert(1, "deltavlm")
    return Answer(
        question=question,
        text=" ".join([composed.text, *notes]),
        first_sentence=composed.first,
        intent=request.ask,
        thread_id="",
        turn=turn,
        changed=bool(known["changed"].value) if "changed" in known else None,
        counts={c: int(known[f"count.{c}"].value) for c in CATEGORIES if f"count.{c}" in known} or None,
        changed_regions=int(known["regions"].value) if "regions" in known else None,
        cells=list(known["cells"].value) if "cells" in known else None,
        category_cells={c: list(known[f"cells.{c}"].value) for c in CATEGORIES if f"cells.{c}" in known} or None,
        caption=str(known["caption"].value) if "caption" in known else None,
        confidence=composed.confidence,
        hedged=composed.confidence < HEDGE_BELOW,
        model_used=bool(reply and reply.text),
        evidence=Evidence(
            tools=tools,
            route=request,
            mask=verification.source,
            regions=_regions_evidence(facts.regions, composed.regions),
            model=reply,
            model_parsed=reconciled.model_parsed,
            facts={k: known[k] for k in stated},
        ),
        conflicts=list(reconciled.conflicts),
        verification=verification,
    )


def aoi_answer(question: str, request: Request, turn: int, facts: PairFacts, reader: str) -> Answer:
    """The answer about the user's areas of interest: each polygon's figures, in the question's language first."""
    text, first, chosen, confidence = compose_aoi(request, facts)
    source = facts.verification.source
    changed = [s.changed for s in chosen if s.changed is not None]
    return Answer(
        question=question,
        text=text,
        first_sentence=first,
        intent=request.ask,
        thread_id="",
        turn=turn,
        changed=any(changed) if changed else None,
        areas_of_interest=chosen or None,
        confidence=confidence if chosen else 0.0,
        hedged=False,
        evidence=Evidence(
            tools=[reader, f"mask:{source.provider}", "verifiers", "areas of interest"], route=request, mask=source
        ),
        verification=facts.verification,
    )


def about_previous(
    question: str,
    request: Request,
    turn: int,
    previous: Sequence[tuple[Request, Answer]],
    ledger: Mapping[str, Fact],
    reader: str,
) -> Answer:
    """ "why?" and "are you sure?": what the last factual answer rests on, and how sure it is."""
    last = next((a for r, a in reversed(previous) if r.ask in FACT_ASKS), None)
    if last is None:
        opening = "There is no earlier answer to explain yet; ask me about the change first."
        text = opening
    else:
        mask = last.evidence.mask
        basis = (
            "; ".join(
                f"{k} = {v.value!r} from {v.source} (confidence {v.confidence:.2f})"
                for k, v in last.evidence.facts.items()
            )
            or f"the verifiers' numbers on {mask.provider if mask else 'the'} mask (confidence {last.confidence:.2f})"
        )
        first = last.first_sentence or last.text
        detail = mask.detail if mask else "none"
        if request.ask == "confirm":
            sure = last.confidence >= HEDGE_BELOW
            opening = (
                f'{"Yes" if sure else "Not fully"}: my previous answer ("{first}") has confidence '
                f"{last.confidence:.2f}, {'at or above' if sure else 'below'} my {HEDGE_BELOW:.2f} threshold."
            )
            text = f"{opening} It rests on {basis}. Mask: {detail}."
            if not sure:
                text += " For a reliable answer supply a change mask, a learned detector (ONNX) or DeltaVLM."
        else:
            opening = f'My previous answer ("{first}") rests on: {basis}.'
            text = f"{opening} Mask: {detail}."
    return Answer(
        question=question,
        text=text,
        first_sentence=opening,
        intent=request.ask,
        thread_id="",
        turn=turn,
        confidence=last.confidence if last else 0.0,
        evidence=Evidence(tools=[reader, "ledger"], route=request, facts=dict(ledger)),
    )


def export_notes(collection: Mapping[str, Any] | None, pair: ImagePair, artefacts: Mapping[str, str]) -> str:
    """What an export adds to the answer: what the GeoJSON holds, whether it can go on a map, where the files are."""
    notes = []
    if collection is not None:
        features = collection.get("features") or []
        aois = sum(1 for f in features if f["properties"].get("feature") == "aoi")
        if aois:
            notes.append(f"The export is your layer of {aois} areas of interest with their figures as columns.")
        else:
            notes.append(describe_export(collection))
        if pair.georef is None:
            notes.append(unplaced_hint(pair))
    notes.extend(f"{ARTEFACT_NAMES.get(kind, kind)}: {path}." for kind, path in artefacts.items())
    return "".join(f" {note}" for note in notes)
