"""``--engine ray`` writes what ``--engine local`` writes, byte for byte apart from timings (slow: starts Ray)."""

from __future__ import annotations

import json
import shutil

import pytest

from agent.batch.runner import BatchOptions, run_batch
from tests.agent.test_batch import QUESTIONS, _pairs, _write_csv

pytest.importorskip("ray.data")

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _without_timings(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        record = json.loads(line)
        record.pop("timing")
        lines.append(json.dumps(record))
    return lines


def test_ray_engine_matches_local_byte_for_byte(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    folder = tmp_path / "catalog"
    rows = _pairs(folder, 5)
    rows.append({"id": "ghost", "t1": "ghost/t1.tif", "t2": "ghost/t2.tif", "mask": ""})
    rows.append({"id": "", "t1": "p00/t1.tif", "t2": "p00/t2.tif", "mask": ""})
    catalog = _write_csv(folder / "pairs.csv", rows)
    questions = tmp_path / "questions.txt"
    questions.write_text(QUESTIONS)
    out = tmp_path / "out"

    def options(engine: str) -> BatchOptions:
        return BatchOptions(
            catalog=catalog,
            questions=questions,
            out=out,
            engine=engine,
            workers=2,
            mask_kind="levir-mci",
            progress=False,
        )

    local = run_batch(options("local"))
    shutil.move(out, tmp_path / "local")  # the same --out for both, so artefact paths are equal too
    ray = run_batch(options("ray"))
    assert (ray.answered, ray.failed) == (local.answered, local.failed) == (5, 2)
    assert ray.engine == "ray" and ray.workers == 2
    for name in ("summary.csv", "changes.geojson", "errors.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    ours = (out / "answers.jsonl").read_text()
    theirs = (tmp_path / "local" / "answers.jsonl").read_text()
    assert _without_timings(ours) == _without_timings(theirs)
    assert sorted((out / "artefacts").rglob("*.geojson")) != []
    # resuming under the other engine finds everything done
    again = run_batch(options("local"))
    assert (again.done_before, again.answered) == (7, 0)
