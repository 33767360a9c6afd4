"""The POOR list of issue 19: clear messages and exit statuses instead of tracebacks, bounded waits, safe CSV.

CLI: a 1×1 pair, ``--out`` naming a file, a bad ``--db``, an unknown ``--model-config`` exit 2 with one line;
``batch`` exits 1 when pairs failed and 130 on Ctrl-C. Catalogs: an unterminated CSV quote is an error on its
own line and does not swallow the next row; a JSONL line of bad UTF-8 is that line's error; ids that a
spreadsheet would run as formulas are escaped in summary.csv. The remote endpoint's wait matches its message;
the server closes half-sent bodies (408), answers a NUL byte in a path with 422, and refuses to bind beyond
loopback without a token unless told.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agent.batch.catalog import read_catalog
from deltavlm.serving.cli import exposure_refusal, serve
from deltavlm.serving.settings import ServerSettings
from tests.bad_inputs.cases import api_agent, batch_run, example, run_cli
from tools.pairs import load_pair, pair_from_arrays
from tools.raster import InputError
from tools.vlm import DeltaVLMTool, HTTPBackend

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------- the CLI


def test_a_one_pixel_pair_is_an_error_not_a_traceback(tmp_path, capsys):
    import cv2

    tiny = tmp_path / "one.png"
    cv2.imwrite(str(tiny), np.zeros((1, 1, 3), np.uint8))
    for command in (["verify", tiny, tiny], ["ask", tiny, tiny, "changed?", "--db", tmp_path / "t.sqlite"]):
        code, _, err = run_cli(command, capsys)
        assert code == 2 and "one.png is 1×1 px; the 3×3 grid needs at least 3×3" in err
    with pytest.raises(InputError, match="1×1 px"):
        pair_from_arrays(np.zeros((1, 1, 3), np.uint8), np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(InputError, match="1×1 px"):
        api_agent(tmp_path).ask((tiny, tiny), "has anything changed?")


def test_out_naming_a_file_bad_db_and_unknown_model_config_are_one_line_errors(tmp_path, capsys):
    ex = example(tmp_path / "ex")
    afile = tmp_path / "afile"
    afile.write_text("notes, not a database\n" * 20)
    code, _, err = run_cli(["scene", ex.t1, ex.t2, "--out", afile], capsys)
    assert code == 2 and "afile is a file, not a folder" in err
    code, _, err = run_cli(["demo", "--out", afile], capsys)
    assert code == 2 and "afile is a file, not a folder" in err
    questions = tmp_path / "q.txt"
    questions.write_text("changed?\n")
    catalog = ex.t1.parent / "pairs.csv"
    catalog.write_text("id,t1,t2\np,t1.tif,t2.tif\n")
    code, _, err = run_cli(["batch", catalog, "--questions", questions, "--out", afile], capsys)
    assert code == 2 and "afile is a file, not a folder" in err
    code, _, err = run_cli(["ask", ex.t1, ex.t2, "changed?", "--db", afile], capsys)
    assert code == 2 and f"conversation store {afile} cannot be opened as SQLite" in err
    code, _, err = run_cli(["ask", ex.t1, ex.t2, "changed?", "--db", tmp_path], capsys)
    assert code == 2 and "cannot be opened as SQLite" in err
    code, _, err = run_cli(
        ["ask", ex.t1, ex.t2, "changed?", "--db", tmp_path / "t.sqlite", "--model-config", "nonsense"], capsys
    )
    assert code == 2 and "no DeltaVLM config 'nonsense'" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_ctrl_c_during_batch_exits_130_without_a_traceback_and_the_rerun_finishes(tmp_path):
    folder = tmp_path / "cat"
    rows = [["id", "t1", "t2", "mask"]]
    for i in range(12):
        example(folder / f"p{i}", seed=60 + i)
        rows.append([f"p{i}", f"p{i}/t1.tif", f"p{i}/t2.tif", ""])
    with (folder / "pairs.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    questions = tmp_path / "q.txt"
    questions.write_text("Has anything changed?\nwhere?\n")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "agent.cli", "batch", str(folder / "pairs.csv"), "--questions", str(questions)]
    argv += ["--out", str(out), "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not ((out / "answers.jsonl").exists() and (out / "answers.jsonl").stat().st_size) and run.poll() is None:
        assert time.monotonic() < deadline, "the batch never committed a pair"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, err = run.communicate(timeout=120)
    if run.returncode == 0:
        pytest.skip("the batch finished before the interrupt arrived")
    assert run.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err and "Rerun the same command" in err
    again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert len((out / "answers.jsonl").read_text().splitlines()) == 12 * 2


# ------------------------------------------------------------------------------------------- catalogs


def test_an_unterminated_csv_quote_is_its_own_lines_error_and_the_next_row_survives(tmp_path):
    folder = tmp_path / "cat"
    folder.mkdir()
    (folder / "pairs.csv").write_text(
        'id,t1,t2,mask\na,A/a.png,B/a.png,\n"b,A/b.png,B/b.png,\nc,A/c.png,B/c.png,\n"d, e",A/d.png,B/d.png,\n'
    )
    catalog = read_catalog(folder / "pairs.csv")
    assert [e.id for e in catalog.entries] == ["a", "c", "d, e"]
    problems = [item.problem.error for item in catalog.items if item.problem]
    assert len(problems) == 1 and problems[0].startswith("pairs.csv line 3: not a CSV row")


def test_a_jsonl_line_of_bad_utf8_is_that_lines_error(tmp_path):
    folder = tmp_path / "cat"
    folder.mkdir()
    good = json.dumps({"id": "a", "t1": "A/a.png", "t2": "B/a.png"}).encode()
    (folder / "pairs.jsonl").write_bytes(good + b"\n" + b'{"id": "b\xff\xfe"}\n' + good.replace(b'"a"', b'"c"') + b"\n")
    catalog = read_catalog(folder / "pairs.jsonl")
    assert [e.id for e in catalog.entries] == ["a", "c"]
    problems = [item.problem.error for item in catalog.items if item.problem]
    assert len(problems) == 1 and problems[0].startswith("pairs.jsonl line 2: not UTF-8 text")


@pytest.mark.parametrize("pair_id", ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)"])
def test_ids_that_a_spreadsheet_would_run_are_escaped_in_summary_csv(tmp_path, pair_id):
    ex = example(tmp_path / "ex")
    catalog = ex.t1.parent / "catalog.csv"
    with catalog.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "t1", "t2", "mask"])
        writer.writerow([pair_id, "t1.tif", "t2.tif", ""])
    questions = tmp_path / "q.txt"
    questions.write_text("Has anything changed?\n")
    from agent.batch.runner import BatchOptions, run_batch

    run_batch(BatchOptions(catalog=catalog, questions=questions, out=tmp_path / "out", progress=False))
    with (tmp_path / "out" / "summary.csv").open() as handle:
        row = next(csv.DictReader(handle))
    assert row["pair"] == "'" + pair_id
    answers = (tmp_path / "out" / "answers.jsonl").read_text()
    assert json.loads(answers.splitlines()[0])["pair"] == pair_id  # the JSON outputs keep the id as given


def test_batch_exits_1_when_a_pair_failed(tmp_path, capsys):
    ex = example(tmp_path / "ex")
    report, record, _ = batch_run(tmp_path, ex.t1, ex.t1.parent / "missing.tif")
    assert report.failed == 1 and "missing.tif" in record["error"]
    questions = tmp_path / "questions.txt"
    code, out, err = run_cli(
        ["batch", ex.t1.parent / "catalog.csv", "--questions", questions, "--out", tmp_path / "o"], capsys
    )
    assert code == 1 and "failed 1" in out and "some pairs could not be analysed" in err


# ----------------------------------------------------------------------------------- endpoint and server


def test_an_endpoint_that_never_answers_costs_what_the_message_says(tmp_path):
    ex = example(tmp_path / "ex")
    pair = load_pair(ex.t1, ex.t2)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the backlog; nothing ever answers
    try:
        backend = HTTPBackend(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=1.0, retries=2, backoff_s=0.2)
        tool = DeltaVLMTool(backend, timeout_s=1.0)
        for _ in range(2):  # the second question is not held up by the first
            started = time.monotonic()
            reply = tool.ask(pair, "has anything changed?")
            assert reply.error is not None and "within 1 s" in reply.error
            assert time.monotonic() - started < 1.6
        started = time.monotonic()
        with pytest.raises(Exception, match="gave no answer within 1 s"):
            backend.generate(pair, "has anything changed?", [])
        assert time.monotonic() - started < 1.6
    finally:
        silent.close()


def test_binding_beyond_loopback_without_a_token_is_refused_unless_forced(capsys):
    assert exposure_refusal(ServerSettings(host="127.0.0.1")) is None
    assert exposure_refusal(ServerSettings(host="0.0.0.0", token="s3cret")) is None
    assert exposure_refusal(ServerSettings(host="0.0.0.0", allow_no_token=True)) is None
    assert serve(ServerSettings(model="tiny", host="0.0.0.0", engine="uvicorn")) == 2
    assert "refusing to bind 0.0.0.0 without a token" in capsys.readouterr().err
    # forced, it gets past the refusal (and stops at the misspelt model instead)
    assert serve(ServerSettings(model="tinyy", host="0.0.0.0", engine="uvicorn", allow_no_token=True)) == 2
    assert "tinyy" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_engine():
    from deltavlm.inference import DeltaVLMRunner
    from deltavlm.serving.engine import ServingEngine

    return ServingEngine(DeltaVLMRunner.from_config("tiny"), max_wait_ms=2.0)


def test_a_nul_byte_in_a_path_is_a_422(tiny_engine, tmp_path):
    from fastapi.testclient import TestClient

    from deltavlm.serving.app import create_app

    app = create_app(tiny_engine, ServerSettings(data_root=tmp_path))
    with TestClient(app) as client:
        response = client.post("/v1/pairs", json={"t1_path": "a\x00.png", "t2_path": "b.png"})
    assert response.status_code == 422 and "NUL byte" in response.json()["detail"]


def test_a_half_sent_body_is_closed_with_408(tiny_engine):
    from deltavlm.serving.app import create_app
    from deltavlm.serving.local import BackgroundServer

    app = create_app(tiny_engine, ServerSettings(body_timeout_s=0.5))
    with BackgroundServer(app) as server, socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/pairs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"t1_png_b64": '
        )
        started = time.monotonic()
        reply = conn.recv(4096)
        assert time.monotonic() - started < 5
    assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.5 s" in reply
