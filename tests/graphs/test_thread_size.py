"""A long thread stays small: one checkpoint of bounded size per thread, every turn once in the turn log, and a
restart that resumes where the thread stopped (issue 26, BAD case 6: checkpoints used to copy every past turn)."""

from __future__ import annotations

import sqlite3

import pytest

from agent import Agent
from agent.settings import AgentSettings
from agent.turn.state import RECENT_TURNS
from deltavlm.synthetic import generate_pair

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
    assert len(agent.thread_state("t").recent) <= RECENT_TURNS + 1
    assert len(agent.history("t")) == 2 * RECENT_TURNS
    agent.end_thread("t")
    assert agent.history("t") == [] and agent.checkpointer.get_tuple(config) is None


def test_why_after_many_turns_still_explains_the_last_factual_answer(arrays, tmp_path):
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "a"))
    counted = agent.ask(arrays, "How many buildings?", thread_id="t")
    for _ in range(RECENT_TURNS + 2):
        agent.ask(arrays, "why?", thread_id="t")  # explanations are not factual answers: the count stays the one
    explained = agent.ask(arrays, "why?", thread_id="t")
    assert (counted.first_sentence or counted.text) in explained.text
