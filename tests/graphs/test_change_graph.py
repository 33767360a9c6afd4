"""The graph's wiring: routers read ``state.request``, the steps are the agent's plain functions, and threads keep
typed values across a restart (or refuse an older version's thread by name)."""

from __future__ import annotations

import operator
import sqlite3
from typing import Annotated, TypedDict

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field

from agent import Agent
from agent.api import OldThread
from agent.ledger import Fact
from agent.reading import Request
from agent.settings import AgentSettings
from agent.turn.state import CHECKPOINTED_TYPES, TurnRecord, TurnState
from deltavlm.synthetic import write_example
from graphs.change_graph import TurnNodes, compile_graph
from graphs.checkpoints import checkpointer, serializer
from graphs.context import GraphContext
from graphs.pair_store import PairStore
from tools.pairs import load_pair


class FakeRequest(BaseModel):
    needs_facts: bool = True
    artefacts: frozenset[str] = frozenset()


class FakeState(BaseModel):
    request: FakeRequest | None = None
    instruction: str | None = None
    ran: Annotated[list[str], operator.add] = Field(default_factory=list)


def _step(name: str):
    return lambda state, runtime: {"ran": [name]}


NODES = TurnNodes(**{n: _step(n) for n in ("read", "verify", "perceive", "reconcile", "compose", "export")})


def _run(request: FakeRequest, instruction: str | None, vlm: object | None) -> list[str]:
    graph = compile_graph(NODES, FakeState, GraphContext, checkpointer(None, [FakeState]), with_model=vlm is not None)
    context = GraphContext(store=PairStore(1), rules=None, artefact_dir=".", vlm=vlm)  # type: ignore[arg-type]
    result = graph.invoke(
        {"request": request, "instruction": instruction},
        config={"configurable": {"thread_id": "t"}},
        context=context,
    )
    return result["ran"]


def test_routers_read_the_request():
    assert _run(FakeRequest(), None, None) == ["read", "verify", "reconcile", "compose"]
    assert _run(FakeRequest(needs_facts=False), "x", object()) == ["read", "compose"]
    assert _run(FakeRequest(), "x", object()) == ["read", "verify", "perceive", "reconcile", "compose"]
    assert _run(FakeRequest(), "x", None) == ["read", "verify", "reconcile", "compose"]  # no model, no perceive
    assert _run(FakeRequest(artefacts=frozenset({"geojson"})), None, None)[-1] == "export"


@pytest.fixture
def pair(tmp_path):
    paths = write_example(tmp_path / "example", seed=7)
    return paths, load_pair(paths.t1, paths.t2)


def test_a_restarted_thread_comes_back_typed(pair, tmp_path):
    paths, image_pair = pair
    db = tmp_path / "threads.sqlite"
    first = Agent(AgentSettings(artefact_dir=tmp_path / "a", checkpoint_db=db))
    first.ask(image_pair, "How many new buildings?", thread_id="s1", mask=paths.mask, mask_kind="levir-mci")
    first.close()
    second = Agent(AgentSettings(artefact_dir=tmp_path / "a", checkpoint_db=db))
    state = second.thread_state("s1")
    saved = serializer(CHECKPOINTED_TYPES)
    record = saved.loads_typed(saved.dumps_typed(state.recent[0]))  # the checkpoint revives the class, not a dict
    history = second.history("s1")
    second.close()
    assert type(record) is TurnRecord and record == state.recent[0] == history[0]
    assert isinstance(state, TurnState) and isinstance(state.recent[-1].request, Request)
    assert state.answer is None and state.facts is None  # this turn's values are never checkpointed
    assert all(isinstance(f, Fact) for f in state.ledger.values()) and state.ledger["count.building"].value >= 1
    assert state.mask is not None and state.mask.kind == "levir-mci"
    assert [t.question for t in history] == ["How many new buildings?"] and state.turns_done == 1


class OldState(TypedDict, total=False):
    pair_id: str
    question: str
    route: dict
    turns: Annotated[list[dict], operator.add]


def test_a_thread_saved_by_the_old_dict_state_is_refused_by_name(pair, tmp_path):
    _, image_pair = pair
    db = tmp_path / "old.sqlite"
    old = StateGraph(OldState)
    old.add_node("route", lambda state: {"route": {"ask": "changed"}, "turns": [{"question": state["question"]}]})
    old.add_edge(START, "route")
    old.add_edge("route", END)
    connection = sqlite3.connect(str(db), check_same_thread=False)
    old.compile(checkpointer=SqliteSaver(connection)).invoke(
        {"pair_id": image_pair.pair_id, "question": "Has anything changed?"}, {"configurable": {"thread_id": "old"}}
    )
    connection.close()
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "a", checkpoint_db=db))
    with pytest.raises(OldThread, match=r"thread old was saved by an earlier version.*start a new thread"):
        agent.ask(image_pair, "and where?", thread_id="old")
    assert agent.ask(image_pair, "Has anything changed?", thread_id="new").changed is True
    agent.close()
