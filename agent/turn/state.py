"""The typed state of one conversation thread: what a turn carries from node to node, and what the graph checkpoints.

Every field is a typed value: the request the question was read as, the verifier's result, the model's reply, the
reconciled facts and the answer travel as the same pydantic objects from node to node, so no node flattens a
result for another to rebuild. Only what the next turn needs is checkpointed (the pair's binding, the ledger, the
notes said, where the turn log stands): this turn's values are untracked channels, and the recent turns a follow-up
reads are rebuilt from the turn log, where each turn's record is kept once. A checkpoint then stays small, and a
turn neither loads nor saves the last turn's answer and evidence again. Pixels, masks and models stay out: the
state names the pair by its content hash (and its files, so that a restarted process can reload it); they live in
the pair store.
"""

from __future__ import annotations

from typing import Annotated, Literal

from langgraph.channels import UntrackedValue
from pydantic import BaseModel, Field

from agent.answer import Answer
from agent.ledger import Conflict, Fact
from agent.model_facts import ModelParse
from agent.reading import Request
from agent.reading.request import FACT_ASKS
from tools.aoi import AoiSummary
from tools.areas import PixelArea
from tools.masks import MaskKind
from tools.orientation import Orientation
from tools.regions import RegionSummary
from tools.verify import Verification
from tools.vlm import VLMReply

STATE_VERSION = 4
"""Bumped when the checkpointed shape changes; a thread saved under another version is migrated or refused by
name. Version 3 kept this turn's values and the recent turns in the checkpoint too; it reads as version 4 (its
turns are all in the turn log)."""


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
    """One finished turn, as ``Agent.history`` returns it (kept in the thread's turn log, ``graphs.turn_log``)."""

    turn: int = 0
    question: str
    request: Request
    answer: Answer
    model: ModelExchange | None = None


RECENT_TURNS = 8
"""Earlier turns a follow-up may draw on (the reader's requests, the planner's and DeltaVLM's dialog)."""


def remember(kept: list[TurnRecord], new: list[TurnRecord]) -> list[TurnRecord]:
    """The thread's recent turns: the newest RECENT_TURNS, plus the last factual one ("why?" explains it)."""
    turns = kept + new
    recent = turns[-RECENT_TURNS:]
    fact = last_fact(turns)
    return [fact, *recent] if fact is not None and fact.turn < recent[0].turn else recent


def last_fact(turns: list[TurnRecord]) -> TurnRecord | None:
    """The newest turn that stated facts (an explanation explains that one)."""
    return next((t for t in reversed(turns) if t.request.ask in FACT_ASKS), None)


def recent_turns(turns_done: int, fact_turn: int | None) -> list[int]:
    """Which turns' records make up the recent window of a thread (read from the turn log on a restart)."""
    window = list(range(max(0, turns_done - RECENT_TURNS), turns_done))
    return [fact_turn, *window] if fact_turn is not None and window and fact_turn < window[0] else window


def note_union(kept: list[str], new: list[str]) -> list[str]:
    """Once-per-thread notes said so far, each once."""
    return list(dict.fromkeys(kept + new))


def inline_turns(turns: list[object]) -> tuple[list[TurnRecord], dict[str, object]]:
    """A version-2 checkpoint held every turn in itself: its records, numbered, and the fields a version-3
    state keeps instead (the turns go to the turn log; ``Agent`` moves them on the thread's next turn)."""
    records = [
        TurnRecord.model_validate(t.model_dump() if isinstance(t, BaseModel) else t).model_copy(update={"turn": i})
        for i, t in enumerate(turns)
    ]
    said = note_union([], [note for r in records for note in r.answer.said])
    fact = last_fact(records)
    return records, {
        "version": STATE_VERSION,
        "turns_done": len(records),
        "recent": remember([], records),
        "fact_turn": fact.turn if fact is not None else None,
        "said": said,
    }


Artefact = Literal["overlay", "geojson", "gpkg", "shp", "mask_geotiff"]


ThisTurn = UntrackedValue
"""A channel the graph passes from node to node within a turn and never checkpoints."""


class TurnState(BaseModel):
    """What a thread keeps between turns and what a turn carries from node to node (``ThisTurn`` fields: only the
    latter)."""

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
    request: Annotated[Request | None, ThisTurn] = None
    """The typed request read from the current question; the graph's routers read it."""
    instruction: Annotated[str | None, ThisTurn] = None
    """What DeltaVLM is asked this turn (None: the model has nothing to add)."""
    facts: Annotated[PairFacts | None, ThisTurn] = None
    reply: Annotated[VLMReply | None, ThisTurn] = None
    reconciled: Annotated[Reconciled | None, ThisTurn] = None
    ledger: dict[str, Fact] = Field(default_factory=dict)
    """Established facts (changed, counts, cells, caption) with source, confidence and turn."""
    answer: Annotated[Answer | None, ThisTurn] = None
    artefacts: Annotated[dict[Artefact, str], ThisTurn] = Field(default_factory=dict)
    turns_done: int = 0
    """Finished turns; their records are in the turn log (``Agent.history``), not in the checkpoint."""
    fact_turn: int | None = None
    """The newest turn that stated facts: the recent window keeps it however old ("why?" explains it)."""
    recent: Annotated[list[TurnRecord], ThisTurn] = Field(default_factory=list)
    """The turns a follow-up reads (``remember``): handed in by the Agent (the window it kept, or the turn log's
    records ``recent_turns`` names), never checkpointed."""
    said: Annotated[list[str], note_union] = Field(default_factory=list)
    """Once-per-thread notes already said in this thread."""

    def between_turns(self) -> TurnState:
        """What the next turn starts from: the checkpointed fields and the recent window, without this turn's
        values (the same state a restart rebuilds from the checkpoint and the turn log)."""
        cleared = [n for n, f in TurnState.model_fields.items() if ThisTurn in f.metadata and n != "recent"]
        return self.model_copy(
            update={n: TurnState.model_fields[n].get_default(call_default_factory=True) for n in cleared}
        )


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
