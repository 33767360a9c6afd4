"""The shape of one catalog row, checked before any path is resolved: known columns, each once, of the right type.

A catalog is untrusted input. A repeated column (``id,t1,t2,t2``) would otherwise let the last one win silently
(the before-image compared with itself reads "no change"); an unknown one (``msk``) would be ignored; a JSON
number where a path belongs would read as "empty". Each of these is an error naming the column, and for JSONL
the line and the field. A line is read only up to :data:`MAX_LINE_BYTES` and :data:`MAX_JSON_DEPTH` levels of
nesting, so one hostile line cannot exhaust memory or the interpreter's stack. Ids are single-line text: a line
or paragraph separator, NEL or form feed inside an id would split it into extra rows in any line-based output.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

COLUMNS = ("id", "t1", "t2", "mask", "bounds", "crs", "gsd", "aoi")
"""Every column a catalog row may hold; anything else is a named error."""
REQUIRED = ("t1", "t2")
"""A row without an id takes its scene's name (tools.naming.distinct_names), unique within the catalog."""
MAX_LINE_BYTES = 64 * 1024
"""Longest catalog line read (a row is a few paths; 64 KiB is generous)."""
MAX_JSON_DEPTH = 8
"""Deepest nesting a JSONL row may hold (a row is one object, bounds at most a list inside it)."""
MAX_ID_CHARS = 512
_LINE_BREAKING = {"Cc", "Zl", "Zp", "Cs"}


class RowShapeError(ValueError):
    """A row (or a header) whose shape is wrong; the message names the column or field."""


def repeated(names: list[str]) -> list[str]:
    """Names that occur more than once, in first-seen order."""
    seen: set[str] = set()
    twice: list[str] = []
    for name in names:
        if name in seen and name not in twice:
            twice.append(name)
        seen.add(name)
    return twice


def unknown(names: list[str]) -> list[str]:
    return [name for name in names if name not in COLUMNS]


def check_header(fields: list[str]) -> None:
    """A CSV header: every column known, none repeated, the required ones present."""
    problems = []
    twice = repeated(fields)
    if twice:
        problems.append(f"repeats the column{'s' if len(twice) > 1 else ''} {', '.join(twice)}")
    strange = unknown(fields)
    if strange:
        shown = ", ".join(repr(name) for name in strange)
        problems.append(f"has the unknown column{'s' if len(strange) > 1 else ''} {shown}")
    if problems:
        raise RowShapeError(f"its header {' and '.join(problems)}; the known columns are {', '.join(COLUMNS)}")


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` nests arrays/objects deeper than ``limit`` (scanned without parsing, so without recursion)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    twice = repeated([key for key, _ in pairs])
    if twice:
        raise RowShapeError(f"repeats the field{'s' if len(twice) > 1 else ''} {', '.join(twice)}")
    return dict(pairs)


def parse_json_row(line: str) -> Any:
    """One JSONL line, refusing repeated keys and deep nesting (``RowShapeError``) and bad JSON (``ValueError``)."""
    if json_depth_exceeds(line):
        raise RowShapeError(f"nests deeper than {MAX_JSON_DEPTH} levels; a row is one flat object")
    return json.loads(line, object_pairs_hook=_no_repeated_keys)


def check_json_row(row: dict[str, Any]) -> None:
    """The fields of one JSONL object: all known, each of the type its column holds."""
    strange = unknown(list(row))
    if strange:
        shown = ", ".join(repr(name) for name in strange)
        raise RowShapeError(
            f"has the unknown field{'s' if len(strange) > 1 else ''} {shown}; the known fields are {', '.join(COLUMNS)}"
        )
    for field in ("t1", "t2", "mask", "crs", "aoi"):
        value = row.get(field)
        if value is not None and not isinstance(value, str):
            raise RowShapeError(
                f"field {field} must be text (a path{'' if field != 'crs' else ' or CRS'}), "
                f"not {_json_type(value)} {json.dumps(value)[:40]}"
            )
    if "id" in row and (isinstance(row["id"], bool) or not isinstance(row["id"], str | int)):
        raise RowShapeError(f"field id must be text, not {_json_type(row['id'])}")
    gsd = row.get("gsd")
    if gsd is not None and (isinstance(gsd, bool) or not isinstance(gsd, str | int | float)):
        raise RowShapeError(f"field gsd must be a number of metres per pixel, not {_json_type(gsd)}")
    bounds = row.get("bounds")
    four_numbers = (
        isinstance(bounds, list)
        and len(bounds) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in bounds)
    )
    if bounds is not None and not isinstance(bounds, str) and not four_numbers:
        raise RowShapeError("field bounds must be text 'W,S,E,N' or a list of four numbers")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "text"


def check_id(pair_id: str) -> None:
    """Ids are single-line text of a bounded length: no control characters, line or paragraph separators, or lone
    surrogates (which no output file can encode)."""
    if len(pair_id) > MAX_ID_CHARS:
        raise RowShapeError(f"id has {len(pair_id)} characters; the limit is {MAX_ID_CHARS}")
    for char in pair_id:
        if unicodedata.category(char) in _LINE_BREAKING:
            raise RowShapeError(
                f"id {pair_id[:60]!r} holds the control or line-breaking character U+{ord(char):04X}; "
                "ids must be single-line text"
            )
