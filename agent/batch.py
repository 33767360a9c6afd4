"""Batch runs: a fixed list of questions over a catalog of image pairs, every answer on disk, resumable.

The third way in (after the page and ``Agent().ask``): ``changeagent batch CATALOG --questions Q --out DIR``.

Catalogs (:func:`read_catalog`) are a CSV or JSONL of ``id, t1, t2[, mask]``, a folder in the LEVIR
layout (``A/``, ``B/``, optional ``label/``, pairs matched by file name) or a STAC ItemCollection (two
items of one place make a pair; see :func:`read_catalog`). Relative paths resolve against the catalog's
folder and nothing may resolve outside the allowed root, so a catalog from elsewhere cannot make the run
read arbitrary files. A bad row does not stop the run: it becomes an ``errors.jsonl`` record.

Work is done once per pair: the pair is decoded once, its mask made and verified once
(:func:`prepare_pair`, CPU work), then one conversation thread (thread id = pair id) asks every question in
order (:func:`converse`), so follow-ups ("where?", "export that") work as in the chat and DeltaVLM, when
configured, encodes the pair once through its feature cache.

Exactness under kills: a pair's answer records are appended to ``answers.jsonl`` in ONE write, then
flushed and fsynced: that append is the pair's commit. Its per-pair results (summary row, GeoJSON
features) are written to ``parts/`` first, atomically, so a committed pair always has them. On a rerun the
output folder is scanned: pairs with every question answered exactly once (and their part) are kept and
skipped, torn lines and partial pairs are dropped by an atomic rewrite and redone. ``manifest.json`` holds
the questions, a digest of each catalog item and the settings; a rerun with different ones is refused and
the difference named. At the end ``answers.jsonl`` and ``errors.jsonl`` are put in catalog order, and
``summary.csv`` and ``changes.geojson`` are rebuilt from the parts, so the outputs do not depend on the
engine, the number of workers or how often the run was interrupted (timings apart).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.intents import MAX_QUESTION_CHARS
from agent.settings import AgentSettings
from tools.classical_mask import ClassicalMaskProvider
from tools.geojson import PIXEL_COORDINATES, changes_geojson
from tools.masks import ChangeMask, MaskKind, MaskProvider, UserMaskProvider
from tools.pairs import ImagePair, load_pair
from tools.raster import InputError
from tools.verify import Verification, verify

if TYPE_CHECKING:
    from agent.api import Agent

FORMAT = "changeagent-batch/1"
CatalogKind = Literal["csv", "jsonl", "levir", "stac"]
Engine = Literal["local", "ray"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
STAC_IMAGE_ASSETS = ("image", "visual", "data", "rgb")
STAC_MASK_ASSETS = ("mask", "label", "change_mask")
STAC_PLACE_PROPERTY = "changeagent:place"
"""An item property naming its place explicitly; items sharing a value form a pair."""

ANSWERS, ERRORS, SUMMARY, CHANGES, CHANGES_PIXEL, MANIFEST, PARTS, ARTEFACTS, LOCK = (
    "answers.jsonl",
    "errors.jsonl",
    "summary.csv",
    "changes.geojson",
    "changes_pixel.geojson",
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
    "mask_provider",
    "mask_confidence",
    "questions",
    "error",
)


# ------------------------------------------------------------------------------------------------ catalog


class CatalogEntry(BaseModel):
    """One pair of the catalog, its paths resolved (absolute, inside the allowed root)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    t1: Path
    t2: Path
    mask: Path | None = None


class CatalogProblem(BaseModel):
    """A catalog row that cannot become a pair, and why; it is reported in ``errors.jsonl``."""

    model_config = ConfigDict(frozen=True)

    where: str = Field(description="Where in the catalog, e.g. 'pairs.csv line 7'.")
    id: str | None = None
    error: str


class CatalogItem(BaseModel):
    """An entry or a problem, at its place in catalog order."""

    model_config = ConfigDict(frozen=True)

    index: int
    entry: CatalogEntry | None = None
    problem: CatalogProblem | None = None

    @property
    def key(self) -> str:
        """Unique within a catalog: the pair id, or ``<where>`` for a row that has no usable id."""
        if self.entry is not None:
            return self.entry.id
        assert self.problem is not None
        return f"<{self.problem.where}>"

    def digest(self, base: Path) -> str:
        """What the manifest remembers of this item, to name what changed on a rerun."""
        if self.entry is None:
            assert self.problem is not None
            payload = ["problem", self.problem.error]
        else:
            payload = [_display(self.entry.t1, base), _display(self.entry.t2, base)]
            payload.append(_display(self.entry.mask, base) if self.entry.mask else "")
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]


class Catalog(BaseModel):
    path: Path
    kind: CatalogKind
    folder: Path = Field(description="Relative paths resolve against this folder.")
    root: Path = Field(description="Nothing may resolve outside this folder (the catalog's folder by default).")
    items: list[CatalogItem]

    @property
    def entries(self) -> list[CatalogEntry]:
        return [item.entry for item in self.items if item.entry is not None]


