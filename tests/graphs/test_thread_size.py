"""A long thread stays small: one checkpoint of bounded size per thread, every turn once in the turn log, and a
restart that resumes where the thread stopped (issue 26, BAD case 6: checkpoints used to copy every past turn)."""

from __future__ import annotations

import json
import sqlite3
from typing import TypedDict

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from agent import Agent
from agent.answer import Answer
from agent.reading import Request
from agent.settings import AgentSettings
from agent.turn.state import CHECKPOINTED_TYPES, RECENT_TURNS, STATE_VERSION, TurnRecord
from deltavlm.synthetic import generate_pair
from graphs.checkpoints import serializer
from graphs.turn_log import TurnLog

QUESTIONS = ["Has anything changed?", "How many buildings?", "where?", "why?", "and roads?"]


@pytest.fixture(scope="module")
def arrays():
    pair = generate_pair(3, 128, change=True)
    return pair.t1, pair.t2


def _checkpoint_bytes(db) -> tuple[int, int]:
    """Rows and bytes the thread's checkpoints and pending writes take in the database."""
    with sqlite3.connect(db) as connection:
        rows, size = connection.execute(
            "SELECT count(*), coalesce(sum(length(checkpoint)), 0) FROM checkpoints"
        ).fetchone()
        writes = connection.execute("SELECT count(*), coalesce(sum(length(value)), 0) FROM writes").fetchone()
    return rows + writes[0], size + writes[1]


def test_a_long_threads_checkpoint_stays_one_turns_size_and_resumes(arrays, tmp_path):
    db = tmp_path / "threads.sqlite"
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "a", checkpoint_db=db))
    sizes = {}
    for turn in range(3 * RECENT_TURNS):
        agent.ask(arrays, QUESTIONS[turn % len(QUESTIONS)], thread_id="long")
        if turn + 1 in (RECENT_TURNS, 3 * RECENT_TURNS):
            sizes[turn + 1] = _checkpoint_bytes(db)
    agent.close()
    (rows_short, bytes_short), (rows_long, bytes_long) = sizes[RECENT_TURNS], sizes[3 * RECENT_TURNS]
    assert rows_long == rows_short == 1  # older checkpoints pruned
    assert bytes_long < 1.2 * bytes_short  # the state holds a bounded window, not every past turn

    again = Agent(AgentSettings(artefact_dir=tmp_path / "a", checkpoint_db=db))
    follow_up = again.ask(arrays, "and roads?", thread_id="long")
    history = again.history("long")
    again.close()
    assert follow_up.turn == 3 * RECENT_TURNS  # the restarted thread goes on where it stopped
    assert [t.question for t in history] == [QUESTIONS[i % len(QUESTIONS)] for i in range(3 * RECENT_TURNS)] + [
        "and roads?"
    ]
    assert [t.turn for t in history] == list(range(3 * RECENT_TURNS + 1))


def test_an_in_memory_thread_keeps_one_checkpoint_and_every_turn(arrays, tmp_path):
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "a"))
    config = {"configurable": {"thread_id": "t"}}
    for turn in range(2 * RECENT_TURNS):
        agent.ask(arrays, QUESTIONS[turn % len(QUESTIONS)], thread_id="t")
    assert len(list(agent.checkpointer.list(config))) == 1
    kept = agent.checkpointer.get_tuple(config).checkpoint["channel_versions"]
    blobs = {(k[2], k[3]) for k in agent.checkpointer.blobs if k[0] == "t"}
    assert blobs == set(kept.items())  # every older channel value was dropped, none the checkpoint reads
    assert {k[2] for k in agent.checkpointer.writes if k[0] == "t"} <= {agent.turn_log.newest("t")}
    assert len(agent.thread_state("t").recent) <= RECENT_TURNS + 1
    assert len(agent.history("t")) == 2 * RECENT_TURNS
    agent.end_thread("t")
    assert agent.history("t") == [] and agent.checkpointer.get_tuple(config) is None


