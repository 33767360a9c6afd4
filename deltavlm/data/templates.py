"""Instructions and answer templates in the ChangeChat-105k release's phrasing.

Answers are rendered from the rule outputs of :mod:`deltavlm.rules` (never computed here). Every template
is written so that :mod:`deltavlm.answers` parses it back to the exact numbers and cells it was filled
with; ``tests/deltavlm/test_data_builder.py`` checks that round trip for every template, because the evaluator
scores a model by parsing its answers with the same parsers.

Phrasing follows ``REFERENCE.md``: counts name roads first ("3 new roads … 5 new buildings", zero forms
"no new roads or buildings", "there are no changes in roads or buildings", "No roads has changed, and no
buildings has changed."); localisation is a Python-style list per category
("roads ['top-left', 'center-center'] buildings []").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from deltavlm.rules import CELL_IDS, CELL_NAMES
from deltavlm.text import PAPER_INSTRUCTIONS, RELEASE_INSTRUCTIONS

IMAGE_PREFIX = "<image> <image> "
"""How the release's first human turn starts: one placeholder per date."""

AnswerStyle = Literal["canonical", "varied"]
InstructionSet = Literal["release", "paper"]

TASKS: tuple[str, ...] = ("caption", "binary", "count", "localisation", "open_qa", "dialog")
"""The six ChangeChat instruction types (paper Table 1), in its order."""

TASK_TITLES: dict[str, str] = {
    "caption": "Change captioning",
    "binary": "Binary change classification",
    "count": "Category-specific change quantification",
    "localisation": "Change localisation",
    "open_qa": "Open-ended QA",
    "dialog": "Multi-turn dialogue",
    "open_dialog": "Generated conversation",
}

BINARY_ANSWERS: dict[bool, tuple[str, ...]] = {
    True: ("yes", "yes, the two images have changed.", "yes, there are changes between the two images."),
    False: ("no", "no, the two images have not changed.", "no, there is no change between the two images."),
}

COUNT_ZERO_ANSWERS: tuple[str, ...] = (
    "no new roads or buildings",
    "there are no changes in roads or buildings",
    "No roads has changed, and no buildings has changed.",
)

COUNT_TEMPLATES: tuple[str, ...] = (
    "{road_n} new {roads} and {building_n} new {buildings}",
    "there are {road_n} new {roads} and {building_n} new {buildings}.",
    "{road_n} {roads} {road_have} changed, and {building_n} {buildings} {building_have} changed.",
)
"""Templates for a pair with at least one changed object; zeros are written "no"."""

CATEGORY_COUNT_QUESTIONS: dict[str, tuple[str, ...]] = {
    "road": ("How many roads have changed?", "How many new roads are there?"),
    "building": ("How many buildings have changed?", "How many new buildings are there?"),
}
CATEGORY_COUNT_TEMPLATES: tuple[str, ...] = (
    "{n} {noun} {have} changed.",
    "there {be} {n} new {noun}.",
)

LOCALISATION_FREE_TEMPLATES: tuple[str, ...] = (
    "the roads changed in {roads} and the buildings changed in {buildings}.",
    "road changes: {roads}; building changes: {buildings}.",
)


def instruction(task: str, instructions: InstructionSet = "release") -> str:
    """The fixed instruction of a task; the paper's wording where it prints one and ``instructions='paper'``."""
    if instructions == "paper" and task in PAPER_INSTRUCTIONS:
        return PAPER_INSTRUCTIONS[task]
    return RELEASE_INSTRUCTIONS[task]


def first_turn(question: str) -> str:
    """The first human turn of a record: the two image placeholders, then the question."""
    return IMAGE_PREFIX + question


def strip_image_tokens(text: str) -> str:
    """The question of a human turn without its ``<image>`` placeholders."""
    return text.replace("<image>", " ").strip()


def _pick(options: Sequence[str], rng: np.random.Generator | None, style: AnswerStyle) -> str:
    if style == "canonical" or rng is None:
        return options[0]
    return options[int(rng.integers(len(options)))]


def binary_answer(changed: bool, rng: np.random.Generator | None = None, style: AnswerStyle = "canonical") -> str:
    """Yes/no from the binary rule's result."""
    return _pick(BINARY_ANSWERS[bool(changed)], rng, style)


def _number(n: int) -> str:
    return "no" if n == 0 else str(n)


def _plural(n: int, noun: str) -> str:
    return noun if n == 1 else noun + "s"


def count_answer(
    counts: Mapping[str, int], rng: np.random.Generator | None = None, style: AnswerStyle = "canonical"
) -> str:
    """Roads first, then buildings, from the counting rule's result."""
    road, building = int(counts.get("road", 0)), int(counts.get("building", 0))
    if road == 0 and building == 0:
        return _pick(COUNT_ZERO_ANSWERS, rng, style)
    template = _pick(COUNT_TEMPLATES, rng, style)
    return template.format(
        road_n=_number(road),
        building_n=_number(building),
        roads=_plural(road, "road"),
        buildings=_plural(building, "building"),
        road_have="has" if road <= 1 else "have",
        building_have="has" if building <= 1 else "have",
    )


def category_count_question(category: str, rng: np.random.Generator | None, style: AnswerStyle = "canonical") -> str:
    return _pick(CATEGORY_COUNT_QUESTIONS[category], rng, style)


def category_count_answer(
    category: str, n: int, rng: np.random.Generator | None = None, style: AnswerStyle = "canonical"
) -> str:
    """One category's count, for the category-specific questions."""
    return _pick(CATEGORY_COUNT_TEMPLATES, rng, style).format(
        n=_number(n), noun=_plural(n, category), have="has" if n <= 1 else "have", be="is" if n == 1 else "are"
    )


def cell_list(cells: Sequence[str]) -> str:
    """``['top-left', 'center-center']``: cell names in grid order, as the release writes them."""
    ordered = [CELL_NAMES[c] for c in CELL_IDS if c in set(cells)]
    return "[" + ", ".join(f"'{name}'" for name in ordered) + "]"


def _cell_words(cells: Sequence[str]) -> str:
    names = [CELL_NAMES[c] for c in CELL_IDS if c in set(cells)]
    if not names:
        return "no cell"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def localisation_answer(
    category_cells: Mapping[str, Sequence[str]],
    rng: np.random.Generator | None = None,
    style: AnswerStyle = "canonical",
) -> str:
    """Changed 3×3 cells per category from the grid rule's result, roads first."""
    roads, buildings = category_cells.get("road", ()), category_cells.get("building", ())
    options = (f"roads {cell_list(roads)} buildings {cell_list(buildings)}",)
    if style == "varied" and roads and buildings:
        options += tuple(
            t.format(roads=_cell_words(roads), buildings=_cell_words(buildings)) for t in LOCALISATION_FREE_TEMPLATES
        )
    return _pick(options, rng, style)


def caption_answer(captions: Sequence[str], index: int) -> str:
    """One of the pair's captions, as written in LEVIR-CC."""
    return captions[index].strip()
