"""The conversation graph: nodes and edges.

START → route ─┬─ (no facts needed) ─────────────────────┐
               └→ verify ─┬→ perceive (DeltaVLM) ─┐        │
                          └───────────────────────┴→ reconcile → compose ─┬→ export → END
                                                                          └→ END
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer

from graphs import nodes
from graphs.context import GraphContext
from graphs.state import ThreadState


def after_route(state: ThreadState, runtime: Runtime[GraphContext]) -> Literal["verify", "compose"]:
    return "verify" if nodes.needs_facts(state, runtime) else "compose"


def after_verify(state: ThreadState, runtime: Runtime[GraphContext]) -> Literal["perceive", "reconcile"]:
    return "perceive" if nodes.needs_model(state, runtime) else "reconcile"


def after_compose(state: ThreadState, runtime: Runtime[GraphContext]) -> Literal["export", "__end__"]:
    return "export" if nodes.wants_artefacts(state, runtime) else END


def build_graph() -> StateGraph:
    graph = StateGraph(ThreadState, context_schema=GraphContext)
    graph.add_node("route", nodes.route_node)
    graph.add_node("verify", nodes.verify_node)
    graph.add_node("perceive", nodes.perceive_node)
    graph.add_node("reconcile", nodes.reconcile_node)
    graph.add_node("compose", nodes.compose_node)
    graph.add_node("export", nodes.export_node)
    graph.add_edge(START, "route")
    graph.add_conditional_edges("route", after_route)
    graph.add_conditional_edges("verify", after_verify)
    graph.add_edge("perceive", "reconcile")
    graph.add_edge("reconcile", "compose")
    graph.add_conditional_edges("compose", after_compose)
    graph.add_edge("export", END)
    return graph


def compile_graph(checkpointer: Checkpointer = None) -> CompiledStateGraph:
    """The compiled graph; pass a fresh checkpointer per Agent (in memory or SQLite)."""
    return build_graph().compile(checkpointer=checkpointer)