class _RowError(Exception):
    """A problem with one catalog row (internal; becomes a CatalogProblem)."""


def _display(path: Path | None, base: Path) -> str:
    """A path as outputs show it: relative to the catalog folder when inside it (portable), else absolute."""
    if path is None:
        return ""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _resolve(value: Any, folder: Path, root: Path, what: str) -> Path:
    """Resolve a catalog path against ``folder``; refuse URLs and anything that ends up outside ``root``."""
    if not isinstance(value, str) or not value.strip():
        raise _RowError(f"{what} is empty")
    text = value.strip()
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        raise _RowError(f"{what} {text!r} is a URL; batch reads local files only (download the asset first)")
    candidate = Path(text)
    resolved = (candidate if candidate.is_absolute() else folder / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise _RowError(
            f"{what} {text!r} resolves to {resolved}, outside the catalog folder {root}; catalog paths must stay "
            "inside it (pass --root to allow a wider folder)"
        )
    return resolved


def _entry(row: dict[str, Any], folder: Path, root: Path) -> CatalogEntry:
    raw_id = row.get("id")
    if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
        raise _RowError("id is empty")
    if not isinstance(raw_id, str | int):
        raise _RowError(f"id must be text, not {type(raw_id).__name__}")
    pair_id = str(raw_id).strip()
    mask = row.get("mask")
    return CatalogEntry(
        id=pair_id,
        t1=_resolve(row.get("t1"), folder, root, "t1"),
        t2=_resolve(row.get("t2"), folder, root, "t2"),
        mask=_resolve(mask, folder, root, "mask") if isinstance(mask, str) and mask.strip() else None,
    )


def _rows_to_items(rows: Iterable[tuple[str, dict[str, Any] | str]], folder: Path, root: Path) -> list[CatalogItem]:
    """Turn (where, row or error text) into items: bad rows and repeated ids become problems."""
    items: list[CatalogItem] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        index = len(items)
        if isinstance(row, str):
            items.append(CatalogItem(index=index, problem=CatalogProblem(where=where, error=row)))
            continue
        row_id = str(row.get("id")).strip() if row.get("id") not in (None, "") else None
        try:
            entry = _entry(row, folder, root)
            if entry.id in seen:
                raise _RowError(f"id {entry.id!r} repeats {seen[entry.id]}; ids must be unique")
        except _RowError as exc:
            problem = CatalogProblem(where=where, id=row_id, error=f"{where}: {exc}")
            items.append(CatalogItem(index=index, problem=problem))
            continue
        seen[entry.id] = where
        items.append(CatalogItem(index=index, entry=entry))
    return items


def _csv_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | str]]:
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in reader.fieldnames or []]
    missing = [c for c in ("id", "t1", "t2") if c not in fields]
    if missing:
        raise InputError(
            f"catalog {path} has no {', '.join(missing)} column{'s' if len(missing) > 1 else ''} "
            f"(its header is {fields or 'empty'}); a CSV catalog needs id, t1, t2 and optionally mask"
        )
    reader.fieldnames = fields
    for row in reader:
        where = f"{path.name} line {reader.line_num}"
        if None in row:
            yield where, f"{where}: {len(fields) + len(row[None])} values for {len(fields)} columns"
            continue
        if all(not (v or "").strip() for v in row.values()):
            continue
        yield where, {k: v for k, v in row.items() if k in ("id", "t1", "t2", "mask")}


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | str]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            where = f"{path.name} line {number}"
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield where, f"{where}: not JSON ({exc.msg} at column {exc.colno})"
                continue
            if not isinstance(row, dict):
                yield where, f"{where}: expected an object with id, t1, t2, got {type(row).__name__}"
                continue
            yield where, row


def _levir_rows(folder: Path) -> Iterator[tuple[str, dict[str, Any] | str]]:
    a_dir, b_dir, label_dir = folder / "A", folder / "B", folder / "label"
    if not a_dir.is_dir() or not b_dir.is_dir():
        hint = (
            " (LEVIR-MCI keeps them under images/<split>/; pass that split folder)"
            if (folder / "images").is_dir()
            else ""
        )
        raise InputError(f"catalog folder {folder} has no A/ and B/ subfolders{hint}")

    def images(directory: Path) -> dict[str, Path]:
        return {p.name: p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}

    a_files, b_files = images(a_dir), images(b_dir)
    labels = images(label_dir) if label_dir.is_dir() else {}
    for name in sorted(set(a_files) | set(b_files)):
        where = f"{folder.name}/{name}"
        if name not in b_files:
            yield where, f"{where}: A/{name} has no B/{name}"
            continue
        if name not in a_files:
            yield where, f"{where}: B/{name} has no A/{name}"
            continue
        row: dict[str, Any] = {"id": Path(name).stem, "t1": f"A/{name}", "t2": f"B/{name}"}
        if name in labels:
            row["mask"] = f"label/{name}"
        yield where, row