@pytest.mark.parametrize("restart", [False, True], ids=["same agent", "restarted"])
def test_why_after_many_turns_still_explains_the_last_factual_answer(arrays, tmp_path, restart):
    settings = AgentSettings(artefact_dir=tmp_path / "a", checkpoint_db=tmp_path / "t.sqlite" if restart else None)
    agent = Agent(settings)
    counted = agent.ask(arrays, "How many buildings?", thread_id="t")
    for _ in range(RECENT_TURNS + 2):
        agent.ask(arrays, "why?", thread_id="t")  # explanations are not factual answers: the count stays the one
    if restart:  # the recent window comes back from the turn log, the count's turn with it
        agent.close()
        agent = Agent(settings)
    explained = agent.ask(arrays, "why?", thread_id="t")
    agent.close()
    assert (counted.first_sentence or counted.text) in explained.text


def test_a_checkpoint_holds_the_thread_not_the_turns_answer(arrays, tmp_path):
    db = tmp_path / "t.sqlite"
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "a", checkpoint_db=db))
    answer = agent.ask(arrays, "How many buildings?", thread_id="t")
    agent.close()
    with sqlite3.connect(db) as connection:
        (saved,) = connection.execute("SELECT checkpoint FROM checkpoints").fetchone()
    # the answer is in the turn log once; the checkpoint keeps the binding, the ledger and where the log stands
    assert answer.text[:40].encode() not in saved
    assert answer.verification is not None and answer.verification.summary.model_dump_json()[:40].encode() not in saved


def _save_old_thread(db, schema: type, saved: dict, log: dict[int, str]) -> None:
    """Thread "old" as an earlier version saved it: a graph whose state ``schema`` holds ``saved``, checkpointed in
    ``db``, with the turn log rows ``log`` (turn → record JSON) beside it."""
    old = StateGraph(schema)
    old.add_node("write", lambda _: saved)
    old.add_edge(START, "write")
    old.add_edge("write", END)
    with sqlite3.connect(db, check_same_thread=False) as connection:
        saver = SqliteSaver(connection, serde=serializer(CHECKPOINTED_TYPES))
        old.compile(checkpointer=saver).invoke({"version": saved["version"]}, {"configurable": {"thread_id": "old"}})
        turn_log = TurnLog(saver)
        for turn, record in log.items():
            turn_log.write("old", turn, record)


class V3State(TypedDict, total=False):
    """The checkpointed shape of state version 3: this turn's values and the recent turns in the checkpoint."""

    version: int
    pair_id: str
    pair_name: str
    store_key: str
    request: Request
    answer: Answer
    ledger: dict
    turn: int
    turns_done: int
    recent: list[TurnRecord]
    said: list[str]


def _as_version_3_wrote_it(record: TurnRecord) -> str:
    """A turn record as version 3 wrote it: the reader's reason and DeltaVLM's parse methods were sentences."""
    data = json.loads(record.model_dump_json())
    for request in (data["request"], data["answer"]["evidence"]["route"]):
        request.pop("steps", None)
        request["reason"] = "a category on its own reads as a count"
    data["answer"]["evidence"]["model_parsed"] = {
        "raw": "Yes, 3 buildings were built.",
        "yes_no": {"raw": "Yes", "value": True, "method": "from counts (number before category)"},
        "counts": {"raw": "3 buildings", "value": {"building": 3}, "method": "number before category"},
        "cells": {"raw": "x", "value": None, "method": "free text; categories without cells"},
    }
    return json.dumps(data)


