"""Answer text → typed fields: yes/no, counts per category, changed grid cells.

The model answers in words; the agent reconciles numbers. Each parser accepts the release's phrasings
("3 new roads … 5 new buildings", "No roads has changed, and no buildings has changed.",
"roads ['top-left', 'center-center'] buildings []") and free phrasings ("three new buildings",
"There are 2 roads and no buildings", "yes, …"). A parse keeps the raw text and says, as codes, which rules
fired, so evidence can show how a number was read. Text that does not parse gives ``value=None``; no input
makes a parser raise.

Categories are ``road`` and ``building``; cells are ``TL … BR`` (``deltavlm.rules``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar, get_args

from pydantic import BaseModel, Field, model_validator

from deltavlm.rules import CATEGORIES, CELL_IDS
from deltavlm.text import NO_CHANGE_CAPTIONS

T = TypeVar("T")


ParseMethod = Literal[
    "leading_yes",
    "leading_no",
    "no_change_caption",
    "change_stated",
    "no_change_stated",
    "from_counts",
    "no_change_phrase",
    "count_patterns",
    "cells_listed",
    "cells_for_asked_category",
    "cells_without_category",
    "categories_without_cells",
    "unparsed",
    "parser_error",
]
"""How a field was read: a code, never a sentence (``agent.answering`` words what it shows)."""
CountRule = Literal["no_x_or_y", "no_changes_in_x", "number_before_category", "category_before_number", "lone_number"]
"""The count patterns: "no roads or buildings", "no changes in roads", "3 roads", "roads: 3", a lone "three" for the
asked category."""


class ParsedAnswer(BaseModel, Generic[T]):
    """A parsed field, the text it came from, and how it was read (``method``, with the count patterns that fired,
    the categories mentioned with two different counts, the cells' style, or the parser's error)."""

    raw: str
    value: T | None
    method: ParseMethod
    rules: list[CountRule] = Field(default_factory=list, description="Count patterns that fired, in order.")
    conflicts: list[str] = Field(default_factory=list, description="Categories with differing counts; first kept.")
    style: Literal["release_list", "free_text"] | None = Field(None, description="How cells were written.")
    error: str | None = Field(None, description="The exception a parser raised (read as unparsed).")

    @model_validator(mode="before")
    @classmethod
    def _read_sentence_method(cls, data: Any) -> Any:
        """A parse saved before ``method`` was a code held a sentence ("leading yes", "from counts (no X or Y)",
        "release list; cells for the asked category", "parser error: ValueError"): read it as its code, so the
        turn records of older conversations still load."""
        if not isinstance(data, dict) or not isinstance(data.get("method"), str) or data["method"] in PARSE_METHODS:
            return data
        return {**data, **legacy_method(data["method"])}

    @property
    def ok(self) -> bool:
        return self.value is not None


PARSE_METHODS: frozenset[str] = frozenset(get_args(ParseMethod))
_LEGACY_RULES: dict[str, CountRule] = {
    "no X or Y": "no_x_or_y",
    "no changes in X": "no_changes_in_x",
    "number before category": "number_before_category",
    "category before number": "category_before_number",
    "lone number for the asked category": "lone_number",
}
_LEGACY_STYLES = {"release list": "release_list", "free text": "free_text"}


def legacy_method(sentence: str) -> dict[str, Any]:
    """The code (and its fields) of a method sentence written by the parsers before they wrote codes."""
    fixed = sentence.replace("-", " ").replace(" ", "_")
    if fixed in PARSE_METHODS:  # "leading yes", "no-change caption", "no-change phrase", "unparsed" …
        return {"method": fixed}
    if sentence.startswith("parser error: "):
        return {"method": "parser_error", "error": sentence.removeprefix("parser error: ")}
    if sentence.startswith("from counts ("):
        inner = sentence.removeprefix("from counts (").removesuffix(")")
        counted = legacy_method(inner)
        return {"method": "from_counts", "rules": counted.get("rules", []), "conflicts": counted.get("conflicts", [])}
    if sentence == "cells without a category":
        return {"method": "cells_without_category"}
    style, _, tail = sentence.partition("; ")
    if style in _LEGACY_STYLES:
        method = {
            "cells for the asked category": "cells_for_asked_category",
            "categories without cells": ("categories_without_cells"),
        }.get(tail, "cells_listed")
        return {"method": method, "style": _LEGACY_STYLES[style]}
    named, _, conflicting = sentence.partition("; conflicting mentions of ")
    rules = [_LEGACY_RULES[r] for r in named.split(" + ") if r in _LEGACY_RULES]
    conflicts = re.findall(r"'(\w+)'", conflicting)
    return {"method": "count_patterns" if rules else "unparsed", "rules": rules, "conflicts": conflicts}


YesNoAnswer = ParsedAnswer[bool]
CountsAnswer = ParsedAnswer[dict[str, int]]
CellsAnswer = ParsedAnswer[dict[str, list[str]]]

_NUMBER_WORDS = {
    "no": 0,
    "zero": 0,
    "none": 0,
    "a": 1,
    "an": 1,
    "one": 1,
    "single": 1,
    "a single": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
}
_NUMBER = (
    r"(\d+|a single|" + "|".join(sorted((w for w in _NUMBER_WORDS if w != "a single"), key=len, reverse=True)) + r")"
)
_CATEGORY_PATTERNS = {"road": r"roads?", "building": r"buildings?"}
_CATEGORY = r"(roads?|buildings?)"
_MODIFIERS = r"(?:(?:new|newly|changed|additional|more|other|extra|distinct|separate|large|small|big)\s+){0,2}"

_NEGATION = re.compile(r"\b(no|not|nothing|none|never|without|neither|nor)\b|n't\b")
_CHANGE_WORD = re.compile(
    r"\b(chang\w*|differen\w*|modif\w*|new|built|build|constructed|construct\w*|appear\w*|remov\w*|"
    r"demolish\w*|replac\w*|added|expand\w*|turned|become|became|emerg\w*|paved|cleared)\b"
)
_SAME = re.compile(r"\b(identical|unchanged|same as before|the same)\b")
_YES = {"yes", "yeah", "yep", "true", "correct"}
_NO = {"no", "nope", "false"}
_NO_CHANGE = re.compile(
    r"\b(no|not any)\s+(obvious\s+|significant\s+|visible\s+)?(changes?|differences?)\b|"
    r"\bnothing\s+(has\s+|have\s+)?changed\b"
)

_VERTICAL = {
    "top": "T",
    "upper": "T",
    "north": "T",
    "center": "C",
    "centre": "C",
    "middle": "C",
    "central": "C",
    "bottom": "B",
    "lower": "B",
    "south": "B",
}
_HORIZONTAL = {
    "left": "L",
    "west": "L",
    "center": "C",
    "centre": "C",
    "middle": "C",
    "central": "C",
    "right": "R",
    "east": "R",
}
_CELL = re.compile(
    r"\b(top|upper|north|center|centre|middle|central|bottom|lower|south)(?:ern)?"
    r"(?:[\s_-]*(left|west|center|centre|middle|central|right|east)(?:ern)?)?\b"
)


def _raw(text: object) -> str:
    return text if isinstance(text, str) else ("" if text is None else str(text))


def _safely(parse: Callable[..., ParsedAnswer[Any]], text: object, *args: Any) -> Any:
    """Malformed model output must never break a conversation: an unexpected failure reads as unparsed."""
    raw = _raw(text)
    try:
        return parse(raw, *args)
    except Exception as error:  # the contract is "never raise"
        return ParsedAnswer[Any](raw=raw, value=None, method="parser_error", error=type(error).__name__)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def _number(token: str) -> int:
    return int(token) if token.isdigit() else _NUMBER_WORDS[token]


def _category(word: str) -> str:
    return "road" if word.startswith("road") else "building"


def _clauses(text: str) -> list[str]:
    return [c.strip() for c in re.split(r"[.;,!?]|\bbut\b|\bwhile\b|\bwhereas\b", text) if c.strip()]


def is_no_change_phrase(text: str) -> bool:
    """True for LEVIR-CC's no-change captions and plain "no change(s)"/"nothing has changed" statements."""
    clean = _clean(text).strip(" .")
    return clean in NO_CHANGE_CAPTIONS or bool(_NO_CHANGE.search(clean)) or bool(_SAME.search(clean))