def _stac_asset_href(item: Any, keys: Iterable[str], role: str, explicit: bool) -> str | None:
    for key in keys:
        if key in item.assets:
            return str(item.assets[key].href)
    if explicit:
        raise _RowError(f"item {item.id} has no asset {', '.join(keys)} (it has {', '.join(sorted(item.assets))})")
    if role == "mask":
        return None
    candidates = [
        k
        for k, a in item.assets.items()
        if k not in STAC_MASK_ASSETS and ("data" in (a.roles or []) or (a.media_type or "").startswith("image/tiff"))
    ]
    if len(candidates) == 1:
        return str(item.assets[candidates[0]].href)
    raise _RowError(
        f"item {item.id}: cannot tell which asset is the image (assets {', '.join(sorted(item.assets))}); "
        "name it with --stac-asset"
    )


def _stac_rows(path: Path, asset: str | None) -> Iterator[tuple[str, dict[str, Any] | str]]:
    try:
        import pystac
    except ImportError as exc:  # an optional extra
        raise InputError(f"reading the STAC catalog {path} needs pystac: pip install 'changeagent[batch]'") from exc
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        collection = pystac.ItemCollection.from_dict(data, preserve_dict=False)
    except (json.JSONDecodeError, pystac.STACError, pystac.STACTypeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"catalog {path} is not a STAC ItemCollection: {exc}") from exc
    groups: dict[str, list[Any]] = {}
    for item in collection.items:
        groups.setdefault(_stac_place(item), []).append(item)
    for place, items in groups.items():
        where = f"{path.name} place {place}"
        if len(items) != 2:
            ids = ", ".join(i.id for i in items)
            yield (
                where,
                (
                    f"{where}: {len(items)} item(s) ({ids}); a pair needs exactly two items of one place "
                    f"(set the {STAC_PLACE_PROPERTY} property to group them)"
                ),
            )
            continue
        try:
            first, second = sorted(items, key=_stac_time)
            if _stac_time(first) == _stac_time(second):
                raise _RowError(f"items {first.id} and {second.id} have the same date; cannot tell before from after")
            keys = (asset,) if asset else STAC_IMAGE_ASSETS
            row = {
                "id": f"{first.id}__{second.id}",
                "t1": _stac_asset_href(first, keys, "image", asset is not None),
                "t2": _stac_asset_href(second, keys, "image", asset is not None),
                "mask": _stac_asset_href(second, STAC_MASK_ASSETS, "mask", False),
            }
        except _RowError as exc:
            yield where, f"{where}: {exc}"
            continue
        yield where, row


def _stac_place(item: Any) -> str:
    """Explicit place property, else the STAC grid code, else the footprint's bbox (6 decimals)."""
    props = item.properties
    if props.get(STAC_PLACE_PROPERTY):
        return str(props[STAC_PLACE_PROPERTY])
    if props.get("grid:code"):
        return str(props["grid:code"])
    if item.bbox:
        return "bbox(" + ",".join(f"{v:.6f}" for v in item.bbox) + ")"
    return f"item {item.id}"


def _stac_time(item: Any) -> str:
    moment = item.datetime or item.common_metadata.start_datetime
    return moment.isoformat() if moment else ""


