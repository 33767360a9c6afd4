"""What the graph's routers read from a thread's state: the typed request, and what the read step decided.

The state class itself belongs to the agent (``agent.turn.state.TurnState``); the graph only needs these few
typed attributes to choose the next node, so it names them here as protocols and never imports the agent.
"""

from __future__ import annotations

from typing import Protocol


class RoutedRequest(Protocol):
    """The request fields a router reads."""

    @property
    def needs_facts(self) -> bool:
        """Whether the verifiers must run (an explanation of the last answer needs none)."""

    @property
    def artefacts(self) -> frozenset[str]:
        """The files this request asks for (overlay, geojson)."""


class RoutedState(Protocol):
    """The state fields a router reads."""

    @property
    def request(self) -> RoutedRequest | None: ...

    @property
    def instruction(self) -> str | None:
        """What DeltaVLM is asked this turn, or None when the model has nothing to add."""
