"""The typed answer every entry point returns: text, structured fields, evidence, conflicts, artefacts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agent.ledger import Conflict, Fact
from agent.model_facts import ModelParse
from agent.reading import Request
from tools.aoi import AoiStats
from tools.masks import ChangeMask, MaskSource
from tools.regions import RegionSummary
from tools.verify import Verification
from tools.vlm import VLMReply


class Evidence(BaseModel):
    """How the answer was reached, so that a person can check it."""

    tools: list[str] = Field(description="Tools that ran this turn, in order.")
    route: Request = Field(description="The typed request the question was read as.")
    mask: MaskSource | None = None
    regions: RegionSummary | None = Field(None, description="Per-region change of the regions the answer used.")
    model: VLMReply | None = Field(None, description="DeltaVLM's instruction, raw text, latency, or error.")
    model_parsed: ModelParse | None = Field(None, description="Fields parsed from the model text, and how.")
    facts: dict[str, Fact] = Field(default_factory=dict, description="Reconciled facts with source and confidence.")


class Answer(BaseModel):
    """What ``Agent.ask`` returns: the text, the structured facts, the typed verification, the mask, the files.

    Front-ends (page, batch, scene) draw and export from ``verification`` and ``mask`` and never reach into the
    agent's pair store. The mask is a live array handle: it is not serialized (``model_dump`` leaves it out).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

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
    areas_of_interest: list[AoiStats] | None = Field(
        None, description="The zonal figures of the areas of interest this answer speaks of (tools.aoi)."
    )
    confidence: float = Field(description="Lowest confidence among the facts this answer states (0 when none).")
    hedged: bool = Field(False, description="The first sentence says 'probably': confidence below the threshold.")
    model_used: bool = False
    evidence: Evidence
    conflicts: list[Conflict] = Field(default_factory=list)
    artefacts: dict[str, str] = Field(default_factory=dict, description="overlay / geojson paths.")
    verification: Verification | None = Field(
        None, description="Every verifier on the mask this answer used (None for answers that needed no facts)."
    )
    said: list[str] = Field(
        default_factory=list, description="Once-per-thread notes this answer said (calibration, categories)."
    )
    mask: ChangeMask | None = Field(None, exclude=True, description="The mask itself (not serialized).")
