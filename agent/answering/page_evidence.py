"""The page's evidence panel for the latest answer, in the answer's language: the question as read, the verifier's
numbers and the 3×3 grid, the rules, DeltaVLM's instruction and reply, the conflicts and the facts stated.

Codes stay as they are (the request's ask, tool names, categories, cell ids, model fields): a person checking the
answer compares them with the logs and the JSON, which use the same codes.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.answer import Answer
from agent.answering.numbers import decimal, integer, percent
from agent.answering.page_messages import clip, confidence_label, mask_line
from agent.answering.provenance import mask_detail, resolution_text, verdict_rules
from agent.answering.reading import model_parse_text, reading_text
from agent.answering.wording import fact_value, say
from deltavlm.rules import CELL_IDS


def evidence_markdown(answer: Answer, overlay_cells: Sequence[str]) -> str:
    """The full evidence of the latest answer, for a person to check: route, numbers, grid, model, conflicts."""
    lang = answer.evidence.route.language
    ev = answer.evidence
    follow_up = " " + say("page:ev:follow_up", lang) if ev.route.follow_up else ""
    intent = say(
        "page:ev:intent",
        lang,
        intent=answer.intent,
        reading=reading_text(ev.route, lang) + follow_up,
        confidence=confidence_label(answer, lang),
        model_used=fact_value(answer.model_used, lang),
    )
    mask = say("page:ev:change_mask", lang, mask=mask_line(answer, lang))
    if ev.mask and ev.mask.made_by.method != "unstated":
        mask += f"  \n_{mask_detail(ev.mask.made_by, lang)}_"
    out = [
        say("page:ev:question", lang, turn=integer(answer.turn + 1, lang), question=answer.question),
        intent,
        say("page:ev_tools", lang, tools=" → ".join(ev.tools)),
        mask,
    ]
    verification = answer.verification
    if verification is not None:
        summary = verification.summary
        out.append(say("page:ev:verifier", lang))
        pixels = say(
            "page:ev:pixels_value",
            lang,
            pixels=integer(summary.changed_pixels, lang),
            pct=percent(summary.changed_fraction, lang),
        )
        rows = [say("page:ev:table_head", lang), "|---|---|"]
        for key, value in (
            ("changed", fact_value(summary.changed, lang)),
            ("changed_pixels", pixels),
            ("objects", fact_value(summary.counts, lang, as_logged=True)),
            ("regions", fact_value(summary.changed_regions, lang)),
            ("cells", fact_value(summary.cells, lang)),
        ):
            rows.append(f"| {say(f'page:ev:row:{key}', lang)} | {value} |")
        out.append("\n".join(rows))
        if summary.cell_fractions:
            out.append(_grid_table(summary.cell_fractions, set(summary.cells), lang))
        for name, rule in verdict_rules(verification, lang).items():
            out.append(say("page:ev:rule", lang, name=say(f"page:ev:rule_name:{name}", lang), rule=rule))
    if ev.model is not None:
        model = ev.model
        out.append("#### DeltaVLM")
        out.append(say("page:ev:backend", lang, backend=model.backend, latency=decimal(model.latency_s, lang, 2)))
        out.append(say("page:ev:instruction", lang, text=clip(model.instruction, 300)))
        if model.ok:
            out.append(say("page:ev:reply", lang, text=clip(model.text, 500)))
        else:
            out.append(say("page:ev:no_answer", lang, error=clip(model.error, 500)))
        if ev.model_parsed:
            out.append(say("page:ev:parsed", lang, fields=model_parse_text(ev.model_parsed, lang)))
    if answer.conflicts:
        out.append(say("page:ev:conflicts_head", lang))
        for c in answer.conflicts:
            out.append(
                say(
                    "page:ev:conflict",
                    lang,
                    fact=c.fact,
                    kept=fact_value(c.kept, lang),
                    kept_source=c.kept_source,
                    rejected=fact_value(c.rejected, lang),
                    rejected_source=c.rejected_source,
                    resolution=resolution_text(c, lang),
                )
            )
    else:
        out.append(say("page:ev:no_conflicts", lang))
    if ev.facts:
        out.append(say("page:ev:facts_head", lang))
        for fact in ev.facts.values():
            confidence = decimal(fact.confidence, lang, 2)
            value = fact_value(fact.value, lang)
            out.append(say("page:ev:fact", lang, name=fact.key, value=value, source=fact.source, confidence=confidence))
    if answer.cells is not None and sorted(answer.cells) != sorted(overlay_cells):
        named, outlined = fact_value(answer.cells, lang), fact_value(list(overlay_cells), lang)
        out.append(say("page:ev:cells_note", lang, answer_cells=named, overlay_cells=outlined))
    return "\n\n".join(out)


def _grid_table(fractions: dict[str, float], changed: set[str], lang: str) -> str:
    """The 3×3 grid as a table of changed fractions; changed cells (over the threshold) in bold."""
    columns = " | ".join(say(f"page:ev:column:{c}", lang) for c in ("left", "centre", "right"))
    rows = [f"| | {columns} |", "|---|---|---|---|"]
    for r, label in enumerate(("top", "centre", "bottom")):
        cells = []
        for cell in CELL_IDS[r * 3 : r * 3 + 3]:
            text = f"{cell} {percent(fractions.get(cell, 0.0), lang)}"
            cells.append(f"**{text} ✓**" if cell in changed else text)
        rows.append(f"| {say(f'page:ev:row_of_grid:{label}', lang)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
