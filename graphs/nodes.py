"""The nodes of the conversation graph: each runs tools or asks the policy, and returns the state keys it changes.

Heavy objects (pixels, masks, verdicts) live in the context's :class:`~graphs.pair_store.PairStore`, keyed by the
pair's content hash, never in the checkpointed state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime

from graphs.context import GraphContext
from graphs.state import ThreadState
from tools.areas import pixel_area
from tools.geojson import changes_geojson, describe_export, geojson_file_name, write_geojson
from tools.georef import unplaced_hint
from tools.naming import file_safe_name
from tools.orientation import orientation_of
from tools.overlay import render_overlay, save_png
from tools.regions import summarize_regions
from tools.verify import Verification


def route_node(state: ThreadState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    turns = state.get("turns") or []
    ctx = runtime.context
    orientation = orientation_of(ctx.store.get(state["pair_id"]).pair.georef)
    request = ctx.policy.read(state["question"], turns, orientation)
    return {"route": request, "turn": len(turns), "model_reply": None, "verification": None}


def _compact(verification: Verification) -> dict[str, Any]:
    """The verifier's numbers as plain JSON values for the state."""
    s = verification.summary
    return {
        "changed": s.changed,
        "changed_pixels": s.changed_pixels,
        "changed_fraction": s.changed_fraction,
        "counts": s.counts,
        "changed_regions": s.changed_regions,
        "cells": s.cells,
        "category_cells": s.category_cells,
        "cell_fractions": s.cell_fractions,
        "valid_fraction": s.valid_fraction,
        "no_data_cells": s.no_data_cells,
        "source": verification.source.model_dump(),
        "rules": {
            "counts": verification.counts.rule,
            "grid": verification.grid.rule,
            "binary": verification.binary.rule,
        },
    }


def verify_node(state: ThreadState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    """The verifiers' numbers, with per-region change and ground areas (computed once per pair and pixel size)."""
    ctx = runtime.context
    mask, verification = ctx.store.verified(state["pair_id"], ctx.rules)
    entry = ctx.store.get(state["pair_id"])
    gsd = state.get("gsd_m")
    key = ("regions", gsd)
    if key not in entry.derived:
        area, row_areas = pixel_area(entry.pair.georef, entry.pair.shape[0], gsd)
        regions = summarize_regions(mask.class_mask, ctx.rules, row_areas)
        entry.derived[key] = (regions.model_dump(), area.model_dump())
    regions, area = entry.derived[key]
    orientation = orientation_of(entry.pair.georef)
    facing = None if orientation is None or orientation.north_up else orientation.model_dump()
    return {"verification": {**_compact(verification), "regions": regions, "area": area, "orientation": facing}}


def perceive_node(state: ThreadState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    """Ask DeltaVLM what the policy chose to ask, with the thread's earlier exchanges as the dialog."""
    ctx = runtime.context
    assert ctx.vlm is not None
    instruction = ctx.policy.model_instruction(state["route"], state["question"])
    assert instruction is not None
    history = [
        (t["model"]["instruction"], t["model"]["text"])
        for t in state.get("turns") or []
        if t.get("model") and t["model"].get("text")
    ]
    entry = ctx.store.get(state["pair_id"])
    return {"model_reply": ctx.vlm.ask(entry.pair, instruction, history).model_dump()}


def needs_facts(state: ThreadState, runtime: Runtime[GraphContext]) -> bool:
    return runtime.context.policy.needs_facts(state["route"])


def needs_model(state: ThreadState, runtime: Runtime[GraphContext]) -> bool:
    ctx = runtime.context
    return ctx.vlm is not None and ctx.policy.model_instruction(state["route"], state["question"]) is not None


def reconcile_node(state: ThreadState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    return runtime.context.policy.reconcile(state)


def compose_node(state: ThreadState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    return runtime.context.policy.compose(state, runtime.context.vlm is not None)


def wants_artefacts(state: ThreadState, runtime: Runtime[GraphContext]) -> bool:
    return bool(runtime.context.policy.artefacts(state["route"]))


def export_node(state: ThreadState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    """Write the overlay and/or GeoJSON for this turn and attach their paths to the answer."""
    ctx = runtime.context
    wanted = ctx.policy.artefacts(state["route"])
    entry = ctx.store.get(state["pair_id"])
    mask, verification = ctx.store.verified(state["pair_id"], ctx.rules)
    thread_id = str(get_config()["configurable"]["thread_id"])
    # One folder per pair and thread: two conversations about the same pair must not overwrite each other's files.
    folder = Path(ctx.artefact_dir) / state["pair_id"][:16] / file_safe_name(thread_id, "thread")
    turn = state["turn"] + 1
    artefacts: dict[str, str] = {}
    if "overlay" in wanted:
        artefacts["overlay"] = str(
            save_png(render_overlay(entry.pair, mask, verification), folder / f"turn{turn}_overlay.png")
        )
    notes = []
    if "geojson" in wanted:
        georef = entry.pair.georef
        collection = changes_geojson(
            verification, mask, georef, pair_name=entry.pair.name, objects=True, crs=ctx.geojson_crs, turn=turn
        )
        name = geojson_file_name(entry.pair.name, turn, georef)
        artefacts["geojson"] = str(write_geojson(collection, folder / name))
        notes.append(describe_export(collection))
        if georef is None:
            notes.append(unplaced_hint(entry.pair))
    answer = dict(state["answer"])
    answer["artefacts"] = artefacts
    answer["text"] += "".join(f" {note}" for note in notes)
    answer["text"] += "".join(f" {kind.capitalize()}: {path}." for kind, path in artefacts.items())
    return {"answer": answer}