def read_catalog(path: str | Path, *, root: str | Path | None = None, stac_asset: str | None = None) -> Catalog:
    """Read a catalog of pairs: CSV (``.csv``), JSONL (``.jsonl``/``.ndjson``), a LEVIR folder, or STAC (``.json``).

    STAC pairs: items are grouped by place (the ``changeagent:place`` property when present, else the STAC
    grid extension's ``grid:code``, else the item's bbox to 6 decimals); each place must have exactly two
    items, the earlier is t1 and the later t2; the image is the asset named ``--stac-asset`` (by default
    ``image``, ``visual``, ``data`` or ``rgb``, or the one data/GeoTIFF asset), the pair's change mask is the
    later item's ``mask``/``label`` asset when there is one, and the pair id is ``<t1 id>__<t2 id>``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"catalog not found: {path}")
    folder = (path if path.is_dir() else path.parent).resolve()
    allowed = Path(root).resolve() if root is not None else folder
    if not folder.is_relative_to(allowed):
        raise InputError(f"catalog {path} lies outside the allowed root {allowed}")
    rows: Iterable[tuple[str, dict[str, Any] | str]]
    suffix = path.suffix.lower()
    if path.is_dir():
        kind: CatalogKind = "levir"
        rows = list(_levir_rows(path))
    elif suffix == ".csv":
        kind, rows = "csv", list(_csv_rows(path))
    elif suffix in (".jsonl", ".ndjson"):
        kind, rows = "jsonl", list(_jsonl_rows(path))
    elif suffix == ".json":
        kind, rows = "stac", list(_stac_rows(path, stac_asset))
    else:
        raise InputError(
            f"catalog {path}: unknown kind {suffix or '(no suffix)'}; use .csv, .jsonl, a STAC ItemCollection "
            ".json, or a folder with A/ and B/"
        )
    items = _rows_to_items(rows, folder, allowed)
    if not items:
        raise InputError(f"catalog {path} lists no pairs")
    return Catalog(path=path.resolve(), kind=kind, folder=folder, root=allowed, items=items)


def read_questions(path: str | Path) -> list[str]:
    """Questions from a text file (one per line, blank lines and ``#`` comment lines skipped) or a YAML list."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"questions file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"questions file {path} is not valid YAML: {exc}") from exc
        if isinstance(data, dict) and "questions" in data:
            data = data["questions"]
        if not isinstance(data, list) or not all(isinstance(q, str) for q in data):
            raise InputError(f"questions file {path} must hold a YAML list of questions (strings)")
        questions = [q.strip() for q in data if q.strip()]
    else:
        questions = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not questions:
        raise InputError(f"questions file {path} holds no questions")
    for number, question in enumerate(questions, start=1):
        if len(question) > MAX_QUESTION_CHARS:
            raise InputError(
                f"questions file {path}: question {number} has {len(question)} characters; the limit is "
                f"{MAX_QUESTION_CHARS}"
            )
    return questions


# ------------------------------------------------------------------------------------------ the pair work


class BatchConfig(BaseModel):
    """Everything a worker needs to process a pair: shipped as JSON to processes and Ray workers."""

    questions: list[str]
    agent: AgentSettings
    mask_kind: MaskKind = "auto"
    mask_category: Literal["road", "building"] | None = None
    catalog_folder: Path


class PairJob(BaseModel):
    index: int
    entry: CatalogEntry


class PairOutcome(BaseModel):
    """What one pair produced: its answer records (JSON lines) and part, or its error record."""

    index: int
    key: str
    records: list[str] = Field(default_factory=list)
    part: str | None = None
    error: str | None = None


class Prepared(BaseModel):
    """A pair decoded, masked and verified: the CPU stage's output (picklable)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    job: PairJob
    pair: ImagePair
    mask: ChangeMask
    verification: Verification
    part: str
    seconds: float


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _error_record(
    index: int, key: str, stage: str, error: str, kind: str, entry: CatalogEntry | None, base: Path
) -> str:
    record = {"pair": key, "pair_index": index, "stage": stage, "error": error, "type": kind}
    if entry is not None:
        record |= {"t1": _display(entry.t1, base), "t2": _display(entry.t2, base)}
    return _json(record)


def _failure(job: PairJob, stage: str, exc: BaseException, config: BatchConfig) -> PairOutcome:
    if isinstance(exc, InputError):
        message = str(exc)
    else:  # a bug, not bad input: keep going, but say so and where
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
        message = f"internal error{at}: {type(exc).__name__}: {exc}"
    return PairOutcome(
        index=job.index,
        key=job.entry.id,
        error=_error_record(
            job.index, job.entry.id, stage, message, type(exc).__name__, job.entry, config.catalog_folder
        ),
    )


def mask_provider(entry: CatalogEntry, config: BatchConfig) -> MaskProvider:
    """The row's mask when it has one, else the classical detector: built exactly as ``Agent.ask`` builds it,
    so the agent recognises the verification handed to it and does not redo it."""
    if entry.mask is not None:
        return UserMaskProvider(str(entry.mask), kind=config.mask_kind, binary_category=config.mask_category)
    return ClassicalMaskProvider(config.agent.classical)


def _part(job: PairJob, pair: ImagePair, mask: ChangeMask, verification: Verification, config: BatchConfig) -> str:
    """The pair's summary row and GeoJSON features (cells and objects), rebuilt into the run's outputs at the end."""
    collection = changes_geojson(verification, mask, pair.georef, pair_name=job.entry.id, objects=True, crs="wgs84")
    summary = verification.summary
    categorical = verification.source.categorical
    row = {
        "pair": job.entry.id,
        "status": "ok",
        "t1": _display(job.entry.t1, config.catalog_folder),
        "t2": _display(job.entry.t2, config.catalog_folder),
        "changed": "yes" if summary.changed else "no",
        "road": summary.counts["road"] if categorical else "",
        "building": summary.counts["building"] if categorical else "",
        "changed_regions": summary.changed_regions,
        "changed_cells": " ".join(summary.cells),
        "changed_fraction": f"{summary.changed_fraction:.6f}",
        "mask_provider": verification.source.provider,
        "mask_confidence": f"{verification.source.confidence:.3f}",
        "questions": len(config.questions),
        "error": "",
    }
    return _json({"key": job.entry.id, "georeferenced": pair.georef is not None, "row": row, **collection})


def prepare_pair(job: PairJob, config: BatchConfig) -> Prepared | PairOutcome:
    """Decode the pair once, make and verify its mask once (CPU work); a failure becomes the pair's error."""
    started = time.perf_counter()
    try:
        pair = load_pair(job.entry.t1, job.entry.t2)
    except Exception as exc:
        return _failure(job, "load", exc, config)
    try:
        mask = mask_provider(job.entry, config).provide(pair)
        verification = verify(mask, config.agent.rules)
        part = _part(job, pair, mask, verification, config)
    except Exception as exc:
        return _failure(job, "mask", exc, config)
    seconds = time.perf_counter() - started
    return Prepared(job=job, pair=pair, mask=mask, verification=verification, part=part, seconds=seconds)


def make_agent(config: BatchConfig) -> Agent:
    """One agent per worker, shared by all its pairs (the model, when any, is loaded once per worker)."""
    from agent.api import Agent

    return Agent(config.agent.model_copy(update={"checkpoint_db": None}))


def converse(prepared: Prepared, agent: Agent, config: BatchConfig) -> PairOutcome:
    """Ask every question about the pair in order, in one thread named after the pair."""
    job = prepared.job
    entry = job.entry
    thread = entry.id
    agent.store.seed(prepared.pair, mask_provider(entry, config), prepared.mask, prepared.verification)
    records = []
    try:
        for number, question in enumerate(config.questions):
            started = time.perf_counter()
            answer = agent.ask(
                prepared.pair,
                question,
                thread_id=thread,
                mask=entry.mask if number == 0 else None,
                mask_kind=config.mask_kind,
                mask_category=config.mask_category,
            )
            timing = {"answer_s": round(time.perf_counter() - started, 4)}
            if number == 0:
                timing["prepare_s"] = round(prepared.seconds, 4)
            record = {
                "pair": entry.id,
                "pair_index": job.index,
                "question_index": number,
                "question": question,
                "answer": answer.model_dump(mode="json"),
                "timing": timing,
            }
            records.append(_json(record))
    except Exception as exc:
        return _failure(job, "answer", exc, config)
    finally:
        agent.end_thread(thread)
    return PairOutcome(index=job.index, key=entry.id, records=records, part=prepared.part)


def process_pair(job: PairJob, agent: Agent, config: BatchConfig) -> PairOutcome:
    """Both stages in one process (the local engine)."""
    prepared = prepare_pair(job, config)
    if isinstance(prepared, PairOutcome):
        return prepared
    return converse(prepared, agent, config)


# ------------------------------------------------------------------------------------------ output folder


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str, *, sync_dir: bool = True) -> None:
    """Write a whole file or nothing: temporary file beside it, fsync, rename over."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(temporary, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    if sync_dir:
        _fsync_dir(path.parent)


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
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(path, "rb") as source, open(temporary, "wb") as target:
        for offset, length in spans:
            source.seek(offset)
            target.write(source.read(length))
        target.flush()
        os.fsync(target.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)


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
        self.temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
        self.handle = open(self.temporary, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish()
        self.count = 0
        self.handle.write('{"type":"FeatureCollection",')
        for key, value in extra.items():
            self.handle.write(f"{json.dumps(key)}:{_json(value)},")
        self.handle.write('"features":[')

    def add(self, feature: dict[str, Any]) -> None:
        self.handle.write(("," if self.count else "") + "\n" + _json(feature))
        self.count += 1

    def finish(self, keep_empty: bool) -> bool:
        """Close and move into place; an empty optional layer is removed instead. True when written."""
        self.handle.write("\n]}\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        if self.count or keep_empty:
            os.replace(self.temporary, self.path)
            return True
        self.temporary.unlink()
        self.path.unlink(missing_ok=True)
        return False


def finalize(out: Path, catalog: Catalog) -> dict[str, str]:
    """Order the JSONL outputs by catalog and rebuild ``summary.csv`` and the GeoJSON layers from the parts.

    One pass over the catalog reads each pair's part once; georeferenced pairs go to ``changes.geojson``
    (EPSG:4326), pairs without a georeference to ``changes_pixel.geojson`` (pixel coordinates cannot share a
    map layer with longitudes and latitudes).
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
                    {
                        "pair": item.key if entry or not (item.problem and item.problem.id) else item.problem.id,
                        "status": f"error ({errors[item.key]['stage']})",
                        "t1": _display(entry.t1, catalog.folder) if entry else "",
                        "t2": _display(entry.t2, catalog.folder) if entry else "",
                        "error": errors[item.key]["error"],
                    }
                )
                continue
            path = part_path(out, item.key)
            if not path.exists():
                continue
            part = json.loads(path.read_text(encoding="utf-8"))
            writer.writerow(part["row"])
            layer = mapped if part["georeferenced"] else pixel
            for feature in part["features"]:
                layer.add(feature)
    finally:
        wrote_mapped = mapped.finish(keep_empty=True)
        wrote_pixel = pixel.finish(keep_empty=False)
    write_atomic(out / SUMMARY, buffer.getvalue())
    written = {"answers": str(out / ANSWERS), "summary": str(out / SUMMARY)}
    if wrote_mapped:
        written["changes"] = str(out / CHANGES)
    if wrote_pixel:
        written["changes_pixel"] = str(out / CHANGES_PIXEL)
    if errors:
        written["errors"] = str(out / ERRORS)
    return written


