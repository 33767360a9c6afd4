"""What every node receives at run time: the tools, the pair store and the agent's policy.

The graph runs tools and moves state; it decides nothing about language or trust. Those decisions (reading a
question, reconciling sources, composing the answer) are the agent's policy, handed to the graph in the run
context as an object that satisfies :class:`Policy`. That keeps ``graphs/`` free of ``agent/`` imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from deltavlm.rules import RuleSettings
from graphs.pair_store import PairStore
from graphs.state import ThreadState
from tools.orientation import Orientation
from tools.vlm import DeltaVLMTool

Artefact = Literal["overlay", "geojson"]


class Policy(Protocol):
    """The agent's decisions, as the nodes call them; requests and facts travel as JSON-plain dicts."""

    def read(
        self, question: str, turns: list[dict[str, Any]], orientation: Orientation | None = None
    ) -> dict[str, Any]:
        """The typed request for ``question``, given the thread's finished turns and how the pair faces the map
        (compass words name the sides that face them)."""

    def needs_facts(self, request: dict[str, Any]) -> bool:
        """Whether the verifiers must run (an explanation of the last answer needs none)."""

    def model_instruction(self, request: dict[str, Any], question: str) -> str | None:
        """What to ask DeltaVLM for this request, or None when the model has nothing to add."""

    def reconcile(self, state: ThreadState) -> dict[str, Any]:
        """State updates (``ledger``, ``reconciled``) from the verifiers' and the model's proposals."""

    def compose(self, state: ThreadState, has_model: bool) -> dict[str, Any]:
        """State updates (``answer``, ``turns``) holding the composed answer of this turn."""

    def artefacts(self, request: dict[str, Any]) -> set[Artefact]:
        """The files this request asks for."""


@dataclass
class GraphContext:
    """The run context of the conversation graph (LangGraph ``context_schema``)."""

    policy: Policy
    store: PairStore
    rules: RuleSettings
    artefact_dir: Path
    geojson_crs: Literal["wgs84", "native"] = "wgs84"
    vlm: DeltaVLMTool | None = None
