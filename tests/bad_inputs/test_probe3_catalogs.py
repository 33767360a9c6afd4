"""Issue 26, catalogs: a repeated or unknown column is an error naming it (BAD 5: ``id,t1,t2,t2`` used to take the
last ``t2`` and answer a 30 %-changed pair "no change"); wrong JSON types name the line and field; deep or huge
lines, line-breaking ids and symlink loops fail their own row and never the run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent.batch.catalog import read_catalog
from agent.batch.runner import BatchOptions, run_batch
from tools.raster import InputError


def _files(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")


def test_a_repeated_csv_column_is_an_error_naming_it(tmp_path):
    _files(tmp_path, "a1.png", "a2.png")
    (tmp_path / "pairs.csv").write_text("id,t1,t2,t2\np,a1.png,a2.png,a1.png\n")
    with pytest.raises(InputError, match=r"pairs.csv: its header repeats the column t2"):
        read_catalog(tmp_path / "pairs.csv")


def test_an_unknown_csv_column_is_an_error_naming_it(tmp_path):
    _files(tmp_path, "a1.png", "a2.png")
    (tmp_path / "pairs.csv").write_text("id,t1,t2,msk\np,a1.png,a2.png,m.png\n")
    with pytest.raises(InputError, match=r"unknown column 'msk'; the known columns are id, t1, t2, mask"):
        read_catalog(tmp_path / "pairs.csv")


def test_jsonl_wrong_types_repeated_and_unknown_fields_name_the_line_and_field(tmp_path):
    _files(tmp_path, "a1.png", "a2.png", "m.png")
    lines = [
        '{"id": "ok", "t1": "a1.png", "t2": "a2.png"}',
        '{"id": "n", "t1": 123, "t2": "a2.png"}',
        '{"id": "m", "t1": "a1.png", "t2": "a2.png", "mask": 42}',
        '{"id": "r", "t1": "a1.png", "t2": "a2.png", "t2": "a1.png"}',
        '{"id": "u", "t1": "a1.png", "t2": "a2.png", "msk": "m.png"}',
        '{"id": true, "t1": "a1.png", "t2": "a2.png"}',
        '{"id": "g", "t1": "a1.png", "t2": "a2.png", "gsd": [1]}',
    ]
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    catalog = read_catalog(tmp_path / "pairs.jsonl")
    assert [e.id for e in catalog.entries] == ["ok"]
    errors = [item.problem.error for item in catalog.items if item.problem]
    assert errors == [
        "pairs.jsonl line 2: field t1 must be text (a path), not a number 123",
        "pairs.jsonl line 3: field mask must be text (a path), not a number 42",
        "pairs.jsonl line 4: repeats the field t2",
        "pairs.jsonl line 5: has the unknown field 'msk'; the known fields are id, t1, t2, mask, bounds, crs, gsd, aoi",
        "pairs.jsonl line 6: field id must be text, not a boolean",
        "pairs.jsonl line 7: field gsd must be a number of metres per pixel, not a list",
    ]


def test_deep_and_huge_json_lines_fail_their_row_only(tmp_path):
    _files(tmp_path, "a1.png", "a2.png")
    deep = '{"id": "d", "t1": ' + "[" * 20_000 + "]" * 20_000 + "}"
    huge = '{"id": "h", "t1": "' + "a" * 200_000 + '", "t2": "a2.png"}'
    good = '{"id": "ok", "t1": "a1.png", "t2": "a2.png"}'
    (tmp_path / "pairs.jsonl").write_text("\n".join([deep, huge, good]) + "\n")
    catalog = read_catalog(tmp_path / "pairs.jsonl")
    assert [e.id for e in catalog.entries] == ["ok"]
    errors = [item.problem.error for item in catalog.items if item.problem]
    assert errors[0].startswith("pairs.jsonl line 1: nests deeper than")
    assert errors[1].startswith("pairs.jsonl line 2: longer than 65536 bytes")


@pytest.mark.parametrize("separator", ["\u2028", "\u0085", "\f", "\u2029"])
def test_ids_with_line_breaking_characters_do_not_split_rows(tmp_path, separator):
    _files(tmp_path, "a1.png", "a2.png")
    (tmp_path / "pairs.csv").write_text(
        f"id,t1,t2\nbad{separator}id,a1.png,a2.png\nok,a1.png,a2.png\n", encoding="utf-8"
    )
    catalog = read_catalog(tmp_path / "pairs.csv")
    assert len(catalog.items) == 2
    assert [e.id for e in catalog.entries] == ["ok"]
    (problem,) = [item.problem for item in catalog.items if item.problem]
    assert problem.error.startswith("pairs.csv line 2: id ") and "single-line text" in problem.error
    assert f"U+{ord(separator):04X}" in problem.error
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text(json.dumps({"id": f"x{separator}y", "t1": "a1.png", "t2": "a2.png"}) + "\n")
    (item,) = read_catalog(jsonl).items
    assert item.problem is not None and "single-line text" in item.problem.error


def test_a_symlink_loop_row_fails_that_row_and_the_run_goes_on(tmp_path):
    from tests.bad_inputs.cases import example

    ex = example(tmp_path / "ex")
    folder = ex.t1.parent
    os.symlink(folder / "loop-a", folder / "loop-b")
    os.symlink(folder / "loop-b", folder / "loop-a")
    (folder / "pairs.csv").write_text(f"id,t1,t2\nloop,loop-a,{ex.t2.name}\ngood,{ex.t1.name},{ex.t2.name}\n")
    questions = tmp_path / "q.txt"
    questions.write_text("has anything changed?\n")
    report = run_batch(
        BatchOptions(catalog=folder / "pairs.csv", questions=questions, out=tmp_path / "out", progress=False)
    )
    assert report.answered == 1 and report.failed == 1
    (error,) = [json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert "loop-a" in error["error"] and "cannot be" in error["error"]