def parse_yes_no(text: object) -> YesNoAnswer:
    """Has anything changed? A leading yes/no decides; otherwise the clauses' polarity, then counts."""
    return _safely(_parse_yes_no, text)


def _parse_yes_no(text: str) -> YesNoAnswer:
    clean = _clean(text)
    first = re.match(r"^\W*([a-z]+)", clean)
    if first and first.group(1) in _YES:
        return YesNoAnswer(raw=text, value=True, method="leading_yes")
    if first and first.group(1) in _NO:
        return YesNoAnswer(raw=text, value=False, method="leading_no")
    if clean.strip(" .") in NO_CHANGE_CAPTIONS:
        return YesNoAnswer(raw=text, value=False, method="no_change_caption")
    positive = negative = False
    for clause in _clauses(clean):
        if _SAME.search(clause) or (_NEGATION.search(clause) and _CHANGE_WORD.search(clause)):
            negative = True
        elif _CHANGE_WORD.search(clause):
            positive = True
    if positive:
        return YesNoAnswer(raw=text, value=True, method="change_stated")
    if negative:
        return YesNoAnswer(raw=text, value=False, method="no_change_stated")
    counts = parse_counts(text)
    if counts.value:
        changed = sum(counts.value.values()) > 0
        return YesNoAnswer(
            raw=text, value=changed, method="from_counts", rules=counts.rules, conflicts=counts.conflicts
        )
    return YesNoAnswer(raw=text, value=None, method="unparsed")


