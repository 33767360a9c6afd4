"""Answer text from reconciled facts: plain sentences that say what, where, how sure, and from what."""

from __future__ import annotations

from typing import Any

from agent.intents import Route
from agent.ledger import Conflict, Fact
from deltavlm.rules import CATEGORIES, CELL_NAMES

_NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def _n(count: int, noun: str) -> str:
    word = _NUMBERS[count] if count < len(_NUMBERS) else str(count)
    return f"{word} {noun}{'' if count == 1 else 's'}"


def cell_phrase(cells: list[str]) -> str:
    """``["TL", "CC"]`` → ``"top-left (TL) and center-center (CC)"``."""
    names = [f"{CELL_NAMES[c]} ({c})" for c in cells]
    if not names:
        return "no cell"
    if len(names) == len(CELL_NAMES):
        return "all nine cells"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def mask_phrase(verification: dict[str, Any]) -> str:
    source = verification["source"]
    kinds = {"user": "your change mask", "learned": "the learned change mask", "classical": "the classical change mask"}
    return f"{kinds[source['kind']]} ({source['provider']}, confidence {source['confidence']:.2f})"


def _binary(facts: dict[str, Fact], verification: dict[str, Any]) -> str:
    changed = facts["changed"]
    if not changed.value:
        return "No: I find no change between the two images."
    fraction = verification["changed_fraction"]
    return f"Yes: the images changed ({fraction:.1%} of the area by {mask_phrase(verification)})."


def _count(route: Route, facts: dict[str, Fact], verification: dict[str, Any], has_model: bool) -> str:
    categories = route.categories or list(CATEGORIES)
    known = [c for c in categories if f"count.{c}" in facts]
    parts = [_n(int(facts[f"count.{c}"].value), f"changed {c}") for c in known]
    text = ""
    if parts:
        sources = sorted({facts[f"count.{c}"].source for c in known})
        text = f"I count {' and '.join(parts)} (from {', '.join(sources)})."
    missing = [c for c in categories if c not in known]
    if missing:
        regions = facts.get("regions")
        about = f"about {regions.value} changed region{'s' if regions.value != 1 else ''}" if regions else "change"
        text += (
            f" I cannot count {' or '.join(c + 's' for c in missing)} for certain: {mask_phrase(verification)} "
            f"finds {about}, but it does not know categories, so this number is unverified."
        )
        if verification["source"]["kind"] == "user":
            text += (
                " Your mask is binary: name its category (e.g. building for LEVIR-CD labels) or use a LEVIR-MCI mask."
            )
        elif not has_model:
            text += " Supply a change mask or configure DeltaVLM for per-category counts."
    if not facts["changed"].value:
        return text.strip()
    return text.strip() + f" Changed area: {verification['changed_fraction']:.1%} of the image."


def _locate(route: Route, facts: dict[str, Fact]) -> str:
    categories = route.categories or []
    lines = []
    for category in categories:
        fact = facts.get(f"cells.{category}")
        if fact is not None:
            where = cell_phrase(fact.value) if fact.value else "none of the 3×3 cells"
            lines.append(f"{category.capitalize()} changes are in {where} (from {fact.source}).")
    if not lines or len(lines) < len(categories):
        overall = facts["cells"]
        where = cell_phrase(overall.value) if overall.value else "none of the 3×3 cells (no cell is over 5% changed)"
        unknown = [c for c in categories if f"cells.{c}" not in facts]
        prefix = f"I cannot tell {' or '.join(unknown)} changes apart from others; " if unknown else ""
        lines.append(f"{prefix}change is in {where} (from {overall.source}).")
    return " ".join(lines)


def _caption(facts: dict[str, Fact], verification: dict[str, Any]) -> str:
    caption = facts.get("caption")
    if caption is not None:
        return caption.value[0].upper() + caption.value[1:] + "."
    if not facts["changed"].value:
        return "Nothing appears to have changed between the two images."
    counts = [(c, int(facts[f"count.{c}"].value)) for c in CATEGORIES if f"count.{c}" in facts]
    where = cell_phrase(facts["cells"].value) if facts["cells"].value else "small scattered areas"
    if counts:
        what = " and ".join(_n(n, f"changed {c}") for c, n in counts if n) or "small changes"
        return f"{what[0].upper()}{what[1:]}, mainly in {where} (from {mask_phrase(verification)})."
    return (
        f"Change covers {verification['changed_fraction']:.1%} of the image, mainly in {where}; "
        f"{mask_phrase(verification)} cannot say what changed."
    )


_FACT_NAMES = {
    "changed": "whether anything changed",
    "cells": "the changed cells",
    "regions": "the number of changed regions",
    "caption": "the description",
    **{f"count.{c}": f"the {c} count" for c in CATEGORIES},
    **{f"cells.{c}": f"the {c} cells" for c in CATEGORIES},
}


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return " ".join(value) or "none"
    return str(value)


def compose_text(
    route: Route,
    facts: dict[str, Fact],
    verification: dict[str, Any],
    conflicts: list[Conflict],
    model_note: str | None,
    has_model: bool,
    model_text: str | None,
    relevant: list[str],
) -> str:
    """The answer's text for the route's intent; conflicts are noted for the facts it states."""
    intent = route.intent
    if intent == "binary":
        body = _binary(facts, verification)
    elif intent == "count":
        body = _count(route, facts, verification, has_model)
    elif intent == "locate":
        body = _locate(route, facts)
    elif intent == "caption":
        body = _caption(facts, verification)
    elif intent == "open_qa":
        body = (
            model_text[0].upper() + model_text[1:] + "."
            if model_text
            else "I need DeltaVLM for open questions, and it is not available. "
            + "What the verifiers found: "
            + _caption(facts, verification)
        )
    elif intent == "export":
        body = "Here is the GeoJSON of the changed cells and objects."
    elif intent == "show":
        body = "Here is the change overlay: changed pixels tinted, changed 3×3 cells outlined."
    else:
        body = ""
    latest = {c.fact: c for c in conflicts if c.fact in relevant}
    notes = [
        f"Note on {_FACT_NAMES.get(c.fact, c.fact)}: {c.rejected_source} said {_value(c.rejected)}, "
        f"but I {c.resolution}."
        for c in latest.values()
    ]
    if model_note:
        notes.append(model_note)
    return " ".join([body, *notes]).strip()
