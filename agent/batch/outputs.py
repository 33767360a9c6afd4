"""The output folder: durable appends, atomic parts, recovery after a kill, and the final merged files.

A pair's answer records are appended to ``answers.jsonl`` in ONE write, then flushed and fsynced: that append is the
pair's commit. Its parts (summary row, GeoJSON features) are written first, atomically, so a committed pair always
has them. On a rerun, torn lines and partial pairs are dropped by an atomic rewrite and redone.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agent.batch.catalog import Catalog, display_path
from agent.batch.pair_work import compact_json
from tools.atomic import replacing, write_atomic
from tools.crs import to_crs
from tools.geojson import PIXEL_COORDINATES
from tools.vector_export import write_gpkg_stream

ANSWERS, ERRORS, SUMMARY, CHANGES, CHANGES_PIXEL, CHANGES_GPKG, CHANGES_PIXEL_GPKG, MANIFEST, PARTS, ARTEFACTS, LOCK = (
    "answers.jsonl",
    "errors.jsonl",
    "summary.csv",
    "changes.geojson",
    "changes_pixel.geojson",
    "changes.gpkg",
    "changes_pixel.gpkg",
    "manifest.json",
    "parts",
    "artefacts",
    ".lock",
)
SUMMARY_COLUMNS = (
    "pair",
    "status",
    "t1",
    "t2",
    "changed",
    "road",
    "building",
    "changed_regions",
    "changed_cells",
    "changed_fraction",
    "valid_fraction",
    "no_data_cells",
    "mask_provider",
    "mask_confidence",
    "questions",
    "error",
)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet runs a cell starting with one of these as a formula; such cells get a leading apostrophe."""

# ------------------------------------------------------------------------------------------ output folder