# ------------------------------------------------------------------------------------------------ manifest


def _settings_record(config: BatchConfig) -> dict[str, Any]:
    """The settings that decide the answers (no secrets, no output paths)."""
    agent = config.agent.model_dump(mode="json", exclude={"artefact_dir", "checkpoint_db"})
    agent["model"].pop("token", None)
    return {"agent": agent, "mask_kind": config.mask_kind, "mask_category": config.mask_category}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat |= _flatten(inner, f"{prefix}{key}.")
        return flat
    return {prefix.rstrip("."): value}


def build_manifest(catalog: Catalog, questions_path: Path, config: BatchConfig) -> dict[str, Any]:
    items = [[item.key, item.digest(catalog.folder)] for item in catalog.items]
    return {
        "format": FORMAT,
        "catalog": {
            "path": str(catalog.path),
            "kind": catalog.kind,
            "root": str(catalog.root),
            "items": items,
            "sha256": hashlib.sha256(_json(items).encode()).hexdigest(),
        },
        "questions": {
            "path": str(Path(questions_path).resolve()),
            "items": config.questions,
            "sha256": hashlib.sha256(_json(config.questions).encode()).hexdigest(),
        },
        "settings": _settings_record(config),
    }


def _names(keys: Iterable[str], limit: int = 3) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def compare_manifest(old: dict[str, Any], new: dict[str, Any], out: Path) -> None:
    """Refuse to mix two different jobs in one folder; name what changed."""
    if old.get("format") != FORMAT:
        raise InputError(f"{out / MANIFEST} is not a {FORMAT} manifest; use --force or another --out")
    problems = []
    if old["catalog"]["sha256"] != new["catalog"]["sha256"]:
        before = dict(map(tuple, old["catalog"]["items"]))
        after = dict(map(tuple, new["catalog"]["items"]))
        added = [k for k in after if k not in before]
        removed = [k for k in before if k not in after]
        changed = [k for k in after if k in before and before[k] != after[k]]
        details = []
        if added:
            details.append(f"{len(added)} pair(s) added ({_names(added)})")
        if removed:
            details.append(f"{len(removed)} removed ({_names(removed)})")
        if changed:
            details.append(f"{len(changed)} with other paths ({_names(changed)})")
        if not details:
            details.append("the same pairs in another order")
        problems.append(f"the catalog {new['catalog']['path']} changed: {'; '.join(details)}")
    if old["questions"]["sha256"] != new["questions"]["sha256"]:
        before, after = old["questions"]["items"], new["questions"]["items"]
        diffs = [
            f"question {i + 1} was {before[i]!r}, now {after[i]!r}"
            for i in range(min(len(before), len(after)))
            if before[i] != after[i]
        ]
        if len(before) != len(after):
            diffs.append(f"{len(before)} question(s) before, {len(after)} now")
        problems.append(f"the questions in {new['questions']['path']} changed: {'; '.join(diffs[:3])}")
    old_settings, new_settings = _flatten(old["settings"]), _flatten(new["settings"])
    moved = [
        f"{k}: {old_settings.get(k)!r} → {new_settings.get(k)!r}"
        for k in sorted(set(old_settings) | set(new_settings))
        if old_settings.get(k) != new_settings.get(k)
    ]
    if moved:
        problems.append(f"the settings changed ({'; '.join(moved[:4])})")
    if problems:
        raise InputError(
            f"{out} holds a run of a different job: {'. '.join(problems)}. Rerun with --force to start over, "
            "or choose another --out"
        )


