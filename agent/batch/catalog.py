"""Catalogs of pairs (CSV/JSONL, a LEVIR folder, a STAC ItemCollection) and question files.

Relative paths resolve against the catalog's folder and nothing may resolve outside the allowed root, so a catalog
from elsewhere cannot make the run read arbitrary files. A bad row does not stop the run: it becomes an error record.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.batch.catalog_rows import (
    COLUMNS,
    MAX_LINE_BYTES,
    REQUIRED,
    RowShapeError,
    check_header,
    check_id,
    check_json_row,
    parse_json_row,
)
from agent.reading import MAX_QUESTION_CHARS
from tools.georef import parse_bounds, parse_crs
from tools.gsd import check_gsd
from tools.naming import distinct_names
from tools.raster import InputError

FORMAT = "changeagent-batch/1"
CatalogKind = Literal["csv", "jsonl", "levir", "stac"]
Engine = Literal["local", "ray"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
STAC_IMAGE_ASSETS = ("image", "visual", "data", "rgb")
STAC_MASK_ASSETS = ("mask", "label", "change_mask")
STAC_PLACE_PROPERTY = "changeagent:place"
"""An item property naming its place explicitly; items sharing a value form a pair."""


class CatalogEntry(BaseModel):
    """One pair of the catalog, its paths resolved (absolute, inside the allowed root)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    t1: Path
    t2: Path
    mask: Path | None = None
    bounds: str | None = Field(None, description="W,S,E,N placing a plain pair on the map (with crs).")
    crs: str | None = Field(None, description="CRS of bounds, or of world files that name none.")
    gsd: float | None = Field(
        None, gt=0, description="Metres per pixel of a plain pair (column gsd): the mask's scale, confidence, areas."
    )
    aoi: Path | None = Field(None, description="Areas of interest for the pair's questions (column aoi).")


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
            payload = [display_path(self.entry.t1, base), display_path(self.entry.t2, base)]
            payload.append(display_path(self.entry.mask, base) if self.entry.mask else "")
            if self.entry.bounds or self.entry.crs:
                payload += [self.entry.bounds or "", self.entry.crs or ""]
            if self.entry.gsd is not None:
                payload.append(str(self.entry.gsd))
            if self.entry.aoi is not None:
                payload.append(display_path(self.entry.aoi, base))
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

    def with_default_gsd(self, gsd_m: float | None) -> Catalog:
        """The catalog with ``gsd_m`` (``--gsd``) as the pixel size of every pair whose row names none."""
        if gsd_m is None:
            return self
        items = [
            item.model_copy(update={"entry": item.entry.model_copy(update={"gsd": gsd_m})})
            if item.entry is not None and item.entry.gsd is None
            else item
            for item in self.items
        ]
        return self.model_copy(update={"items": items})


class _RowError(Exception):
    """A problem with one catalog row (internal; becomes a CatalogProblem)."""


def display_path(path: Path | None, base: Path) -> str:
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
    try:
        resolved = (candidate if candidate.is_absolute() else folder / candidate).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long: this row's problem only
        raise _RowError(f"{what} {text!r} cannot be resolved: {exc}") from None
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
    check_id(pair_id)
    mask, aoi = row.get("mask"), row.get("aoi")
    place = {  # JSONL may give bounds as a list of four numbers
        key: ",".join(map(str, row[key])) if isinstance(row[key], list) else str(row[key]).strip()
        for key in ("bounds", "crs")
        if row.get(key) not in (None, "")
    }
    try:
        if "bounds" in place:
            parse_bounds(place["bounds"])
        if "crs" in place:
            parse_crs(place["crs"])
    except InputError as exc:
        raise _RowError(str(exc)) from exc
    return CatalogEntry(
        **place,
        id=pair_id,
        t1=_resolve(row.get("t1"), folder, root, "t1"),
        t2=_resolve(row.get("t2"), folder, root, "t2"),
        mask=_resolve(mask, folder, root, "mask") if isinstance(mask, str) and mask.strip() else None,
        gsd=_gsd(row.get("gsd")),
        aoi=_resolve(aoi, folder, root, "aoi") if isinstance(aoi, str) and aoi.strip() else None,
    )