def spreadsheet_safe(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with text cells that a spreadsheet would run as a formula (a catalog id like ``=HYPERLINK(…)``)
    escaped by a leading apostrophe (OWASP's CSV-injection advice); numbers are left alone."""
    return {k: "'" + v if isinstance(v, str) and v.startswith(FORMULA_PREFIXES) else v for k, v in row.items()}


def append_durably(path: Path, text: str) -> None:
    """Append ``text`` (whole lines) in one write call, then fsync: the commit of one pair."""
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def part_path(out: Path, key: str) -> Path:
    """Part files are named by a hash of the pair id, so any id is a safe file name."""
    return out / PARTS / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.json"


class ResumeState(BaseModel):
    """What an earlier run left: finished pairs, failed pairs, and what had to be cleaned up."""

    answered: set[str] = Field(default_factory=set)
    failed: set[str] = Field(default_factory=set)
    dropped_records: int = 0
    dropped_errors: int = 0


def _scan_lines(path: Path) -> Iterator[tuple[int, int, dict[str, Any] | None]]:
    """(offset, length, parsed record or None if torn/invalid) for every line of a JSONL file."""
    if not path.exists():
        return
    offset = 0
    with open(path, "rb") as handle:
        for raw in handle:
            parsed: dict[str, Any] | None = None
            if raw.endswith(b"\n"):
                try:
                    value = json.loads(raw)
                    parsed = value if isinstance(value, dict) else None
                except ValueError:
                    parsed = None
            yield offset, len(raw), parsed
            offset += len(raw)


def _rewrite_lines(path: Path, spans: list[tuple[int, int]]) -> None:
    """Rewrite ``path`` keeping only the given (offset, length) lines, in that order, atomically."""
    with replacing(path) as temporary, open(path, "rb") as source, open(temporary, "wb") as target:
        for offset, length in spans:
            source.seek(offset)
            target.write(source.read(length))


def recover(out: Path, n_questions: int, retry_errors: bool = False) -> ResumeState:
    """Keep exactly the complete pairs of an interrupted run; drop torn lines, partial pairs and duplicates.

    Only (offset, length, pair, question) of each line is kept in memory, never the records themselves.
    """
    state = ResumeState()
    answers = out / ANSWERS
    lines: list[tuple[int, int, str | None]] = []
    questions_seen: dict[str, list[int]] = {}
    for offset, length, record in _scan_lines(answers):
        key = record.get("pair") if record is not None else None
        if record is None or not isinstance(key, str):
            lines.append((offset, length, None))
            continue
        lines.append((offset, length, key))
        questions_seen.setdefault(key, []).append(record.get("question_index", -1))
    complete = {
        key
        for key, seen in questions_seen.items()
        if sorted(seen) == list(range(n_questions)) and part_path(out, key).exists()
    }
    keep = [(offset, length) for offset, length, key in lines if key in complete]
    state.answered = complete
    state.dropped_records = len(lines) - len(keep)
    if state.dropped_records:
        _rewrite_lines(answers, keep)
    errors = out / ERRORS
    kept_errors: list[tuple[int, int]] = []
    seen_errors = 0
    for offset, length, record in _scan_lines(errors):
        seen_errors += 1
        key = record.get("pair") if record else None
        if not isinstance(key, str) or key in complete or key in state.failed or retry_errors:
            continue
        state.failed.add(key)
        kept_errors.append((offset, length))
    state.dropped_errors = seen_errors - len(kept_errors)
    if state.dropped_errors:
        _rewrite_lines(errors, kept_errors)
    return state


def _sort_jsonl(path: Path, order: dict[str, int]) -> None:
    """Put a finished JSONL output in catalog order (pair, then question), unless it already is."""
    spans = []
    for offset, length, record in _scan_lines(path):
        if record is None:
            continue
        spans.append((order.get(record.get("pair", ""), len(order)), record.get("question_index", 0), offset, length))
    ordered = sorted(spans)
    if ordered != spans:
        _rewrite_lines(path, [(o, n) for *_, o, n in ordered])


class _CollectionWriter:
    """A FeatureCollection written feature by feature (never all in memory), then moved into place atomically."""

    def __init__(self, path: Path, extra: dict[str, Any]) -> None:
        self.path = path
        self._stack = contextlib.ExitStack()
        temporary = self._stack.enter_context(replacing(path))
        self.handle = self._stack.enter_context(open(temporary, "w", encoding="utf-8"))  # noqa: SIM115 - closed by the stack in finish()
        self.count = 0
        self.handle.write('{"type":"FeatureCollection",')
        for key, value in extra.items():
            self.handle.write(f"{json.dumps(key)}:{compact_json(value)},")
        self.handle.write('"features":[')

    def add(self, feature: dict[str, Any]) -> None:
        self.handle.write(("," if self.count else "") + "\n" + compact_json(feature))
        self.count += 1

    def finish(self, keep_empty: bool) -> bool:
        """Close and move into place; an empty optional layer is removed instead. True when written."""
        self.handle.write("\n]}\n")
        self._stack.close()
        if self.count or keep_empty:
            return True
        self.path.unlink(missing_ok=True)
        return False

    def abandon(self, exc: BaseException) -> None:
        """Drop the temporary file; the layer of an earlier run stays as it was."""
        self._stack.__exit__(type(exc), exc, exc.__traceback__)


def _part_features(out: Path, catalog: Catalog, failed: set[str], *, georeferenced: bool) -> Iterator[dict[str, Any]]:
    """The features of the committed pairs' parts, in catalog order: those on the map, or those in pixels."""
    for item in catalog.items:
        path = part_path(out, item.key)
        if item.key in failed or not path.exists():
            continue
        part = json.loads(path.read_text(encoding="utf-8"))
        if part["georeferenced"] == georeferenced:
            yield from part["features"]


def finalize(out: Path, catalog: Catalog) -> dict[str, str]:
    """Order the JSONL outputs by catalog and rebuild ``summary.csv`` and the map layers from the parts.

    One pass over the catalog reads each pair's part once; georeferenced pairs go to ``changes.geojson``
    (EPSG:4326), pairs without a georeference to ``changes_pixel.geojson`` (pixel coordinates cannot share a
    map layer with longitudes and latitudes). The same features are then written as GeoPackages (``changes.gpkg``,
    ``changes_pixel.gpkg``: one layer per kind of feature), streamed from the parts again, so neither needs a
    whole layer in memory.
    """
    order = {item.key: item.index for item in catalog.items}
    _sort_jsonl(out / ANSWERS, order)
    _sort_jsonl(out / ERRORS, order)
    errors: dict[str, dict[str, Any]] = {}
    for _, _, record in _scan_lines(out / ERRORS):
        if record is not None:
            errors[record["pair"]] = record
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    mapped = _CollectionWriter(out / CHANGES, {"name": "changeagent batch changes (EPSG:4326)"})
    pixel = _CollectionWriter(out / CHANGES_PIXEL, {"coordinate_system": PIXEL_COORDINATES})
    try:
        for item in catalog.items:
            entry = item.entry
            if item.key in errors:
                writer.writerow(
                    spreadsheet_safe(
                        {
                            "pair": item.key if entry or not (item.problem and item.problem.id) else item.problem.id,
                            "status": f"error ({errors[item.key]['stage']})",
                            "t1": display_path(entry.t1, catalog.folder) if entry else "",
                            "t2": display_path(entry.t2, catalog.folder) if entry else "",
                            "error": errors[item.key]["error"],
                        }
                    )
                )
                continue
            path = part_path(out, item.key)
            if not path.exists():
                continue
            part = json.loads(path.read_text(encoding="utf-8"))
            writer.writerow(spreadsheet_safe(part["row"]))
            layer = mapped if part["georeferenced"] else pixel
            for feature in part["features"]:
                layer.add(feature)
    except BaseException as exc:
        mapped.abandon(exc)
        pixel.abandon(exc)
        raise
    wrote_mapped = mapped.finish(keep_empty=True)
    wrote_pixel = pixel.finish(keep_empty=False)
    write_atomic(out / SUMMARY, buffer.getvalue())
    written = {"answers": str(out / ANSWERS), "summary": str(out / SUMMARY)}
    if wrote_mapped:
        written["changes"] = str(out / CHANGES)
        layers = partial(_part_features, out, catalog, set(errors), georeferenced=True)
        written["changes_gpkg"] = str(write_gpkg_stream(out / CHANGES_GPKG, layers, to_crs("EPSG:4326").to_wkt()))
    if wrote_pixel:
        written["changes_pixel"] = str(out / CHANGES_PIXEL)
        layers = partial(_part_features, out, catalog, set(errors), georeferenced=False)
        written["changes_pixel_gpkg"] = str(write_gpkg_stream(out / CHANGES_PIXEL_GPKG, layers, None))
    else:
        (out / CHANGES_PIXEL_GPKG).unlink(missing_ok=True)  # an earlier run's, now without features
    if errors:
        written["errors"] = str(out / ERRORS)
    return written
