"""Batch runs: catalogs of every kind, bad rows, escaping paths, outputs, work done once, resume after a kill."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyogrio.raw
import pytest

import agent.batch.outputs
import agent.batch.pair_work
import graphs.pair_store
from agent.answer import Answer
from agent.batch.catalog import read_catalog, read_questions
from agent.batch.runner import BatchOptions, run_batch
from agent.cli.main import main as cli_main
from deltavlm.synthetic import write_example
from tools.raster import InputError

QUESTIONS = "# the analyst's questions\nHas anything changed?\nHow many new buildings?\n\nwhere?\nexport that\n"
ROOT = Path(__file__).resolve().parents[2]


def _pairs(folder: Path, n: int, *, masks: bool = True, size: int = 64) -> list[dict[str, str]]:
    """``n`` georeferenced synthetic pairs under ``folder``, with their LEVIR-MCI masks when asked."""
    rows = []
    for i in range(n):
        paths = write_example(folder / f"p{i:02d}", seed=40 + i, size=size)
        row = {"id": f"p{i:02d}", "t1": f"p{i:02d}/t1.tif", "t2": f"p{i:02d}/t2.tif", "mask": ""}
        if masks and i % 3 != 2:  # every third pair falls back to the classical mask
            row["mask"] = f"p{i:02d}/mask.png"
        assert paths.t1.exists()
        rows.append(row)
    return rows


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "t1", "t2", "mask"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def job(tmp_path):
    """A CSV catalog of four pairs plus a missing file and a row that escapes the folder; four questions."""
    folder = tmp_path / "catalog"
    rows = _pairs(folder, 4)
    rows.append({"id": "ghost", "t1": "ghost/t1.tif", "t2": "ghost/t2.tif", "mask": ""})
    rows.append({"id": "escape", "t1": "../../etc/passwd", "t2": "p00/t2.tif", "mask": ""})
    catalog = _write_csv(folder / "pairs.csv", rows)
    questions = tmp_path / "questions.txt"
    questions.write_text(QUESTIONS)
    return catalog, questions


def _options(catalog: Path, questions: Path, out: Path, **kw) -> BatchOptions:
    return BatchOptions(catalog=catalog, questions=questions, out=out, mask_kind="levir-mci", progress=False, **kw)


def _records(out: Path) -> list[dict]:
    """A run's answers.jsonl without its timings, the one part allowed to differ between runs; artefact paths
    name the output folder, so it is replaced by a placeholder to compare runs written to different folders."""
    text = (out / "answers.jsonl").read_text().replace(str(out.resolve()), "<out>")
    records = [json.loads(line) for line in text.splitlines()]
    for record in records:
        record.pop("timing")
    return records


# ------------------------------------------------------------------------------------------------ catalogs


def test_csv_catalog_resolves_paths_and_turns_bad_rows_into_problems(tmp_path):
    folder = tmp_path / "cat"
    folder.mkdir()
    outside = tmp_path / "outside.tif"
    outside.write_bytes(b"x")
    (folder / "link.tif").symlink_to(outside)
    text = (
        "id,t1,t2,mask\n"
        "a,A/a.png,B/a.png,label/a.png\n"
        "b, A/b.png ,B/b.png,\n"
        ",A/c.png,B/c.png,\n"
        "d,A/d.png,,\n"
        "a,A/e.png,B/e.png,\n"
        "f,../f.png,B/f.png,\n"
        f"g,{outside},B/g.png,\n"
        "h,link.tif,B/h.png,\n"
        "i,https://example.com/i.tif,B/i.png,\n"
        "j,A/j.png,B/j.png,,extra\n"
        "\n"
        f"k,{folder / 'A' / 'k.png'},file://{folder / 'B' / 'k.png'},\n"
    )
    (folder / "pairs.csv").write_text(text)
    catalog = read_catalog(folder / "pairs.csv")
    assert catalog.kind == "csv" and catalog.folder == folder.resolve()
    entries = {e.id: e for e in catalog.entries}
    assert set(entries) == {"a", "b", "k"}
    assert entries["a"].t1 == folder.resolve() / "A" / "a.png" and entries["a"].mask == folder.resolve() / "label/a.png"
    assert entries["b"].t1 == folder.resolve() / "A" / "b.png" and entries["b"].mask is None
    assert entries["k"].t2 == folder.resolve() / "B" / "k.png"  # absolute paths inside the folder are fine
    problems = {item.key: item.problem.error for item in catalog.items if item.problem}
    assert [item.index for item in catalog.items] == list(range(11))
    messages = list(problems.values())
    assert "pairs.csv line 4: id is empty" in messages
    assert "pairs.csv line 5: t2 is empty" in messages
    assert any("id 'a' repeats pairs.csv line 2" in m for m in messages)
    escaping = [m for m in messages if "outside the catalog folder" in m]
    assert len(escaping) == 3  # ../f.png, the absolute path outside, and the symlink pointing outside
    assert any("'../f.png'" in m for m in escaping) and any("'link.tif'" in m for m in escaping)
    assert any("is a URL" in m for m in messages)
    assert any("pairs.csv line 11: 5 values for 4 columns" in m for m in messages)
    # --root widens what may be read
    wider = read_catalog(folder / "pairs.csv", root=tmp_path)
    assert {"f", "g", "h"} <= {e.id for e in wider.entries}


def test_csv_without_its_columns_is_refused(tmp_path):
    (tmp_path / "pairs.csv").write_text("name,before,after\nx,a.png,b.png\n")
    with pytest.raises(InputError, match=r"pairs.csv has no t1, t2 columns"):
        read_catalog(tmp_path / "pairs.csv")
    with pytest.raises(InputError, match="catalog not found"):
        read_catalog(tmp_path / "none.csv")
    (tmp_path / "pairs.xlsx").write_text("")
    with pytest.raises(InputError, match=r"unknown kind \.xlsx"):
        read_catalog(tmp_path / "pairs.xlsx")


def test_jsonl_catalog_with_bad_lines(tmp_path):
    lines = [
        {"id": "a", "t1": "x/a1.tif", "t2": "x/a2.tif", "mask": "x/am.png"},
        "{not json",
        [1, 2],
        {"id": 7, "t1": "x/b1.tif", "t2": "x/b2.tif"},
        {"id": "c", "t1": "/etc/hostname", "t2": "x/c2.tif"},
        {"id": "d", "t1": "x/d1.tif"},
    ]
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n\n"
    (tmp_path / "pairs.jsonl").write_text(text)
    catalog = read_catalog(tmp_path / "pairs.jsonl")
    assert catalog.kind == "jsonl"
    assert [e.id for e in catalog.entries] == ["a", "7"]
    errors = [item.problem.error for item in catalog.items if item.problem]
    assert errors[0].startswith("pairs.jsonl line 2: not JSON")
    assert errors[1] == "pairs.jsonl line 3: expected an object with id, t1, t2, got list"
    assert "pairs.jsonl line 5: t1 '/etc/hostname' resolves to /etc/hostname, outside" in errors[2]
    assert errors[3] == "pairs.jsonl line 6: t2 is empty"


def test_levir_folder_catalog_matches_by_file_name(tmp_path):
    root = tmp_path / "levir"
    for part in ("A", "B", "label"):
        (root / part).mkdir(parents=True)
    for name in ("x1.png", "x2.png", "only_a.png"):
        (root / "A" / name).write_bytes(b"")
    for name in ("x1.png", "x2.png", "only_b.png", "notes.txt"):
        (root / "B" / name).write_bytes(b"")
    (root / "label" / "x2.png").write_bytes(b"")
    catalog = read_catalog(root)
    assert catalog.kind == "levir"
    assert [(e.id, e.t1.name, e.mask.name if e.mask else None) for e in catalog.entries] == [
        ("x1", "x1.png", None),
        ("x2", "x2.png", "x2.png"),
    ]
    errors = sorted(item.problem.error for item in catalog.items if item.problem)
    assert errors == [
        "levir/only_a.png: A/only_a.png has no B/only_a.png",
        "levir/only_b.png: B/only_b.png has no A/only_b.png",
    ]
    (tmp_path / "mci" / "images" / "test").mkdir(parents=True)
    with pytest.raises(InputError, match=r"no A/ and B/ subfolders \(LEVIR-MCI keeps them under images/<split>/"):
        read_catalog(tmp_path / "mci")


def _stac_item(item_id: str, when: str, assets: dict, *, bbox=(1.0, 2.0, 1.1, 2.1), **props) -> dict:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]], [bbox[0], bbox[1]]]],
        },
        "bbox": list(bbox),
        "properties": {"datetime": when, **props},
        "links": [],
        "assets": {
            k: {"href": v, "type": "image/tiff; application=geotiff", "roles": ["data"]} for k, v in assets.items()
        },
    }


def test_stac_item_collection_pairs_two_items_of_one_place(tmp_path):
    pytest.importorskip("pystac")
    items = [
        # place 1 (same bbox): later item listed first; the pair's mask is the later item's "mask" asset
        _stac_item("s1-2021", "2021-06-01T00:00:00Z", {"image": "scenes/s1_2021.tif", "mask": "masks/s1.tif"}),
        _stac_item("s1-2019", "2019-06-01T00:00:00Z", {"image": "scenes/s1_2019.tif"}),
        # place 2 by the grid extension, with a "visual" asset
        _stac_item(
            "g-a", "2018-01-01T00:00:00Z", {"visual": "g/a.tif"}, bbox=(5, 5, 6, 6), **{"grid:code": "MGRS-14RNV"}
        ),
        _stac_item(
            "g-b", "2020-01-01T00:00:00Z", {"visual": "g/b.tif"}, bbox=(5, 5, 6.1, 6), **{"grid:code": "MGRS-14RNV"}
        ),
        # place 3 named explicitly, but three items
        _stac_item(
            "t-1", "2018-01-01T00:00:00Z", {"image": "t/1.tif"}, bbox=(9, 9, 10, 10), **{"changeagent:place": "t"}
        ),
        _stac_item(
            "t-2", "2019-01-01T00:00:00Z", {"image": "t/2.tif"}, bbox=(9, 9, 10, 10), **{"changeagent:place": "t"}
        ),
        _stac_item(
            "t-3", "2020-01-01T00:00:00Z", {"image": "t/3.tif"}, bbox=(9, 9, 10, 10), **{"changeagent:place": "t"}
        ),
        # place 4: a remote asset
        _stac_item("r-1", "2018-01-01T00:00:00Z", {"image": "https://x.org/r1.tif"}, bbox=(20, 20, 21, 21)),
        _stac_item("r-2", "2019-01-01T00:00:00Z", {"image": "r/r2.tif"}, bbox=(20, 20, 21, 21)),
    ]
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    catalog = read_catalog(path)
    assert catalog.kind == "stac"
    entries = {e.id: e for e in catalog.entries}
    assert set(entries) == {"s1-2019__s1-2021", "g-a__g-b"}
    first = entries["s1-2019__s1-2021"]
    assert first.t1 == tmp_path / "scenes/s1_2019.tif" and first.t2 == tmp_path / "scenes/s1_2021.tif"
    assert first.mask == tmp_path / "masks/s1.tif"
    assert entries["g-a__g-b"].t1.name == "a.tif" and entries["g-a__g-b"].mask is None
    errors = [item.problem.error for item in catalog.items if item.problem]
    assert any("place t: 3 item(s) (t-1, t-2, t-3); a pair needs exactly two" in e for e in errors)
    assert any("is a URL" in e for e in errors)
    (tmp_path / "bad.json").write_text(json.dumps({"type": "Catalog"}))
    with pytest.raises(InputError, match="is not a STAC ItemCollection"):
        read_catalog(tmp_path / "bad.json")


def test_questions_from_text_and_yaml(tmp_path):
    (tmp_path / "q.txt").write_text(QUESTIONS + "  # indented comment\nWhat is #1 on the list?\n")
    assert read_questions(tmp_path / "q.txt") == [
        "Has anything changed?",
        "How many new buildings?",
        "where?",
        "export that",
        "What is #1 on the list?",
    ]
    (tmp_path / "q.yaml").write_text("- Has anything changed?\n- 'and where?'\n")
    assert read_questions(tmp_path / "q.yaml") == ["Has anything changed?", "and where?"]
    (tmp_path / "q2.yml").write_text("questions:\n  - Describe the changes.\n")
    assert read_questions(tmp_path / "q2.yml") == ["Describe the changes."]
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(InputError, match="holds no questions"):
        read_questions(tmp_path / "empty.txt")
    (tmp_path / "bad.yaml").write_text("a: [1, 2")
    with pytest.raises(InputError, match="not valid YAML"):
        read_questions(tmp_path / "bad.yaml")
    (tmp_path / "long.txt").write_text("x" * 5000)
    with pytest.raises(InputError, match="question 1 has 5000 characters"):
        read_questions(tmp_path / "long.txt")


# ------------------------------------------------------------------------------------------------- runs


def test_batch_writes_every_answer_one_layer_a_summary_and_the_errors(job, tmp_path, monkeypatch):
    catalog, questions = job
    loads, verifications = [], []
    real_load, real_verify = agent.batch.pair_work.load_pair, graphs.pair_store.verify
    monkeypatch.setattr(agent.batch.pair_work, "load_pair", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    monkeypatch.setattr(graphs.pair_store, "verify", lambda *a, **k: verifications.append(a) or real_verify(*a, **k))
    out = tmp_path / "out"
    report = run_batch(_options(catalog, questions, out))
    assert (report.pairs, report.answered, report.failed, report.done_before) == (6, 4, 2, 0)
    # work done once: each pair decoded once; the agent never re-verified what the CPU stage verified
    assert len(loads) == 5 and verifications == []

    records = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert [(r["pair"], r["question_index"]) for r in records] == [(f"p0{i}", q) for i in range(4) for q in range(4)]
    for record in records:
        answer = Answer.model_validate(record["answer"])
        assert answer.thread_id == record["pair"] and answer.turn == record["question_index"]
        assert record["question"] == read_questions(questions)[record["question_index"]]
        assert record["timing"]["answer_s"] >= 0
    by_pair = {(r["pair"], r["question_index"]): r["answer"] for r in records}
    truth = json.loads((catalog.parent / "p00" / "captions.json").read_text())["counts"]
    assert by_pair[("p00", 1)]["counts"]["building"] == truth["building"]
    # the follow-up "where?" kept the thread's topic, and "export that" wrote the GeoJSON artefact
    assert by_pair[("p00", 2)]["intent"] == "where" and by_pair[("p00", 2)]["evidence"]["route"]["categories"] == [
        "building"
    ]
    artefact = Path(by_pair[("p00", 3)]["artefacts"]["geojson"])
    assert artefact.is_file() and artefact.is_relative_to(out / "artefacts")
    assert by_pair[("p02", 0)]["evidence"]["mask"]["provider"] == "classical"  # the row without a mask

    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(e["pair"], e["stage"]) for e in errors] == [("ghost", "load"), ("<pairs.csv line 7>", "catalog")]
    assert errors[0]["error"] == f"t1 file not found: {catalog.parent.resolve() / 'ghost' / 't1.tif'}"
    assert "outside the catalog folder" in errors[1]["error"]

    with (out / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["pair"] for r in rows] == ["p00", "p01", "p02", "p03", "ghost", "escape"]
    assert (
        rows[0]["status"] == "ok"
        and int(rows[0]["building"]) == truth["building"]
        and rows[0]["road"] == str(truth["road"])
    )
    assert rows[2]["mask_provider"] == "classical" and rows[2]["building"] == ""  # no categories from a classical mask
    assert rows[4]["status"] == "error (load)" and "not found" in rows[4]["error"]

    layer = json.loads((out / "changes.geojson").read_text())
    assert layer["type"] == "FeatureCollection" and "crs" not in layer  # RFC 7946: WGS84
    pairs_in_layer = {f["properties"]["pair"] for f in layer["features"]}
    assert pairs_in_layer <= {"p00", "p01", "p02", "p03"} and {"p00", "p01"} <= pairs_in_layer
    assert {f["properties"]["feature"] for f in layer["features"]} == {"cell", "object"}
    lon, lat = layer["features"][0]["geometry"]["coordinates"][0][0][0]
    assert -100 < lon < -95 and 29 < lat < 32  # the synthetic pairs lie in UTM 14N near Austin
    # the same features as a GeoPackage, a layer per kind; pairs with and without categories share one schema
    assert report.outputs["changes_gpkg"] == str(out / "changes.gpkg")
    for kind in ("cell", "object"):
        features = [f for f in layer["features"] if f["properties"]["feature"] == kind]
        meta, _, geometry, fields = pyogrio.raw.read(out / "changes.gpkg", layer=f"{kind}s")
        assert len(geometry) == len(features) and meta["geometry_type"] == "MultiPolygon" and "4326" in meta["crs"]
        assert set(meta["fields"]) == {k for f in features for k in f["properties"]}
        assert list(fields[list(meta["fields"]).index("pair")]) == [f["properties"]["pair"] for f in features]
    manifest = json.loads((out / "manifest.json").read_text())
    assert (
        manifest["questions"]["items"] == read_questions(questions)
        and "token" not in manifest["settings"]["agent"]["model"]
    )


def test_rerun_skips_finished_pairs_and_force_starts_over(job, tmp_path):
    catalog, questions = job
    out = tmp_path / "out"
    run_batch(_options(catalog, questions, out))
    first = {
        name: (out / name).read_bytes() for name in ("answers.jsonl", "errors.jsonl", "summary.csv", "changes.geojson")
    }
    again = run_batch(_options(catalog, questions, out))
    assert (again.done_before, again.answered, again.failed) == (6, 0, 0)
    assert {name: (out / name).read_bytes() for name in first} == first
    forced = run_batch(_options(catalog, questions, out, force=True))
    assert (forced.done_before, forced.answered, forced.failed) == (0, 4, 2)
    assert [json.dumps(r) for r in _records(out)] == [
        json.dumps({k: v for k, v in json.loads(line).items() if k != "timing"})
        for line in first["answers.jsonl"].decode().replace(str(out.resolve()), "<out>").splitlines()
    ]
    retried = run_batch(_options(catalog, questions, out, retry_errors=True))
    assert (retried.done_before, retried.failed) == (4, 2)
    assert len((out / "errors.jsonl").read_text().splitlines()) == 2  # retried, not duplicated


def test_a_changed_job_is_named_not_mixed(job, tmp_path):
    catalog, questions = job
    out = tmp_path / "out"
    run_batch(_options(catalog, questions, out))
    questions.write_text(QUESTIONS.replace("where?", "Where did the roads change?"))
    with pytest.raises(InputError, match=r"question 3 was 'where\?', now 'Where did the roads change\?'.*--force"):
        run_batch(_options(catalog, questions, out))
    questions.write_text(QUESTIONS)
    with catalog.open("a") as handle:
        handle.write("p99,p00/t1.tif,p00/t2.tif,\n")
    with pytest.raises(InputError, match=r"the catalog .*pairs.csv changed: 1 pair\(s\) added \(p99\)"):
        run_batch(_options(catalog, questions, out))
    lines = catalog.read_text().splitlines()[:-1]
    catalog.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"the settings changed \(mask_kind: 'levir-mci' → 'auto'\)"):
        run_batch(BatchOptions(catalog=catalog, questions=questions, out=out, progress=False))
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "answers.jsonl").write_text("{}\n")
    with pytest.raises(InputError, match=r"no manifest\.json, so it cannot be resumed safely"):
        run_batch(_options(catalog, questions, stray))


def test_torn_lines_and_partial_pairs_are_redone_without_duplicates(job, tmp_path):
    catalog, questions = job
    clean, out = tmp_path / "clean", tmp_path / "out"
    run_batch(_options(catalog, questions, clean))
    run_batch(_options(catalog, questions, out))
    answers = out / "answers.jsonl"
    data = answers.read_bytes()
    lines = data.splitlines(keepends=True)
    # pair p03 lost its last record and a half (a write torn by a crash); p01's part file is gone
    answers.write_bytes(b"".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2])
    agent.batch.outputs.part_path(out, "p01").unlink()
    (out / "summary.csv").unlink()
    report = run_batch(_options(catalog, questions, out))
    assert report.repaired == 4 + 3  # p01's four records and p03's two whole records plus the torn half
    assert (report.done_before, report.answered) == (4, 2)
    assert _records(out) == _records(clean)
    assert (out / "summary.csv").read_bytes() == (clean / "summary.csv").read_bytes()
    assert (out / "changes.geojson").read_bytes() == (clean / "changes.geojson").read_bytes()


def test_resume_after_sigkill_finishes_with_no_duplicate_and_no_loss(tmp_path):
    folder = tmp_path / "catalog"
    catalog = _write_csv(folder / "pairs.csv", _pairs(folder, 30))
    questions = tmp_path / "q.txt"
    questions.write_text(QUESTIONS)
    out, clean = tmp_path / "out", tmp_path / "clean"
    command = [sys.executable, "-m", "agent.cli", "batch", str(catalog), "--questions", str(questions)]
    command += ["--out", str(out), "--mask-kind", "levir-mci", "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    answers = out / "answers.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if answers.exists() and answers.stat().st_size > 0:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    assert not (out / "summary.csv").exists(), "the run finished before it could be killed"
    done = {json.loads(line)["pair"] for line in answers.read_text().splitlines() if line.endswith("}")}
    assert 0 < len(done) < 30
    report = run_batch(_options(catalog, questions, out))
    assert report.done_before + report.answered + report.failed == 30
    run_batch(_options(catalog, questions, clean))
    resumed = _records(out)
    answered = sorted({r["pair"] for r in resumed})
    assert [(r["pair"], r["question_index"]) for r in resumed] == [(p, q) for p in answered for q in range(4)]
    assert resumed == _records(clean)
    for name in ("summary.csv", "changes.geojson"):
        assert (out / name).read_bytes() == (clean / name).read_bytes()
    failed = (
        [json.loads(line)["pair"] for line in (out / "errors.jsonl").read_text().splitlines()]
        if (out / "errors.jsonl").exists()
        else []
    )
    assert len(answered) + len(failed) == 30 and not set(answered) & set(failed)


@pytest.mark.slow
def test_two_local_workers_give_the_same_outputs(job, tmp_path):
    catalog, questions = job
    one, two = tmp_path / "one", tmp_path / "two"
    run_batch(_options(catalog, questions, one))
    report = run_batch(_options(catalog, questions, two, workers=2))
    assert report.workers == 2 and report.answered == 4
    assert _records(two) == _records(one)
    for name in ("summary.csv", "changes.geojson", "errors.jsonl"):
        assert (two / name).read_bytes() == (one / name).read_bytes(), name


def test_cli_batch_json_report_and_clear_errors(job, tmp_path, capsys):
    catalog, questions = job
    out = tmp_path / "out"
    argv = ["batch", str(catalog), "--questions", str(questions), "--out", str(out), "--mask-kind", "levir-mci"]
    assert cli_main([*argv, "--json"]) == 1  # two pairs failed: the run says so in its exit status (issue 19)
    report = json.loads(capsys.readouterr().out)
    assert report["answered"] == 4 and report["failed"] == 2 and report["outputs"]["errors"].endswith("errors.jsonl")
    assert cli_main(argv) == 1  # the failures of the earlier run are still in errors.jsonl
    printed = capsys.readouterr()
    assert "6 done by an earlier run" in printed.out and "wrote summary:" in printed.out
    assert cli_main(["batch", str(tmp_path / "nope.csv"), "--questions", str(questions), "--out", str(out)]) == 2
    assert "changeagent: error: catalog not found" in capsys.readouterr().err


@pytest.fixture
def one_torch_thread():
    """The tiny model is faster on one thread, and does not fight other processes for the cores."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_deltavlm_encodes_each_pair_once_for_all_its_questions(tmp_path, one_torch_thread):
    """With DeltaVLM in process, one agent per worker keeps the model; its feature cache serves every question."""
    from agent.settings import AgentSettings, ModelSettings

    folder = tmp_path / "catalog"
    catalog = _write_csv(folder / "pairs.csv", _pairs(folder, 2))
    questions = tmp_path / "q.txt"
    questions.write_text("Has anything changed?\nHow many new buildings?\nDescribe the changes.\n")
    settings = AgentSettings(model=ModelSettings(backend="in-process", config="tiny", max_new_tokens=4))
    run_batch(_options(catalog, questions, tmp_path / "out", agent=settings))
    records = [json.loads(line) for line in (tmp_path / "out" / "answers.jsonl").read_text().splitlines()]
    encodes = {(r["pair"], r["answer"]["evidence"]["model"]["vision_encodes"]) for r in records}
    assert encodes == {("p00", 1), ("p01", 2)}  # one encoder forward per pair, whatever the number of questions


