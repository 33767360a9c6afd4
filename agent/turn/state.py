"""The typed state of one conversation thread, as the graph checkpoints it.

Every field is a typed value: the request the question was read as, the verifier's result, the model's reply, the
reconciled facts and the answer travel as the same pydantic objects from node to node and into the checkpoint, so
no node flattens a result for another to rebuild. Pixels, masks and models stay out: the state names the pair by
its content hash (and its files, so that a restarted process can reload it); they live in the pair store.
"""

from __future__ import annotations

import operator
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from agent.answer import Answer
from agent.ledger import Conflict, Fact
from agent.model_facts import ModelParse
from agent.reading import Request
from tools.aoi import AoiSummary
from tools.areas import PixelArea
from tools.masks import MaskKind
from tools.orientation import Orientation
from tools.regions import RegionSummary
from tools.verify import Verification
from tools.vlm import VLMReply

STATE_VERSION = 2
"""Bumped when the checkpointed shape changes; a thread saved under another version is refused by name."""


class MaskSpec(BaseModel):
    """The user's change-mask file for the thread's pair, kept for the whole thread."""

    path: str
    kind: MaskKind = "auto"
    category: str | None = None


class PairFacts(BaseModel):
    """The verifier's typed result for this turn: every rule on the mask, per-region change and the pixel size."""

    verification: Verification
    regions: RegionSummary
    area: PixelArea
    grey_date: Literal["t1", "t2"] | None = Field(
        None, description="The date that had no colour while the other had: both were compared in grey."
    )
    orientation: Orientation | None = Field(
        None, description="How the raster faces the map when it is not north-up (compass words, side names)."
    )
    aoi: AoiSummary | None = Field(None, description="The thread's areas of interest and their zonal figures.")


class Reconciled(BaseModel):
    """This turn's facts after weighing the verifiers against the model, and the disagreements found."""

    facts: dict[str, Fact] = Field(default_factory=dict)
    conflicts: list[Conflict] = Field(default_factory=list)
    model_parsed: ModelParse | None = None


class ModelExchange(BaseModel):
    """One instruction to DeltaVLM and its text: the dialog history of later turns."""

    instruction: str
    text: str | None = None


class TurnRecord(BaseModel):
    """One finished turn, as ``Agent.history`` returns it."""

    question: str
    request: Request
    answer: Answer
    model: ModelExchange | None = None


Artefact = Literal["overlay", "geojson", "gpkg", "shp", "mask_geotiff"]


class TurnState(BaseModel):
    """What a thread keeps between turns and what a turn carries from node to node."""

    version: int = STATE_VERSION
    pair_id: str = ""
    """Content hash of the pair this thread is about; a thread is bound to one pair."""
    pair_name: str = ""
    store_key: str = ""
    """The pair store's entry for this turn (``graphs.pair_store.PairKey``: pixels, georeference, GSD, mask)."""
    pair_paths: list[str] | None = None
    """t1, t2 paths when the pair came from files (reload after a restart)."""
    mask: MaskSpec | None = None
    gsd_m: float | None = None
    """The user's ground sampling distance (metres per pixel) for a plain pair; a georeference wins over it."""
    aoi: str | None = None
    """The user's areas-of-interest file (GeoJSON, GeoPackage, Shapefile), kept for the whole thread."""
    question: str = ""
    """The current question, as typed (data only)."""
    turn: int = 0
    request: Request | None = None
    """The typed request read from the current question; the graph's routers read it."""
    instruction: str | None = None
    """What DeltaVLM is asked this turn (None: the model has nothing to add)."""
    facts: PairFacts | None = None
    reply: VLMReply | None = None
    reconciled: Reconciled | None = None
    ledger: dict[str, Fact] = Field(default_factory=dict)
    """Established facts (changed, counts, cells, caption) with source, confidence and turn."""
    answer: Answer | None = None
    artefacts: dict[Artefact, str] = Field(default_factory=dict)
    turns: Annotated[list[TurnRecord], operator.add] = Field(default_factory=list)
    """Every finished turn."""


CHECKPOINTED_TYPES: tuple[type[BaseModel], ...] = (
    MaskSpec,
    PairFacts,
    Reconciled,
    TurnRecord,
    Request,
    VLMReply,
    Answer,
    Fact,
)
"""The typed values a checkpoint may hold (the serializer revives these classes and no others)."""
