"""The whole answer of a turn: the composed text, the notes on conflicts and on the model, "why?" and "are you
sure?", and the sentences an export adds. Every sentence here is user-facing, so it lives in ``agent.answering``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agent.answer import Answer, Evidence
from agent.answering.aoi import compose_aoi
from agent.answering.catalog import message
from agent.answering.compose import HEDGE_BELOW, Knowledge, compose
from agent.answering.numbers import decimal
from agent.answering.provenance import mask_detail, resolution_text
from agent.answering.wording import clauses, fact_value, join, region_name, sentences
from agent.ledger import Fact
from agent.reading import Request
from agent.reading.request import AOI_REGION, FACT_ASKS
from agent.turn.state import PairFacts, Reconciled
from deltavlm.rules import CATEGORIES
from tools.regions import RegionSummary
from tools.vlm import VLMReply


def fact_name(key: str, lang: str) -> str:
    """A fact of the ledger in words ("the building count")."""
    return message(f"fact:{key}", lang)


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
    said: frozenset[str] = frozenset(),
) -> Answer:
    """The answer to ``request``: from the facts of this turn, or from the earlier answers for explain/confirm.

    ``said`` holds the once-per-thread notes of turns older than ``previous`` (the thread keeps a recent window).
    """
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
    said = said | frozenset(note for _, earlier in previous for note in earlier.said)
    composed = compose(request, Knowledge(known, facts, has_model, model_text, said))
    stated = [k for k in dict.fromkeys(composed.stated) if k in known]
    lang = request.language
    notes = [
        message("note_conflict", lang).format(
            fact=fact_name(c.fact, lang),
            source=c.rejected_source,
            value=fact_value(c.rejected, lang),
            resolution=resolution_text(c, lang),
        )
        for c in {c.fact: c for c in reconciled.conflicts if c.fact in stated}.values()
    ]
    if reply and reply.error:
        notes.append(message("model_failed", lang).format(error=reply.error))
    elif model_problem:
        notes.append(message("model_problem", lang).format(problem=model_problem))
    verification = facts.verification
    tools = [reader, f"mask:{verification.source.provider}", "verifiers"]
    if reply:
        tools.insert(1, "deltavlm")
    return Answer(
        question=question,
        text=sentences([composed.text, *notes], lang),
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
        hedged=composed.confidence < HEDGE_BELOW and not composed.refusal,
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
        said=composed.said,
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
        hedged=bool(chosen) and (confidence < HEDGE_BELOW or source.reliable is False),
        evidence=Evidence(
            tools=[reader, f"mask:{source.provider}", "verifiers", "areas of interest"], route=request, mask=source
        ),
        verification=facts.verification,
    )


def _challenge_evidence(last: Answer, lang: str) -> str:
    """What a doubted answer can show beyond a repeat: where the mask changed most, and how to check it."""
    regions = last.evidence.regions
    if regions is not None and regions.top_cells:
        cells = join([region_name(c, lang) for c in regions.top_cells[:3]], lang)
        seen = message("challenge_cells", lang).format(cells=cells)
    elif regions is not None:
        seen = message("challenge_no_pixel", lang)
    else:
        seen = ""
    return sentences([seen, message("challenge_check", lang)], lang)


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
    lang = request.language
    if last is None:
        opening = message("previous_none", lang)
        text = opening
    else:
        mask = last.evidence.mask
        basis = clauses(
            [
                message("basis_fact", lang).format(
                    key=fact_name(k, lang),
                    value=fact_value(v.value, lang),
                    source=v.source,
                    conf=decimal(v.confidence, lang, 2),
                )
                for k, v in last.evidence.facts.items()
            ],
            lang,
        ) or message("basis_verifiers", lang).format(
            provider=mask.provider if mask else "", conf=decimal(last.confidence, lang, 2)
        )
        first = last.first_sentence or last.text
        detail = message("previous_mask", lang).format(
            detail=mask_detail(mask.made_by, lang) if mask else message("none", lang)
        )
        if request.ask == "confirm":
            sure = last.confidence >= HEDGE_BELOW
            opening = message("previous_confirm_yes" if sure else "previous_confirm_no", lang).format(
                first=first, conf=decimal(last.confidence, lang, 2), threshold=decimal(HEDGE_BELOW, lang, 2)
            )
            rests = message("previous_rests", lang).format(basis=basis)
            better = message("previous_better", lang) if not sure else ""
            text = sentences([opening, rests, detail, _challenge_evidence(last, lang), better], lang)
        else:
            opening = message("previous_explain", lang).format(first=first, basis=basis)
            text = sentences([opening, detail], lang)
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