def test_levir_folder_of_pngs_runs_with_pixel_coordinates(tmp_path):
    """PNG tiles have no georeference: their features go to changes_pixel.geojson, not the map layer."""
    from deltavlm.synthetic import write_levir_mci

    write_levir_mci(tmp_path / "mci", {"test": 3}, seed=5, size=64)
    questions = tmp_path / "q.txt"
    questions.write_text("How many new buildings?\nand roads?\n")
    out = tmp_path / "out"
    report = run_batch(_options(tmp_path / "mci" / "images" / "test", questions, out))
    assert (report.answered, report.failed) == (3, 0)
    records = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert [r["pair"] for r in records] == [
        "test_000000",
        "test_000000",
        "test_000001",
        "test_000001",
        "test_000002",
        "test_000002",
    ]
    assert {r["answer"]["evidence"]["mask"]["provider"] for r in records} == {"user"}  # label/ was used
    assert json.loads((out / "changes.geojson").read_text())["features"] == []
    pixel = json.loads((out / "changes_pixel.geojson").read_text())
    assert pixel["coordinate_system"].startswith("pixel") and report.outputs["changes_pixel"].endswith(
        "changes_pixel.geojson"
    )
    meta, _, geometry, _ = pyogrio.raw.read(out / "changes_pixel.gpkg", layer="objects")
    objects = [f for f in pixel["features"] if f["properties"]["feature"] == "object"]
    assert meta["crs"] is None and len(geometry) == len(objects) > 0  # pixel coordinates: no CRS claimed
    with (out / "summary.csv").open() as handle:
        assert [row["t1"] for row in csv.DictReader(handle)] == [f"A/test_00000{i}.png" for i in range(3)]
