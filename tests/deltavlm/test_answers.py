"""Answer parsing, table-driven: the release's phrasings (REFERENCE.md) and free phrasings."""

from __future__ import annotations

import pytest

from deltavlm.answers import CountsAnswer, legacy_method, parse_cells, parse_counts, parse_yes_no
from deltavlm.text import NO_CHANGE_CAPTIONS

YES_NO = [
    ("yes", True),
    ("Yes.", True),
    ("yes, the two images have changed.", True),
    ("Yes, there are new buildings.", True),
    ("no", False),
    ("No, nothing has changed.", False),
    ("No roads has changed, and no buildings has changed.", False),
    ("The images have not changed.", False),
    ("there are no changes in roads or buildings", False),
    ("many buildings are constructed along the road", True),
    ("The two images have changed.", True),
    ("3 new roads and 5 new buildings", True),
    ("roads: 0, buildings: 0", False),
    *[(caption, False) for caption in NO_CHANGE_CAPTIONS],
    ("I am not sure.", None),
    ("", None),
    ("🙂 ???", None),
]


@pytest.mark.parametrize(("text", "expected"), YES_NO)
def test_parse_yes_no(text: str, expected: bool | None) -> None:
    parsed = parse_yes_no(text)
    assert parsed.value is expected
    assert parsed.raw == text and parsed.method
    assert parsed.ok == (expected is not None)


COUNTS = [
    ("3 new roads … 5 new buildings", {"road": 3, "building": 5}),
    ("There are 3 new roads and 5 new buildings.", {"road": 3, "building": 5}),
    ("no new roads or buildings", {"road": 0, "building": 0}),
    ("there are no changes in roads or buildings", {"road": 0, "building": 0}),
    ("No roads has changed, and no buildings has changed.", {"road": 0, "building": 0}),
    ("1 road has changed, and 4 buildings have changed.", {"road": 1, "building": 4}),
    ("three new buildings", {"building": 3}),
    ("no buildings", {"building": 0}),
    ("There are 2 roads and no buildings", {"road": 2, "building": 0}),
    ("a new road and twelve new buildings", {"road": 1, "building": 12}),
    ("Roads: 3, buildings: 5", {"road": 3, "building": 5}),
    ("the number of roads is 2 and the number of buildings is 7", {"road": 2, "building": 7}),
    ("there is no difference", {"road": 0, "building": 0}),
    ("no changes to roads, 4 new buildings", {"road": 0, "building": 4}),
    ("many buildings", None),
    ("roads ['top-left'] buildings []", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), COUNTS)
def test_parse_counts(text: str, expected: dict[str, int] | None) -> None:
    parsed = parse_counts(text)
    assert parsed.value == expected
    assert parsed.raw == text and parsed.method


def test_parse_counts_keeps_roads_first_and_notes_conflicts() -> None:
    parsed = parse_counts("5 buildings, 2 roads, and then 3 roads")
    assert list(parsed.value or {}) == ["road", "building"]
    assert parsed.value == {"road": 2, "building": 5} and parsed.conflicts == ["road"]
    assert parsed.method == "count_patterns" and parsed.rules == ["number_before_category"]


def test_parse_counts_lone_number_for_the_asked_category() -> None:
    assert parse_counts("three", default_category="building").value == {"building": 3}
    assert parse_counts("three", default_category=None).value is None
    assert parse_counts("between 2 and 3", default_category="road").value is None


CELLS = [
    ("roads ['top-left', 'center-center'] buildings []", {"road": ["TL", "CC"], "building": []}),
    ("roads [] buildings ['bottom-right', 'top-center']", {"road": [], "building": ["TC", "BR"]}),
    (
        "roads ['top-left', 'top-center', 'top-right', 'center-left', 'center-center', 'center-right', "
        "'bottom-left', 'bottom-center', 'bottom-right'] buildings []",
        {"road": ["TL", "TC", "TR", "CL", "CC", "CR", "BL", "BC", "BR"], "building": []},
    ),
    (
        "Roads changed in the top left and bottom-right; buildings in the center.",
        {"road": ["TL", "BR"], "building": ["CC"]},
    ),
    ("In the upper right there are new buildings.", {"building": ["TR"]}),
    ("no roads changed, buildings in the lower left", {"road": [], "building": ["BL"]}),
    ("no changes", {"road": [], "building": []}),
    ("the top-left corner", None),
    ("roads changed", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), CELLS)
def test_parse_cells(text: str, expected: dict[str, list[str]] | None) -> None:
    parsed = parse_cells(text)
    assert parsed.value == expected
    assert parsed.raw == text and parsed.method


def test_parse_cells_for_the_asked_category() -> None:
    assert parse_cells("the top-left corner and the middle", default_category="road").value == {"road": ["TL", "CC"]}


@pytest.mark.parametrize("text", [None, 42, b"bytes", "[[[", "roads [' buildings", "\x00\x01", "9" * 5000])
def test_parsers_never_raise(text: object) -> None:
    for parse in (parse_yes_no, parse_counts, parse_cells):
        parsed = parse(text)
        assert isinstance(parsed.raw, str)


@pytest.mark.parametrize(
    ("sentence", "code"),
    [
        ("leading yes", {"method": "leading_yes"}),
        ("no-change caption", {"method": "no_change_caption"}),
        ("parser error: ValueError", {"method": "parser_error", "error": "ValueError"}),
        (
            "from counts (lone number for the asked category)",
            {"method": "from_counts", "rules": ["lone_number"], "conflicts": []},
        ),
        ("number before category", {"method": "count_patterns", "rules": ["number_before_category"], "conflicts": []}),
        (
            "number before category + no X or Y; conflicting mentions of ['road'], first kept",
            {"method": "count_patterns", "rules": ["number_before_category", "no_x_or_y"], "conflicts": ["road"]},
        ),
        ("release list; cells for the asked category", {"method": "cells_for_asked_category", "style": "release_list"}),
        ("free text", {"method": "cells_listed", "style": "free_text"}),
        ("cells without a category", {"method": "cells_without_category"}),
    ],
)
def test_a_method_sentence_saved_by_an_older_version_reads_as_its_code(sentence: str, code: dict) -> None:
    assert legacy_method(sentence) == code
    parsed = CountsAnswer.model_validate({"raw": "x", "value": None, "method": sentence})
    assert parsed.method == code["method"]
