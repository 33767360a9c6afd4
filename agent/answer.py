"""The typed answer every entry point returns: text, structured fields, evidence, conflicts, artefacts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agent.ledger import Conflict
from agent.reading import Request
from tools.masks import MaskSource
from tools.vlm import VLMReply


class Evidence(BaseModel):
    """How the answer was reached, so that a person can check it."""

    tools: list[str] = Field(description="Tools that ran this turn, in order.")
    route: Request = Field(description="The typed request the question was read as.")
    mask: MaskSource | None = None
    verifier: dict[str, Any] | None = Field(None, description="The verifiers' numbers on the mask.")
    regions: dict[str, Any] | None = Field(None, description="Per-region change (tools.regions.RegionSummary).")
    model: VLMReply | None = Field(None, description="DeltaVLM's instruction, raw text, latency, or error.")
    model_parsed: dict[str, Any] | None = Field(None, description="Fields parsed from the model text, and how.")
    facts: dict[str, Any] = Field(default_factory=dict, description="Reconciled facts with source and confidence.")


class Answer(BaseModel):
    question: str
    text: str
    first_sentence: str = Field("", description="The sentence that answers exactly what was asked.")
    intent: str = Field(description="The request's ask (changed, count, where, how_much, …).")
    thread_id: str
    turn: int
    changed: bool | None = None
    counts: dict[str, int] | None = Field(None, description="Changed objects per category, when known.")
    changed_regions: int | None = Field(None, description="Changed regions over all categories.")
    cells: list[str] | None = None
    category_cells: dict[str, list[str]] | None = None
    caption: str | None = None
    confidence: float = Field(description="Lowest confidence among the facts this answer states (0 when none).")
    hedged: bool = Field(False, description="The first sentence says 'probably': confidence below the threshold.")
    model_used: bool = False
    evidence: Evidence
    conflicts: list[Conflict] = Field(default_factory=list)
    artefacts: dict[str, str] = Field(default_factory=dict, description="overlay / geojson paths.")