_ZERO_PAIR = re.compile(
    rf"\bno\s+(?:new\s+|changed\s+)?(?:changes?\s+(?:in|to|of|for|on)\s+(?:the\s+)?)?{_CATEGORY}"
    rf"\s*(?:,|or|and|nor)\s*(?:no\s+)?(?:new\s+|changed\s+)?{_CATEGORY}\b"
)
_ZERO_ONE = re.compile(rf"\bno\s+(?:new\s+)?(?:changes?\s+(?:in|to|of|for|on)\s+(?:the\s+)?){_CATEGORY}\b")
_NUMBER_FIRST = re.compile(rf"\b{_NUMBER}\s+{_MODIFIERS}{_CATEGORY}\b")
_CATEGORY_FIRST = re.compile(
    rf"\b(?:number\s+of\s+{_MODIFIERS})?{_CATEGORY}\s*(?:count\s*)?(?::|=|-|\bis\b|\bare\b|\bchanged\s*:?)?\s*"
    rf"(\d+|{'|'.join(w for w in _NUMBER_WORDS if w not in ('a', 'an', 'a single', 'single', 'no'))})\b"
)


def parse_counts(text: object, default_category: str | None = None) -> CountsAnswer:
    """Counts per category; categories the text does not mention are absent from the result.

    ``default_category`` attributes a lone number ("three", "there are 3 of them") to the category the
    question asked about.
    """
    return _safely(_parse_counts, text, default_category)


