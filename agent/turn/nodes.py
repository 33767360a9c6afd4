"""The steps of a turn: plain functions over the typed :class:`~agent.turn.state.TurnState`.

Each takes ``(state, runtime)`` and returns the fields it changes; ``graphs.change_graph`` wires them in order and
its routers read ``state.request``. Heavy objects (pixels, masks, verdicts) live in the context's pair store,
keyed by the pair's content hash, never in the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from langgraph.config import get_config
from langgraph.runtime import Runtime

from agent.answering import compose_turn, export_notes
from agent.ledger import reconcile, verifier_facts
from agent.model_facts import MODEL_INSTRUCTIONS, model_facts
from agent.planner import LLMPlanner
from agent.reading import Request, orient_request, read_request
from agent.reading.request import AOI_REGION, FACT_ASKS, ReadingStep
from agent.settings import AgentSettings
from agent.turn.state import RECENT_TURNS, ModelExchange, PairFacts, Reconciled, TurnRecord, TurnState, remember
from graphs.change_graph import TurnNodes
from graphs.context import GraphContext
from graphs.pair_store import PairEntry
from graphs.turn_log import TurnLog
from tools.aoi import AoiLayer, AoiSummary, aoi_collection, aoi_figures, read_aoi
from tools.areas import pixel_area
from tools.geojson import changes_geojson, geojson_file_name, write_geojson
from tools.mask_geotiff import mask_file_name, write_mask_cog
from tools.naming import file_safe_name
from tools.orientation import Orientation, orientation_of
from tools.overlay import render_overlay, save_png
from tools.regions import summarize_regions
from tools.vector_export import file_suffix, write_vector

MODEL_KINDS = {"changed": "binary", "count": "count", "where": "locate", "describe": "caption"}
"""Whole-image asks DeltaVLM was trained on, by the release's question type."""


@dataclass
class TurnContext(GraphContext):
    """The graph's context plus what the agent's steps need: its settings, the planner, a model that failed."""

    settings: AgentSettings | None = None
    planner: LLMPlanner | None = None
    model_problem: str | None = None
    """Why the configured DeltaVLM is absent (it failed to load); every answer says so."""
    turn_log: TurnLog | None = None
    """Where each finished turn's record is kept (the recent window a restart reads comes from there)."""


def model_kind(request: Request) -> str | None:
    """The release's question type for a request, or None when DeltaVLM's fixed answers do not fit it."""
    if request.region != "image" or request.other_subject:
        return None
    if request.ask == "changed" and request.categories:
        return None
    return MODEL_KINDS.get(request.ask)


def model_instruction(request: Request, question: str) -> str | None:
    """The release's wording for the fixed question types, the user's words for open questions."""
    if request.ask == "open":
        return question
    kind = model_kind(request)
    return MODEL_INSTRUCTIONS[kind] if kind else None


def read(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, object]:
    """The typed request for the question, given the thread's earlier requests (the reader, or the planner)."""
    ctx = runtime.context
    window = state.recent[-RECENT_TURNS:]
    previous = [t.request for t in window]
    if ctx.planner is not None:
        request = ctx.planner.plan(state.question, previous, [(t.question, t.answer.text) for t in window])
    else:
        request = read_request(state.question, previous)
    request = orient_request(request, state.question, _orientation(ctx.store.get(state.store_key)))
    if request.region == AOI_REGION and state.aoi is None and request.aoi_pick is None:
        # "fields", "plots" without areas of interest loaded: the words are about the image, not the user's polygons
        request = request.with_step(ReadingStep(code="no_aoi"), region="image", rank=None)
    return {"request": request, "instruction": model_instruction(request, state.question), "turn": state.turns_done}


def verify(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, object]:
    """The verifiers' result, with per-region change and ground areas (computed once per pair and pixel size)."""
    ctx = runtime.context
    mask, verification = ctx.store.verified(state.store_key, ctx.rules)
    entry = ctx.store.get(state.store_key)
    key = ("regions", state.gsd_m)
    if key not in entry.derived:
        area, row_areas = pixel_area(entry.pair.georef, entry.pair.shape[0], state.gsd_m)
        # the rules the verification used (a provider may state a GSD-aware smallest object): one object count per
        # pair and rule set, in the count answer, the per-region figures and the export alike
        rules = verification.summary.settings
        entry.derived[key] = (summarize_regions(mask.class_mask, rules, row_areas), area)
    regions, area = entry.derived[key]
    orientation = _orientation(entry)
    turned = None if orientation is None or orientation.north_up else orientation
    aoi = _areas_of_interest(state, ctx)[1] if state.aoi is not None else None
    return {
        "facts": PairFacts(
            verification=verification,
            regions=regions,
            area=area,
            orientation=turned,
            aoi=aoi,
            grey_date=entry.pair.grey_date,
        )
    }


def _orientation(entry: PairEntry) -> Orientation | None:
    """How the pair's raster faces the map, worked out once per pair (the read and verify steps both use it)."""
    if "orientation" not in entry.derived:
        entry.derived["orientation"] = orientation_of(entry.pair.georef)
    return entry.derived["orientation"]


def _areas_of_interest(state: TurnState, ctx: TurnContext) -> tuple[AoiLayer, AoiSummary]:
    """The thread's areas of interest and their figures on the pair's mask, read and computed once per pair, file
    and pixel size (the verify step states them, the export step writes them)."""
    assert state.aoi is not None
    entry = ctx.store.get(state.store_key)
    key = ("aoi", state.aoi, state.gsd_m)
    if key not in entry.derived:
        mask, _ = ctx.store.verified(state.store_key, ctx.rules)
        layer = read_aoi(state.aoi)
        entry.derived[key] = (layer, aoi_figures(layer, mask, entry.pair.georef, ctx.rules, gsd_m=state.gsd_m))
    return entry.derived[key]