# ---------------------------------------------------------------------------------------------- the runner


class BatchOptions(BaseModel):
    """One batch run, as the CLI or Python states it."""

    catalog: Path
    questions: Path
    out: Path
    engine: Engine = "local"
    workers: int | None = Field(None, ge=1, description="Local: processes (1 = this one). Ray: pool size.")
    force: bool = Field(False, description="Delete this run's earlier outputs in ``out`` and start over.")
    retry_errors: bool = Field(False, description="Run again the pairs that failed in an earlier run.")
    root: Path | None = Field(None, description="Allowed folder for catalog paths (default: the catalog's).")
    stac_asset: str | None = None
    mask_kind: MaskKind = "auto"
    mask_category: Literal["road", "building"] | None = None
    progress: bool = Field(True, description="Show a progress bar when stderr is a terminal.")
    agent: AgentSettings = Field(default_factory=AgentSettings)


class BatchReport(BaseModel):
    out: Path
    engine: Engine
    workers: int
    pairs: int = Field(description="Items in the catalog (pairs and bad rows).")
    done_before: int = Field(description="Pairs finished (answered or failed) by an earlier run.")
    answered: int = Field(description="Pairs answered by this run.")
    failed: int = Field(description="Pairs that failed in this run.")
    repaired: int = Field(0, description="Torn or partial records of an earlier run that were dropped and redone.")
    seconds: float
    pairs_per_s: float
    outputs: dict[str, str]


