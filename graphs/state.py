"""What the graph's routers read from a thread's state: the typed request, and what the read step decided.

The state class itself belongs to the agent (``agent.turn.state.TurnState``); the graph only needs these few
typed attributes to choose the next node, so it names them here and never imports the agent. Routers take a
:class:`RouteView`: LangGraph reads a router's input from its first parameter's type, so a router gets these two
channels rather than a copy of the whole state after every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class RoutedRequest(Protocol):
    """The request fields a router reads."""

    @property
    def needs_facts(self) -> bool:
        """Whether the verifiers must run (an explanation of the last answer needs none)."""

    @property
    def artefacts(self) -> frozenset[str]:
        """The files this request asks for (overlay, geojson)."""


@dataclass(frozen=True)
class RouteView:
    """The state fields a router reads."""

    request: RoutedRequest | None = None
    instruction: str | None = None
    """What DeltaVLM is asked this turn, or None when the model has nothing to add."""
