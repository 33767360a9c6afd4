"""Batch runs: a fixed list of questions over a catalog of image pairs, every answer on disk, resumable.

The third way in (after the page and ``Agent().ask``): ``changeagent batch CATALOG --questions Q --out DIR``.

Catalogs (:func:`read_catalog`) are a CSV or JSONL of ``id, t1, t2[, mask]``, a folder in the LEVIR
layout (``A/``, ``B/``, optional ``label/``, pairs matched by file name) or a STAC ItemCollection (two
items of one place make a pair; see :func:`read_catalog`). Relative paths resolve against the catalog's
folder and nothing may resolve outside the allowed root, so a catalog from elsewhere cannot make the run
read arbitrary files. A bad row does not stop the run: it becomes an ``errors.jsonl`` record.

Work is done once per pair: the pair is decoded once, its mask made and verified once
(:func:`prepare_pair`, CPU work), then one conversation thread (thread id = pair id) asks every question in
order (:func:`converse`), so follow-ups ("where?", "export that") work as in the chat and DeltaVLM, when
configured, encodes the pair once through its feature cache.

Exactness under kills: a pair's answer records are appended to ``answers.jsonl`` in ONE write, then
flushed and fsynced: that append is the pair's commit. Its per-pair results (summary row, GeoJSON
features) are written to ``parts/`` first, atomically, so a committed pair always has them. On a rerun the
output folder is scanned: pairs with every question answered exactly once (and their part) are kept and
skipped, torn lines and partial pairs are dropped by an atomic rewrite and redone. ``manifest.json`` holds
the questions, a digest of each catalog item and the settings; a rerun with different ones is refused and
the difference named. At the end ``answers.jsonl`` and ``errors.jsonl`` are put in catalog order, and
``summary.csv`` and ``changes.geojson`` are rebuilt from the parts, so the outputs do not depend on the
engine, the number of workers or how often the run was interrupted (timings apart)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from agent.batch.catalog import Engine, read_catalog, read_questions
from agent.batch.local_engine import run_local
from agent.batch.manifest import build_manifest, compare_manifest
from agent.batch.outputs import (
    ANSWERS,
    ARTEFACTS,
    CHANGES,
    CHANGES_GPKG,
    CHANGES_PIXEL,
    CHANGES_PIXEL_GPKG,
    ERRORS,
    LOCK,
    MANIFEST,
    PARTS,
    SUMMARY,
    append_durably,
    finalize,
    part_path,
    recover,
)
from agent.batch.pair_work import BatchConfig, PairJob, PairOutcome, compact_json
from agent.batch.ray_engine import run_ray
from agent.settings import AgentSettings
from tools.atomic import write_atomic
from tools.masks import MaskKind
from tools.raster import InputError, ensure_folder

# ---------------------------------------------------------------------------------------------- the runner


class BatchOptions(BaseModel):
    """One batch run, as the CLI or Python states it."""

    catalog: Path
    questions: Path
    out: Path
    engine: Engine = "local"
    workers: int | None = Field(None, ge=1, description="Local: processes (1 = this one). Ray: pool size.")
    force: bool = Field(False, description="Delete this run's earlier outputs in ``out`` and start over.")
    retry_errors: bool = Field(False, description="Run again the pairs that failed in an earlier run.")
    root: Path | None = Field(None, description="Allowed folder for catalog paths (default: the catalog's).")
    stac_asset: str | None = None
    mask_kind: MaskKind = "auto"
    mask_category: Literal["road", "building"] | None = None
    gsd_m: float | None = Field(None, gt=0, description="Metres per pixel of every pair whose row names none.")
    progress: bool = Field(True, description="Show a progress bar when stderr is a terminal.")
    agent: AgentSettings = Field(default_factory=AgentSettings)


class BatchReport(BaseModel):
    out: Path
    engine: Engine
    workers: int
    pairs: int = Field(description="Items in the catalog (pairs and bad rows).")
    done_before: int = Field(description="Pairs finished (answered or failed) by an earlier run.")
    answered: int = Field(description="Pairs answered by this run.")
    failed: int = Field(description="Pairs that failed in this run.")
    repaired: int = Field(0, description="Torn or partial records of an earlier run that were dropped and redone.")
    seconds: float
    pairs_per_s: float
    outputs: dict[str, str]


def _clear(out: Path) -> None:
    """``--force``: remove only what a batch run writes."""
    for name in (ANSWERS, ERRORS, SUMMARY, CHANGES, CHANGES_PIXEL, CHANGES_GPKG, CHANGES_PIXEL_GPKG, MANIFEST):
        (out / name).unlink(missing_ok=True)
    for name in (PARTS, ARTEFACTS):
        shutil.rmtree(out / name, ignore_errors=True)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One run per output folder; the lock dies with the process, so a killed run never blocks the next."""
    with open(out / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise InputError(f"another batch run is writing to {out}; wait for it or choose another --out") from exc
        yield


class _Progress:
    """tqdm to stderr when it is a terminal and wanted; silent otherwise (``--json``, logs, CI)."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(
                total=total, initial=initial, unit="pair", desc="batch", dynamic_ncols=True, file=sys.stderr
            )

    def update(self, failed: int) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if failed:
                self.bar.set_postfix(errors=failed, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_batch(options: BatchOptions, *, on_outcome: Callable[[PairOutcome], None] | None = None) -> BatchReport:
    """Run (or resume) a batch job; see the module docstring for the guarantees."""
    started = time.perf_counter()
    catalog = read_catalog(options.catalog, root=options.root, stac_asset=options.stac_asset)
    catalog = catalog.with_default_gsd(options.gsd_m)
    questions = read_questions(options.questions)
    out = options.out.resolve()
    ensure_folder(out, "--out")
    agent_settings = options.agent.model_copy(update={"artefact_dir": out / ARTEFACTS, "checkpoint_db": None})
    config = BatchConfig(
        questions=questions,
        agent=agent_settings,
        mask_kind=options.mask_kind,
        mask_category=options.mask_category,
        catalog_folder=catalog.folder,
    )
    manifest = build_manifest(catalog, options.questions, config)
    with _locked(out):
        if options.force:
            _clear(out)
        manifest_path = out / MANIFEST
        if manifest_path.exists():
            compare_manifest(json.loads(manifest_path.read_text(encoding="utf-8")), manifest, out)
        else:
            leftovers = [n for n in (ANSWERS, ERRORS) if (out / n).exists()]
            if leftovers:
                raise InputError(
                    f"{out} holds {', '.join(leftovers)} but no {MANIFEST}, so it cannot be resumed safely; "
                    "rerun with --force to start over, or choose another --out"
                )
            write_atomic(manifest_path, json.dumps({**manifest, "created": datetime.now(UTC).isoformat()}, indent=1))
        (out / PARTS).mkdir(exist_ok=True)
        state = recover(out, len(questions), retry_errors=options.retry_errors)
        done = state.answered | state.failed
        pending = [item for item in catalog.items if item.key not in done]
        done_before = len(catalog.items) - len(pending)
        counts = {"answered": 0, "failed": 0}
        progress = _Progress(len(catalog.items), done_before, options.progress)

        def commit(outcome: PairOutcome) -> None:
            if outcome.error is not None:
                append_durably(out / ERRORS, outcome.error + "\n")
                counts["failed"] += 1
            else:
                assert outcome.part is not None
                write_atomic(part_path(out, outcome.key), outcome.part, sync_dir=False)
                append_durably(out / ANSWERS, "".join(line + "\n" for line in outcome.records))
                counts["answered"] += 1
            progress.update(counts["failed"])
            if on_outcome is not None:
                on_outcome(outcome)

        try:
            for item in pending:
                if item.problem is not None:
                    record = {"pair": item.key, "pair_index": item.index, "stage": "catalog"}
                    record |= {"error": item.problem.error, "type": "CatalogError", "id": item.problem.id}
                    commit(PairOutcome(index=item.index, key=item.key, error=compact_json(record)))
            jobs = [PairJob(index=item.index, entry=item.entry) for item in pending if item.entry is not None]
            if options.engine == "ray":
                workers = run_ray(jobs, config, options.workers, commit)
            else:
                workers = options.workers or 1
                run_local(jobs, config, workers, commit)
        finally:
            progress.close()
        outputs = finalize(out, catalog)
    seconds = time.perf_counter() - started
    processed = counts["answered"] + counts["failed"]
    return BatchReport(
        out=out,
        engine=options.engine,
        workers=workers,
        pairs=len(catalog.items),
        done_before=done_before,
        answered=counts["answered"],
        failed=counts["failed"],
        repaired=state.dropped_records + state.dropped_errors,
        seconds=round(seconds, 3),
        pairs_per_s=round(processed / seconds, 3) if seconds > 0 else 0.0,
        outputs=outputs,
    )