def _clear(out: Path) -> None:
    """``--force``: remove only what a batch run writes."""
    for name in (ANSWERS, ERRORS, SUMMARY, CHANGES, CHANGES_PIXEL, MANIFEST):
        (out / name).unlink(missing_ok=True)
    for name in (PARTS, ARTEFACTS):
        shutil.rmtree(out / name, ignore_errors=True)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One run per output folder; the lock dies with the process, so a killed run never blocks the next."""
    with open(out / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise InputError(f"another batch run is writing to {out}; wait for it or choose another --out") from exc
        yield


class _Progress:
    """tqdm to stderr when it is a terminal and wanted; silent otherwise (``--json``, logs, CI)."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(
                total=total, initial=initial, unit="pair", desc="batch", dynamic_ncols=True, file=sys.stderr
            )

    def update(self, failed: int) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if failed:
                self.bar.set_postfix(errors=failed, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_batch(options: BatchOptions, *, on_outcome: Callable[[PairOutcome], None] | None = None) -> BatchReport:
    """Run (or resume) a batch job; see the module docstring for the guarantees."""
    started = time.perf_counter()
    catalog = read_catalog(options.catalog, root=options.root, stac_asset=options.stac_asset)
    questions = read_questions(options.questions)
    out = options.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    agent_settings = options.agent.model_copy(update={"artefact_dir": out / ARTEFACTS, "checkpoint_db": None})
    config = BatchConfig(
        questions=questions,
        agent=agent_settings,
        mask_kind=options.mask_kind,
        mask_category=options.mask_category,
        catalog_folder=catalog.folder,
    )
    manifest = build_manifest(catalog, options.questions, config)
    with _locked(out):
        if options.force:
            _clear(out)
        manifest_path = out / MANIFEST
        if manifest_path.exists():
            compare_manifest(json.loads(manifest_path.read_text(encoding="utf-8")), manifest, out)
        else:
            leftovers = [n for n in (ANSWERS, ERRORS) if (out / n).exists()]
            if leftovers:
                raise InputError(
                    f"{out} holds {', '.join(leftovers)} but no {MANIFEST}, so it cannot be resumed safely; "
                    "rerun with --force to start over, or choose another --out"
                )
            write_atomic(manifest_path, json.dumps({**manifest, "created": datetime.now(UTC).isoformat()}, indent=1))
        (out / PARTS).mkdir(exist_ok=True)
        state = recover(out, len(questions), retry_errors=options.retry_errors)
        done = state.answered | state.failed
        pending = [item for item in catalog.items if item.key not in done]
        done_before = len(catalog.items) - len(pending)
        counts = {"answered": 0, "failed": 0}
        progress = _Progress(len(catalog.items), done_before, options.progress)

        def commit(outcome: PairOutcome) -> None:
            if outcome.error is not None:
                append_durably(out / ERRORS, outcome.error + "\n")
                counts["failed"] += 1
            else:
                assert outcome.part is not None
                write_atomic(part_path(out, outcome.key), outcome.part, sync_dir=False)
                append_durably(out / ANSWERS, "".join(line + "\n" for line in outcome.records))
                counts["answered"] += 1
            progress.update(counts["failed"])
            if on_outcome is not None:
                on_outcome(outcome)

        try:
            for item in pending:
                if item.problem is not None:
                    record = {"pair": item.key, "pair_index": item.index, "stage": "catalog"}
                    record |= {"error": item.problem.error, "type": "CatalogError", "id": item.problem.id}
                    commit(PairOutcome(index=item.index, key=item.key, error=_json(record)))
            jobs = [PairJob(index=item.index, entry=item.entry) for item in pending if item.entry is not None]
            if options.engine == "ray":
                workers = run_ray(jobs, config, options.workers, commit)
            else:
                workers = options.workers or 1
                _run_local(jobs, config, workers, commit)
        finally:
            progress.close()
        outputs = finalize(out, catalog)
    seconds = time.perf_counter() - started
    processed = counts["answered"] + counts["failed"]
    return BatchReport(
        out=out,
        engine=options.engine,
        workers=workers,
        pairs=len(catalog.items),
        done_before=done_before,
        answered=counts["answered"],
        failed=counts["failed"],
        repaired=state.dropped_records + state.dropped_errors,
        seconds=round(seconds, 3),
        pairs_per_s=round(processed / seconds, 3) if seconds > 0 else 0.0,
        outputs=outputs,
    )


# ----------------------------------------------------------------------------------------- local engine

_WORKER: dict[str, Any] = {}


def _worker_init(config_json: str, threads: int) -> None:
    """Each worker process gets its share of the cores: N processes × N OpenMP/OpenCV threads each would
    oversubscribe the machine, and spinning OpenMP threads then slow everything down many times over."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import cv2

    cv2.setNumThreads(threads)
    config = BatchConfig.model_validate_json(config_json)
    _WORKER["config"] = config
    _WORKER["agent"] = make_agent(config)


def _worker_process(job_json: str) -> PairOutcome:
    return process_pair(PairJob.model_validate_json(job_json), _WORKER["agent"], _WORKER["config"])


def _run_local(jobs: list[PairJob], config: BatchConfig, workers: int, commit: Callable[[PairOutcome], None]) -> None:
    """One process (workers=1) or a pool of processes, each with its own agent; this process writes."""
    if not jobs:
        return
    if workers == 1:
        agent = make_agent(config)
        try:
            for job in jobs:
                commit(process_pair(job, agent, config))
        finally:
            agent.close()
        return
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # fork after torch/langgraph threads is unsafe
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_worker_init,
        initargs=(config.model_dump_json(), max(1, (os.cpu_count() or 1) // workers)),
    ) as pool:
        queue = iter(jobs)
        running: set[concurrent.futures.Future[PairOutcome]] = set()
        for job in queue:
            running.add(pool.submit(_worker_process, job.model_dump_json()))
            if len(running) >= 2 * workers:
                break
        while running:
            finished, running = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                commit(future.result())
                following = next(queue, None)
                if following is not None:
                    running.add(pool.submit(_worker_process, following.model_dump_json()))


# ------------------------------------------------------------------------------------------- Ray engine


def _ray_prepare(row: dict[str, Any], config_json: str) -> dict[str, Any]:
    """Ray task (CPU): decode, mask and verify one pair; the result travels pickled to the model actors."""
    config = BatchConfig.model_validate_json(config_json)
    prepared = prepare_pair(PairJob.model_validate_json(row["job"]), config)
    return {"payload": pickle.dumps(prepared, protocol=5)}


class _RayConversation:
    """Ray actor: holds one agent (and its model, on its GPU when there is one) and runs the conversations."""

    def __init__(self, config_json: str) -> None:
        self.config = BatchConfig.model_validate_json(config_json)
        self.agent = make_agent(self.config)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        prepared = pickle.loads(row["payload"])
        outcome = prepared if isinstance(prepared, PairOutcome) else converse(prepared, self.agent, self.config)
        return {"outcome": outcome.model_dump_json()}


def run_ray(
    jobs: list[PairJob], config: BatchConfig, workers: int | None, commit: Callable[[PairOutcome], None]
) -> int:
    """Run the pairs on Ray Data: CPU tasks prepare pairs, an actor pool holds the agent(s); this process writes.

    A local Ray is started on demand (and stopped after), or the cluster at ``RAY_ADDRESS`` is joined; its
    workers must see the catalog's files and this package. With an in-process DeltaVLM and GPUs in the
    cluster, the pool holds one actor per GPU; otherwise ``workers`` actors (default: the cluster's CPUs).
    Returns the number of workers used.
    """
    try:
        import ray
        import ray.data
        from ray.data import ActorPoolStrategy, TaskPoolStrategy
    except ImportError as exc:
        raise InputError("--engine ray needs Ray Data: pip install 'changeagent[batch]'") from exc
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=os.environ.get("RAY_ADDRESS") or None,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    try:
        resources = ray.cluster_resources()
        workers = workers or max(1, int(resources.get("CPU", 1)))
        gpus = int(resources.get("GPU", 0))
        if config.agent.model.backend == "in-process" and gpus:
            pool, actor_cpus, actor_gpus = gpus, 1.0, 1.0
        else:
            # the conversation is light next to decoding and masking: do not let the actors starve the tasks
            pool, actor_cpus, actor_gpus = workers, 0.001, 0.0
        if not jobs:
            return workers
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        config_json = config.model_dump_json()
        dataset = ray.data.from_items(
            [{"job": job.model_dump_json()} for job in jobs], override_num_blocks=min(len(jobs), 4096)
        )
        dataset = dataset.map(
            _ray_prepare, fn_kwargs={"config_json": config_json}, compute=TaskPoolStrategy(size=workers), num_cpus=1
        )
        dataset = dataset.map(
            _RayConversation,
            fn_constructor_kwargs={"config_json": config_json},
            compute=ActorPoolStrategy(size=pool),
            num_cpus=actor_cpus,
            num_gpus=actor_gpus,
        )
        for row in dataset.iter_rows():
            commit(PairOutcome.model_validate_json(row["outcome"]))
    finally:
        if started_here:
            ray.shutdown()
    return workers
