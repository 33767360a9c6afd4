"""The work done for one pair: decode, mask and verify once, then one conversation asks every question."""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent import providers
from agent.batch.catalog import CatalogEntry, display_path
from agent.settings import AgentSettings
from tools.geojson import changes_geojson
from tools.georef import place_pair
from tools.masks import ChangeMask, MaskKind, MaskProvider
from tools.pairs import ImagePair, load_pair
from tools.raster import InputError
from tools.verify import Verification, verify

# ------------------------------------------------------------------------------------------ the pair work


if TYPE_CHECKING:
    from agent.api import Agent


class BatchConfig(BaseModel):
    """Everything a worker needs to process a pair: shipped as JSON to processes and Ray workers."""

    questions: list[str]
    agent: AgentSettings
    mask_kind: MaskKind = "auto"
    mask_category: Literal["road", "building"] | None = None
    catalog_folder: Path


class PairJob(BaseModel):
    index: int
    entry: CatalogEntry


class PairOutcome(BaseModel):
    """What one pair produced: its answer records (JSON lines) and part, or its error record."""

    index: int
    key: str
    records: list[str] = Field(default_factory=list)
    part: str | None = None
    error: str | None = None


class Prepared(BaseModel):
    """A pair decoded, masked and verified: the CPU stage's output (picklable)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    job: PairJob
    pair: ImagePair
    mask: ChangeMask
    verification: Verification
    part: str
    seconds: float


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _error_record(
    index: int, key: str, stage: str, error: str, kind: str, entry: CatalogEntry | None, base: Path
) -> str:
    record = {"pair": key, "pair_index": index, "stage": stage, "error": error, "type": kind}
    if entry is not None:
        record |= {"t1": display_path(entry.t1, base), "t2": display_path(entry.t2, base)}
    return compact_json(record)


def _failure(job: PairJob, stage: str, exc: BaseException, config: BatchConfig) -> PairOutcome:
    if isinstance(exc, InputError):
        message = str(exc)
    else:  # a bug, not bad input: keep going, but say so and where
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
        message = f"internal error{at}: {type(exc).__name__}: {exc}"
    return PairOutcome(
        index=job.index,
        key=job.entry.id,
        error=_error_record(
            job.index, job.entry.id, stage, message, type(exc).__name__, job.entry, config.catalog_folder
        ),
    )


def mask_provider(entry: CatalogEntry, config: BatchConfig) -> MaskProvider:
    """The row's mask when it has one, else the settings' provider: the agent's own recipe (``agent.providers``),
    so the agent recognises the verification handed to it (``Agent.adopt``) and does not redo it."""
    return providers.mask_provider(config.agent, entry.mask, config.mask_kind, config.mask_category)


def _part(job: PairJob, pair: ImagePair, mask: ChangeMask, verification: Verification, config: BatchConfig) -> str:
    """The pair's summary row and GeoJSON features (cells and objects), rebuilt into the run's outputs at the end."""
    collection = changes_geojson(
        verification, mask, pair.georef, pair_name=job.entry.id, objects=True, crs="wgs84", gsd_m=pair.gsd_m
    )
    summary = verification.summary
    categorical = verification.source.categorical
    row = {
        "pair": job.entry.id,
        "status": "ok",
        "t1": display_path(job.entry.t1, config.catalog_folder),
        "t2": display_path(job.entry.t2, config.catalog_folder),
        "changed": "yes" if summary.changed else "no",
        "road": summary.counts["road"] if categorical else "",
        "building": summary.counts["building"] if categorical else "",
        "changed_regions": summary.changed_regions,
        "changed_cells": " ".join(summary.cells),
        "changed_fraction": f"{summary.changed_fraction:.6f}",
        "valid_fraction": f"{summary.valid_fraction:.6f}",
        "no_data_cells": " ".join(summary.no_data_cells),
        "mask_provider": verification.source.provider,
        "mask_confidence": f"{verification.source.confidence:.3f}",
        "questions": len(config.questions),
        "error": "",
    }
    return compact_json({"key": job.entry.id, "georeferenced": pair.georef is not None, "row": row, **collection})


def prepare_pair(job: PairJob, config: BatchConfig) -> Prepared | PairOutcome:
    """Decode the pair once, make and verify its mask once (CPU work); a failure becomes the pair's error."""
    started = time.perf_counter()
    try:
        pair = place_pair(
            load_pair(job.entry.t1, job.entry.t2, gsd_m=job.entry.gsd), bounds=job.entry.bounds, crs=job.entry.crs
        )
        pair = pair.model_copy(update={"scene": job.entry.id})  # unique in the batch: exports never collide
    except Exception as exc:
        return _failure(job, "load", exc, config)
    try:
        mask = mask_provider(job.entry, config).provide(pair)
        verification = verify(mask, config.agent.rules)
        part = _part(job, pair, mask, verification, config)
    except Exception as exc:
        return _failure(job, "mask", exc, config)
    seconds = time.perf_counter() - started
    return Prepared(job=job, pair=pair, mask=mask, verification=verification, part=part, seconds=seconds)


def make_agent(config: BatchConfig) -> Agent:
    """One agent per worker, shared by all its pairs (the model, when any, is loaded once per worker)."""
    from agent.api import Agent

    return Agent(config.agent.model_copy(update={"checkpoint_db": None}))


def converse(prepared: Prepared, agent: Agent, config: BatchConfig) -> PairOutcome:
    """Ask every question about the pair in order, in one thread named after the pair."""
    job = prepared.job
    entry = job.entry
    thread = entry.id
    agent.adopt(
        prepared.pair,
        prepared.mask,
        prepared.verification,
        mask_file=entry.mask,
        mask_kind=config.mask_kind,
        mask_category=config.mask_category,
    )
    records = []
    try:
        for number, question in enumerate(config.questions):
            started = time.perf_counter()
            answer = agent.ask(
                prepared.pair,
                question,
                thread_id=thread,
                mask=entry.mask if number == 0 else None,
                mask_kind=config.mask_kind,
                mask_category=config.mask_category,
                gsd_m=entry.gsd,
                aoi=entry.aoi if number == 0 else None,
            )
            timing = {"answer_s": round(time.perf_counter() - started, 4)}
            if number == 0:
                timing["prepare_s"] = round(prepared.seconds, 4)
            record = {
                "pair": entry.id,
                "pair_index": job.index,
                "question_index": number,
                "question": question,
                "answer": answer.model_dump(mode="json"),
                "timing": timing,
            }
            records.append(compact_json(record))
    except Exception as exc:
        return _failure(job, "answer", exc, config)
    finally:
        agent.end_thread(thread)
    return PairOutcome(index=job.index, key=entry.id, records=records, part=prepared.part)


def process_pair(job: PairJob, agent: Agent, config: BatchConfig) -> PairOutcome:
    """Both stages in one process (the local engine)."""
    prepared = prepare_pair(job, config)
    if isinstance(prepared, PairOutcome):
        return prepared
    return converse(prepared, agent, config)
