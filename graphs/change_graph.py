"""The conversation graph: which node runs after which, decided by routers that read ``state.request``.

START → read ─┬─ (no facts needed) ─────────────────────┐
              └→ verify ─┬→ perceive (DeltaVLM) ─┐        │
                         └───────────────────────┴→ reconcile → compose ─┬→ export → END
                                                                         └→ END

An agent without DeltaVLM gets the graph without ``perceive`` (verify → reconcile): whether a model is there is
fixed when the agent is made, so no turn pays for asking.

The node functions are the agent's (``agent.turn.nodes``): plain functions over its typed state, handed in as a
:class:`TurnNodes`. The graph moves the state between them and checkpoints it; it decides nothing about language
or trust and calls nothing back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from graphs.context import GraphContext
from graphs.state import RouteView

Node = Callable[..., Any]


@dataclass(frozen=True)
class TurnNodes:
    """The six steps of a turn; each takes ``(state, runtime)`` and returns the state fields it changes."""

    read: Node
    verify: Node
    perceive: Node
    reconcile: Node
    compose: Node
    export: Node


def after_read(state: RouteView) -> Literal["verify", "compose"]:
    return "verify" if state.request is not None and state.request.needs_facts else "compose"


def after_verify(state: RouteView) -> Literal["perceive", "reconcile"]:
    return "perceive" if state.instruction is not None else "reconcile"


def after_compose(state: RouteView) -> Literal["export", "__end__"]:
    return "export" if state.request is not None and state.request.artefacts else END


def build_graph(
    nodes: TurnNodes, state_schema: type, context_schema: type[GraphContext] = GraphContext, *, with_model: bool
) -> StateGraph:
    graph = StateGraph(state_schema, context_schema=context_schema)
    steps = (
        ("read", "verify", "perceive", "reconcile", "compose", "export")
        if with_model
        else ("read", "verify", "reconcile", "compose", "export")
    )
    for name in steps:
        graph.add_node(name, getattr(nodes, name))
    graph.add_edge(START, "read")
    graph.add_conditional_edges("read", after_read)
    if with_model:
        graph.add_conditional_edges("verify", after_verify)
        graph.add_edge("perceive", "reconcile")
    else:
        graph.add_edge("verify", "reconcile")
    graph.add_edge("reconcile", "compose")
    graph.add_conditional_edges("compose", after_compose)
    graph.add_edge("export", END)
    return graph


def compile_graph(
    nodes: TurnNodes,
    state_schema: type,
    context_schema: type[GraphContext] = GraphContext,
    checkpointer: Checkpointer = None,
    *,
    with_model: bool,
) -> CompiledStateGraph:
    """The compiled graph; pass a fresh checkpointer per Agent (``graphs.checkpoints``)."""
    return build_graph(nodes, state_schema, context_schema, with_model=with_model).compile(checkpointer=checkpointer)