def _parse_counts(text: str, default_category: str | None) -> CountsAnswer:
    clean = _clean(text)
    counts: dict[str, int] = {}
    rules: list[CountRule] = []
    conflicts: list[str] = []

    def record(category: str, value: int, rule: CountRule) -> None:
        if category in counts and counts[category] != value:
            conflicts.append(category)
            return
        counts[category] = value
        if rule not in rules:
            rules.append(rule)

    masked = clean
    zeros: tuple[tuple[re.Pattern[str], CountRule], ...] = ((_ZERO_PAIR, "no_x_or_y"), (_ZERO_ONE, "no_changes_in_x"))
    for pattern, rule in zeros:
        for match in pattern.finditer(masked):
            for word in match.groups():
                if word:
                    record(_category(word), 0, rule)
        masked = pattern.sub(lambda m: " " * len(m.group(0)), masked)
    for match in _NUMBER_FIRST.finditer(masked):
        record(_category(match.group(2)), _number(match.group(1)), "number_before_category")
    for match in _CATEGORY_FIRST.finditer(masked):
        category = _category(match.group(1))
        if category not in counts:
            record(category, _number(match.group(2)), "category_before_number")
    if not counts and default_category in CATEGORIES:
        numbers = re.findall(rf"\b{_NUMBER}\b", clean.replace(" a ", " "))
        numbers = [n for n in numbers if n not in ("a", "an")]
        if len(numbers) == 1:
            record(default_category, _number(numbers[0]), "lone_number")
    if not counts and is_no_change_phrase(clean):
        return CountsAnswer(raw=text, value=dict.fromkeys(CATEGORIES, 0), method="no_change_phrase")
    if not counts:
        return CountsAnswer(raw=text, value=None, method="unparsed")
    ordered = {category: counts[category] for category in CATEGORIES if category in counts}
    return CountsAnswer(raw=text, value=ordered, method="count_patterns", rules=rules, conflicts=sorted(set(conflicts)))


def _cells_in(segment: str) -> list[str]:
    found = []
    for match in _CELL.finditer(segment):
        vertical, horizontal = match.group(1), match.group(2)
        if horizontal is None:
            if _VERTICAL[vertical] != "C":
                continue  # "top" alone names a row, not a cell
            found.append("CC")
        else:
            found.append(_VERTICAL[vertical] + _HORIZONTAL[horizontal])
    return found


def _canonical(cells: list[str]) -> list[str]:
    return [cell for cell in CELL_IDS if cell in set(cells)]


def parse_cells(text: object, default_category: str | None = None) -> CellsAnswer:
    """Changed 3×3 cells per category; a category the text mentions without cells and with a negation or an
    empty list ``[]`` maps to ``[]``, one mentioned without either is absent (location unknown).

    Cells before the first category mention belong to it; cells with no category at all go to
    ``default_category`` when given.
    """
    return _safely(_parse_cells, text, default_category)


def _parse_cells(text: str, default_category: str | None) -> CellsAnswer:
    clean = _clean(text)
    mentions = [(m.start(), m.end(), _category(m.group(1))) for m in re.finditer(rf"\b{_CATEGORY}\b", clean)]
    style: Literal["release_list", "free_text"] = "release_list" if "[" in clean else "free_text"
    cells: dict[str, list[str]] = {}
    if not mentions:
        found = _cells_in(clean)
        if found and default_category in CATEGORIES:
            return CellsAnswer(
                raw=text,
                value={default_category: _canonical(found)},
                method="cells_for_asked_category",
                style=style,
            )
        if is_no_change_phrase(clean):
            return CellsAnswer(raw=text, value={c: [] for c in CATEGORIES}, method="no_change_phrase")
        return CellsAnswer(raw=text, value=None, method="cells_without_category" if found else "unparsed", style=style)
    for index, (_, end, category) in enumerate(mentions):
        stop = mentions[index + 1][0] if index + 1 < len(mentions) else len(clean)
        segment = clean[end:stop]
        if index == 0:
            segment = re.split(r"[.;!?]", clean[: mentions[0][0]])[-1] + " " + segment
        found = _cells_in(segment)
        if found:
            cells[category] = _canonical([*cells.get(category, []), *found])
        elif category not in cells and (
            "[]" in segment.replace(" ", "") or _NEGATION.search(clean[max(0, mentions[index][0] - 12) : stop])
        ):
            cells[category] = []
    if not cells:
        return CellsAnswer(raw=text, value=None, method="categories_without_cells", style=style)
    ordered = {category: cells[category] for category in CATEGORIES if category in cells}
    return CellsAnswer(raw=text, value=ordered, method="cells_listed", style=style)