def test_a_version_3_thread_reads_its_recent_turns_from_the_log_and_goes_on(arrays, tmp_path):
    source = Agent(AgentSettings(artefact_dir=tmp_path / "a"))
    for question in ["How many buildings?", "why?", "why?"]:
        source.ask(arrays, question, thread_id="src")
    state, records = source.thread_state("src"), source.history("src")
    saved = {"version": 3, "pair_id": state.pair_id, "pair_name": state.pair_name, "store_key": state.store_key}
    saved |= {"request": records[-1].request, "answer": records[-1].answer, "ledger": state.ledger, "turn": 2}
    saved |= {"turns_done": 3, "recent": records, "said": []}
    db = tmp_path / "v3.sqlite"
    _save_old_thread(db, V3State, saved, {r.turn: _as_version_3_wrote_it(r) for r in records})

    agent = Agent(AgentSettings(artefact_dir=tmp_path / "a", checkpoint_db=db))
    loaded = agent.thread_state("old")
    assert loaded.fact_turn == 0 and [t.turn for t in loaded.recent] == [0, 1, 2]
    explained = agent.ask(arrays, "why?", thread_id="old")
    history = agent.history("old")
    resumed = agent.thread_state("old")
    for _ in range(RECENT_TURNS + 1):  # the count leaves the window; it must stay the turn "why?" explains
        agent.ask(arrays, "why?", thread_id="old")
    agent.close()
    restarted = Agent(AgentSettings(artefact_dir=tmp_path / "a", checkpoint_db=db))
    much_later = restarted.ask(arrays, "why?", thread_id="old")
    restarted.close()
    assert explained.turn == 3 and resumed.version == STATE_VERSION and resumed.fact_turn == 0
    assert (records[0].answer.first_sentence or records[0].answer.text) in much_later.text
    assert (records[0].answer.first_sentence or records[0].answer.text) in explained.text
    assert [t.question for t in history] == ["How many buildings?", "why?", "why?", "why?"]
    parsed = history[0].answer.evidence.model_parsed
    assert parsed is not None and parsed.yes_no.method == "from_counts" and parsed.cells.style == "free_text"
    assert parsed.counts.rules == ["number_before_category"]


class V2State(TypedDict, total=False):
    """The checkpointed shape of state version 2: every turn held in the checkpoint itself."""

    version: int
    pair_id: str
    pair_name: str
    store_key: str
    request: Request
    ledger: dict
    turn: int
    turns: list[TurnRecord]


def test_a_version_2_thread_moves_its_turns_to_the_log_and_goes_on(arrays, tmp_path):
    source = Agent(AgentSettings(artefact_dir=tmp_path / "a"))
    for question in QUESTIONS[:3]:
        source.ask(arrays, question, thread_id="src")
    state, records = source.thread_state("src"), source.history("src")
    saved = {"version": 2, "pair_id": state.pair_id, "pair_name": state.pair_name, "store_key": state.store_key}
    saved |= {"request": records[-1].request, "ledger": state.ledger, "turn": state.turn, "turns": records}
    db = tmp_path / "v2.sqlite"
    _save_old_thread(db, V2State, saved, {})

    agent = Agent(AgentSettings(artefact_dir=tmp_path / "a", checkpoint_db=db))
    assert [t.question for t in agent.history("old")] == QUESTIONS[:3]  # read in place, before any new turn
    follow_up = agent.ask(arrays, "why?", thread_id="old")
    history = agent.history("old")
    agent.close()
    assert follow_up.turn == 3 and [t.turn for t in history] == [0, 1, 2, 3]
    assert [t.question for t in history] == [*QUESTIONS[:3], "why?"]
    assert _checkpoint_bytes(db)[0] == 1


def test_a_turn_loads_its_checkpoint_once_and_sees_another_writers_turns(arrays, tmp_path, monkeypatch):
    db = tmp_path / "shared.sqlite"
    first = Agent(AgentSettings(artefact_dir=tmp_path / "a", checkpoint_db=db))
    second = Agent(AgentSettings(artefact_dir=tmp_path / "a", checkpoint_db=db))
    first.ask(arrays, "How many buildings?", thread_id="t")
    loads = []
    real = first.checkpointer.get_tuple
    monkeypatch.setattr(first.checkpointer, "get_tuple", lambda config: loads.append(config) or real(config))
    first.ask(arrays, "where?", thread_id="t")
    assert len(loads) == 1  # the graph's own load: the start of the turn used the state this agent saved last
    assert first._start_state("t")[0] == first.thread_state("t")  # what it kept is what the checkpoint holds

    # Another process's turn makes a newer checkpoint: the kept state is stale and the checkpoint is read again.
    second.ask(arrays, "why?", thread_id="t", gsd_m=0.5)
    loads.clear()
    follow_up = first.ask(arrays, "and roads?", thread_id="t")
    assert len(loads) == 2
    assert first.thread_state("t").gsd_m == 0.5  # the other writer's GSD is the thread's now
    history = first.history("t")
    first.close()
    second.close()
    assert follow_up.turn == 3
    assert [t.question for t in history] == ["How many buildings?", "where?", "why?", "and roads?"]