def perceive(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, object]:
    """Ask DeltaVLM what the read step chose, with the thread's earlier exchanges as the dialog."""
    ctx = runtime.context
    assert ctx.vlm is not None and state.instruction is not None
    window = state.recent[-RECENT_TURNS:]
    history = [(t.model.instruction, t.model.text) for t in window if t.model and t.model.text]
    entry = ctx.store.get(state.store_key)
    return {"reply": ctx.vlm.ask(entry.pair, state.instruction, history)}


def reconcile_facts(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, object]:
    """Weigh the verifiers against the model (``agent.ledger``) and update the thread's ledger."""
    assert state.request is not None
    settings = runtime.context.settings or AgentSettings()
    candidates = verifier_facts(state.facts.verification, state.turn) if state.facts else []
    parsed = None
    kind = model_kind(state.request)
    if state.reply and state.reply.text and kind:
        proposals, parsed = model_facts(state.reply.text, kind, settings.trust, state.turn)
        candidates.extend(proposals)
    facts, conflicts, ledger = reconcile(candidates, state.ledger, state.turn)
    return {"ledger": ledger, "reconciled": Reconciled(facts=facts, conflicts=conflicts, model_parsed=parsed)}


def compose(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, object]:
    """The answer of this turn (``agent.answering``), recorded in the thread."""
    assert state.request is not None
    ctx = runtime.context
    answer = compose_turn(
        state.question,
        state.request,
        turn=state.turn,
        facts=state.facts,
        ledger=state.ledger,
        reconciled=state.reconciled or Reconciled(),
        reply=state.reply,
        previous=[(t.request, t.answer) for t in state.recent],
        said=frozenset(state.said),
        reader="planner" if ctx.planner is not None else "reader",
        has_model=ctx.vlm is not None,
        model_problem=ctx.model_problem,
    )
    model = ModelExchange(instruction=state.reply.instruction, text=state.reply.text) if state.reply else None
    # The record keeps what later turns and Agent.history need; the verification is the pair store's, not history.
    kept = answer.model_copy(update={"verification": None})
    record = TurnRecord(turn=state.turn, question=state.question, request=state.request, answer=kept, model=model)
    if ctx.turn_log is not None:  # before the checkpoint: a crash in between leaves a record the rerun replaces
        ctx.turn_log.write(str(get_config()["configurable"]["thread_id"]), record.turn, record.model_dump_json())
    return {
        "answer": answer,
        "recent": remember(state.recent, [record]),
        "fact_turn": record.turn if state.request.ask in FACT_ASKS else state.fact_turn,
        "said": answer.said,
        "turns_done": state.turn + 1,
    }


def export(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, object]:
    """Write the overlay and/or GeoJSON for this turn and attach their paths and notes to the answer."""
    assert state.request is not None and state.answer is not None
    ctx = runtime.context
    wanted = state.request.artefacts
    entry = ctx.store.get(state.store_key)
    mask, verification = ctx.store.verified(state.store_key, ctx.rules)
    thread_id = str(get_config()["configurable"]["thread_id"])
    # One folder per pair and thread: two conversations about the same pair must not overwrite each other's files.
    folder = Path(ctx.artefact_dir) / state.pair_id[:16] / file_safe_name(thread_id, "thread")
    turn = state.turn + 1
    artefacts: dict[str, str] = {}
    collection = None
    if "overlay" in wanted:
        artefacts["overlay"] = str(
            save_png(render_overlay(entry.pair, mask, verification), folder / f"turn{turn}_overlay.png")
        )
    if "geojson" in wanted:
        georef = entry.pair.georef
        if state.request.region == AOI_REGION and state.aoi is not None and georef is not None:
            layer, summary = _areas_of_interest(state, ctx)  # the user's layer, its polygons' figures as columns
            collection = aoi_collection(layer, summary, georef, ctx.geojson_crs)
            stem = (
                f"{file_safe_name(entry.pair.name, 'pair')}_turn{turn}_{file_safe_name(Path(layer.source).stem, 'aoi')}"
            )
        else:
            collection = changes_geojson(
                verification,
                mask,
                georef,
                pair_name=entry.pair.name,
                objects=True,
                crs=ctx.geojson_crs,
                turn=turn,
                gsd_m=state.gsd_m,
            )
            stem = Path(geojson_file_name(entry.pair.name, turn, georef)).stem
        fmt = state.request.export_format
        written = write_vector(collection, folder / f"{stem}{file_suffix(fmt)}")
        artefacts[fmt] = str(written[0])
        if fmt != "geojson":  # the GeoJSON is written too: the page and batch read it
            artefacts["geojson"] = str(write_geojson(collection, folder / f"{stem}.geojson"))
        artefacts["mask_geotiff"] = str(
            write_mask_cog(mask, georef, folder / mask_file_name(entry.pair.name, turn, georef))
        )
    notes = export_notes(collection, entry.pair, artefacts, state.request.language, state.request.unwritten_format)
    answer = state.answer.model_copy(update={"artefacts": artefacts, "text": state.answer.text + notes})
    return {"answer": answer, "artefacts": artefacts}


NODES = TurnNodes(
    read=read, verify=verify, perceive=perceive, reconcile=reconcile_facts, compose=compose, export=export
)
"""The agent's steps, in the shape ``graphs.change_graph.build_graph`` wires."""