def _gsd(value: Any) -> float | None:
    """The optional ground sampling distance column: empty, or a positive number of metres per pixel."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        gsd = float(value)
    except (TypeError, ValueError):
        raise _RowError(f"gsd {value!r} is not a number of metres per pixel") from None
    try:
        return check_gsd(gsd, "gsd")
    except InputError as exc:
        raise _RowError(str(exc)) from None


def _rows_to_items(rows: Iterable[tuple[str, dict[str, Any] | str]], folder: Path, root: Path) -> list[CatalogItem]:
    """Turn (where, row or error text) into items: bad rows and repeated ids become problems."""
    items: list[CatalogItem] = []
    seen: dict[str, str] = {}
    rows = _named(list(rows))
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
        except (_RowError, ValueError, OSError, RuntimeError) as exc:  # one bad row fails that row, never the run
            problem = CatalogProblem(where=where, id=_printable_id(row_id), error=f"{where}: {exc}")
            items.append(CatalogItem(index=index, problem=problem))
            continue
        seen[entry.id] = where
        items.append(CatalogItem(index=index, entry=entry))
    return items


def _named(rows: list[tuple[str, dict[str, Any] | str]]) -> list[tuple[str, dict[str, Any] | str]]:
    """Rows without an id column take their scene's name (tools.naming), unique within the catalog: two
    ``city/t1.tif`` pairs from different folders become ``north_city`` and ``south_city``."""
    unnamed = [i for i, (_, row) in enumerate(rows) if isinstance(row, dict) and "id" not in row]
    t1s = [str(rows[i][1].get("t1") or "") for i in unnamed]  # type: ignore[union-attr]
    named = list(rows)
    for i, name in zip(unnamed, distinct_names(t1s), strict=True):
        where, row = rows[i]
        named[i] = (where, {**row, "id": name})  # type: ignore[dict-item]
    return named


def _printable_id(row_id: str | None) -> str | None:
    """The id as a problem record may carry it: single-line, so a bad id cannot split the errors file."""
    if row_id is None:
        return None
    try:
        check_id(row_id)
    except RowShapeError:
        return ascii(row_id)[1:-1][:200]
    return row_id


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise InputError(f"{what} {path} is not UTF-8 text (line {line}: {exc.reason})") from exc
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read: {exc}") from exc


def _csv_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | str]]:
    """One row per physical line: a quoted value may hold commas but not a line break, so an unterminated quote
    is an error on its own line instead of swallowing the rows after it."""
    # Lines end at \n (or \r\n) only: str.splitlines would also break at U+2028, U+0085 or a form feed inside a
    # value and turn one row into several.
    lines = [line.removesuffix("\r") for line in _read_text(path, "catalog").split("\n")]
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise InputError(f"catalog {path} is empty; a CSV catalog needs a header id, t1, t2 and optionally mask")
    header_number, header_line = numbered[0]
    try:
        fields = [f.strip() for f in _split_csv_line(header_line)]
    except csv.Error as exc:
        raise InputError(f"catalog {path} line {header_number}: the header is not CSV ({exc})") from exc
    missing = [c for c in REQUIRED if c not in fields]
    if missing:
        raise InputError(
            f"catalog {path} has no {', '.join(missing)} column{'s' if len(missing) > 1 else ''} "
            f"(its header is {fields or 'empty'}); a CSV catalog needs {', '.join(REQUIRED)} and optionally "
            f"{', '.join(c for c in COLUMNS if c not in REQUIRED)}"
        )
    try:
        check_header(fields)
    except RowShapeError as exc:
        raise InputError(f"catalog {path}: {exc}") from None
    for number, line in numbered[1:]:
        where = f"{path.name} line {number}"
        if len(line.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES:
            yield where, f"{where}: longer than {MAX_LINE_BYTES} bytes; a row is a few paths"
            continue
        try:
            values = _split_csv_line(line)
        except csv.Error as exc:
            yield where, f"{where}: not a CSV row ({exc}); a quoted value must end on its own line"
            continue
        if len(values) > len(fields):
            yield where, f"{where}: {len(values)} values for {len(fields)} columns"
            continue
        row = dict(zip(fields, values + [""] * (len(fields) - len(values)), strict=True))
        if all(not (v or "").strip() for v in row.values()):
            continue
        yield where, row


def _split_csv_line(line: str) -> list[str]:
    """One CSV record from one line, strictly: an unterminated quote or text after a closing quote is an error."""
    reader = csv.reader([line], strict=True)
    values = next(reader, [])
    if line.count('"') % 2:  # the csv module accepts an unterminated quote at the end of its input
        raise csv.Error("unterminated quoted value")
    return values


def _bounded_lines(handle: Any) -> Iterator[bytes | None]:
    """Each line of a binary file, or None for a line longer than MAX_LINE_BYTES (read past, never held whole)."""
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = handle.readline(MAX_LINE_BYTES)
            yield None
            continue
        yield raw


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | str]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(_bounded_lines(handle), start=1):
            where = f"{path.name} line {number}"
            if raw is None:
                yield where, f"{where}: longer than {MAX_LINE_BYTES} bytes; a row is a few paths"
                continue
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield where, f"{where}: not UTF-8 text (byte {exc.start + 1}: {exc.reason})"
                continue
            if not line.strip():
                continue
            try:
                row = parse_json_row(line)
                if isinstance(row, dict):
                    check_json_row(row)
            except RowShapeError as exc:
                yield where, f"{where}: {exc}"
                continue
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
        data = json.loads(_read_text(path, "catalog"))
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
    text = _read_text(path, "questions file")
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
