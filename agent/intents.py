"""The default router: a question's intent from its wording, with no external service.

Intents are the ChangeChat question types (``binary``, ``caption``, ``count``, ``locate``,
``open_qa``; the sixth type, multi-turn dialog, is the conversation itself) plus ``export``
(GeoJSON), ``show`` (the overlay) and ``explain`` ("why?", "are you sure?"). Short follow-ups
borrow what they omit from the previous turn: "and roads?" after a count is a road count,
"where?" after "how many buildings?" locates buildings.

The question is only ever matched against these patterns: it is data, never a command, a path or
a setting.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from deltavlm.rules import CATEGORIES

Intent = Literal["binary", "caption", "count", "locate", "open_qa", "export", "show", "explain"]

MAX_QUESTION_CHARS = 2000

_CATEGORY_WORDS: dict[str, str] = {
    "road": r"roads?|streets?|highways?|lanes?|paths?|driveways?|motorways?|avenues?|tracks?|pavements?",
    "building": r"buildings?|houses?|homes?|structures?|roofs?|rooftops?|sheds?|warehouses?|factor(?:y|ies)"
    r"|residences?|residential|villas?|apartments?|dwellings?|constructions?",
}

_PATTERNS: list[tuple[Intent, re.Pattern[str]]] = [
    ("export", re.compile(r"\b(export|geojson|download|shapefile|qgis|save (it|that|them|the))\b")),
    (
        "explain",
        re.compile(
            r"^(why|are you sure|really|how do you know|what is (that|this) based on|"
            r"explain (that|this|your answer)|on what basis|how sure)\b"
        ),
    ),
    (
        "count",
        re.compile(
            r"\b(how many|count|number of|quantif\w*|how much|percentage|proportion|fraction|"
            r"what area|total area|how large|how big)\b"
        ),
    ),
    (
        "locate",
        re.compile(
            r"\b(where|locat\w*|which (part|parts|area|areas|cell|cells|region|regions|side|"
            r"quadrant|quadrants)|in which|position|grid)\b"
        ),
    ),
    (
        "caption",
        re.compile(
            r"\b(describe|description|summari[sz]e|summary|caption|overview|what (has |have )?"
            r"(changed|happened|is different|are the changes|changes)|tell me (about|what)|"
            r"explain the changes?|what changes)\b"
        ),
    ),
    (
        "binary",
        re.compile(
            r"(^(has|have|did|is|are|was|were|does|do)\b.*\b(chang\w*|differ\w*|same|identical|"
            r"new|built|demolish\w*|construct\w*|removed|appear\w*|disappear\w*)\b)|"
            r"\b(any (change|changes|difference|differences)|anything (new|changed|different)|"
            r"yes or no|changed or not|something changed)\b"
        ),
    ),
    ("show", re.compile(r"\b(show|display|visuali[sz]e|overlay|highlight|draw|picture|image of|map)\b")),
]

_OPEN_QA_MARKERS = re.compile(
    r"\b(built on|instead of|replac\w*|turned into|converted|what kind|what type|type of|kind of|why)\b"
)
_FOLLOW_UP = re.compile(r"^(and|what about|how about|same for|also|now|ok|okay|then)\b|^\W*\w+\W*$")


class Route(BaseModel):
    """Where a question goes."""

    intent: Intent
    categories: list[str]
    follow_up: bool = False
    wants_overlay: bool = False
    wants_export: bool = False
    reason: str = ""


def normalise(question: str) -> str:
    """Lower-case, single-spaced, bounded text that the patterns read."""
    return re.sub(r"\s+", " ", question.strip().lower())[:MAX_QUESTION_CHARS]


def categories_in(text: str) -> list[str]:
    """Named categories the text mentions, in CATEGORIES order."""
    return [c for c in CATEGORIES if re.search(rf"\b({_CATEGORY_WORDS[c]})\b", text)]


def route_question(question: str, previous: Route | None = None) -> Route:
    """Classify ``question``; ``previous`` is the route of the last turn in the same thread."""
    text = normalise(question)
    categories = categories_in(text)
    matched = [intent for intent, pattern in _PATTERNS if pattern.search(text)]
    wants_overlay = "show" in matched
    wants_export = "export" in matched
    short = len(text.split()) <= 5
    if matched and matched[0] == "binary" and _OPEN_QA_MARKERS.search(text):
        matched = [m for m in matched if m != "binary"] or ["open_qa"]  # a yes/no about what, not whether
    if matched and matched[0] not in ("show",):
        intent: Intent = matched[0]
        reason = f"matched the {intent} wording"
        follow_up = False
        if previous is not None and not categories and intent in ("count", "locate") and short:
            categories = previous.categories
            follow_up = bool(categories)
            reason += "; categories from the previous turn" if follow_up else ""
        return Route(
            intent=intent,
            categories=categories,
            follow_up=follow_up,
            wants_overlay=wants_overlay,
            wants_export=wants_export,
            reason=reason,
        )
    if previous is not None and (categories or _FOLLOW_UP.search(text)) and short and not wants_overlay:
        intent = previous.intent if previous.intent in ("count", "locate", "binary") else "count"
        return Route(
            intent=intent,
            categories=categories or previous.categories,
            follow_up=True,
            reason=f"short follow-up: the previous turn's {intent} question, for {categories or 'the same'}",
        )
    if wants_overlay:
        return Route(intent="show", categories=categories, wants_overlay=True, reason="asked to see the change")
    if categories and short and not text.endswith("?"):
        return Route(intent="count", categories=categories, reason="a category on its own reads as a count")
    return Route(intent="open_qa", categories=categories, reason="no fixed ChangeChat wording: open question")
