"""The ``batch`` and ``scene`` subcommands of ``changeagent`` (registered by :func:`add_batch_parsers`).

Kept apart from ``agent/cli.py`` so that the interactive commands do not import the batch machinery, and
the heavy imports (LangGraph, Ray, rasterio windows) happen only when one of these commands runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _model_settings(args: argparse.Namespace) -> Any:
    from agent.settings import ModelSettings

    if args.endpoint:
        return ModelSettings(backend="http", endpoint=args.endpoint, token=os.environ.get("CHANGEAGENT_TOKEN"))
    if args.model_config:
        return ModelSettings(backend="in-process", config=args.model_config, checkpoint=args.checkpoint)
    return ModelSettings()


def cmd_batch(args: argparse.Namespace) -> int:
    from agent.batch import BatchOptions, run_batch
    from agent.settings import AgentSettings

    options = BatchOptions(
        catalog=args.catalog,
        questions=args.questions,
        out=args.out,
        engine=args.engine,
        workers=args.workers,
        force=args.force,
        retry_errors=args.retry_errors,
        root=args.root,
        stac_asset=args.stac_asset,
        mask_kind=args.mask_kind,
        mask_category=args.mask_category,
        progress=not args.json,
        agent=AgentSettings(model=_model_settings(args)),
    )
    report = run_batch(options)
    if args.json:
        print(report.model_dump_json(indent=1))
        return 0
    resumed = f", {report.done_before} done by an earlier run" if report.done_before else ""
    repaired = f"; dropped and redid {report.repaired} torn/partial record(s)" if report.repaired else ""
    print(
        f"batch: {report.pairs} catalog item(s){resumed}; this run answered {report.answered} and failed "
        f"{report.failed} in {report.seconds:.1f} s ({report.pairs_per_s:.2f} pairs/s, {report.engine} engine, "
        f"{report.workers} worker(s)){repaired}"
    )
    for kind, path in report.outputs.items():
        print(f"wrote {kind}: {path}")
    if report.failed or "errors" in report.outputs:
        print(f"some pairs could not be analysed; see {report.outputs.get('errors')}", file=sys.stderr)
    return 0


def cmd_scene(args: argparse.Namespace) -> int:
    from agent.scene import analyse_scene

    result = analyse_scene(
        args.t1,
        args.t2,
        args.out,
        tile=args.tile,
        overlap=args.overlap,
        mask=args.mask,
        mask_kind=args.mask_kind,
        mask_category=args.mask_category,
        resample=args.resample,
        rgb_bands=args.rgb_bands,
        workers=args.workers,
        progress=not args.json,
    )
    if args.json:
        print(result.model_dump_json(indent=1))
        return 0
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(result.text)
    for kind, path in result.outputs.items():
        print(f"wrote {kind}: {path}")
    return 0


def _add_mask_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--mask-kind",
        choices=["auto", "levir-mci", "index", "binary"],
        default="auto",
        help=f"how to read {what}: LEVIR-MCI values (0/128 road/255 building), class indices, or binary",
    )
    parser.add_argument(
        "--mask-category",
        choices=["road", "building"],
        help="with binary masks: the category their change belongs to (LEVIR-CD labels are buildings)",
    )


def add_batch_parsers(subparsers: Any) -> None:
    """Register ``batch`` and ``scene`` on the ``changeagent`` subparsers (errors exit 2 through ``main``)."""
    batch = subparsers.add_parser(
        "batch",
        help="run a list of questions over a catalog of pairs (resumable; local or Ray)",
        description=(
            "Answers every question about every pair of CATALOG, one conversation per pair, into --out: "
            "answers.jsonl, changes.geojson, summary.csv, errors.jsonl. Rerun the same command to resume."
        ),
    )
    batch.add_argument(
        "catalog",
        type=Path,
        help="CSV or JSONL (id, t1, t2[, mask]), a LEVIR folder (A/, B/[, label/]) or a STAC ItemCollection .json",
    )
    batch.add_argument(
        "--questions",
        type=Path,
        required=True,
        help="text file (one question per line, # comments) or YAML list",
    )
    batch.add_argument("--out", type=Path, required=True, help="output folder (resumed when it holds this job)")
    batch.add_argument("--engine", choices=["local", "ray"], default="local", help="local processes or Ray Data")
    batch.add_argument(
        "--workers", type=_positive, help="local: processes (default 1); ray: pool size (default: the cluster's CPUs)"
    )
    batch.add_argument("--force", action="store_true", help="discard this folder's earlier run and start over")
    batch.add_argument("--retry-errors", action="store_true", help="run the pairs that failed before again")
    batch.add_argument("--root", type=Path, help="allow catalog paths anywhere under this folder")
    batch.add_argument("--stac-asset", help="STAC: the asset key holding the image (default: image/visual/data)")
    _add_mask_options(batch, "the catalog's masks")
    batch.add_argument("--model-config", help="run DeltaVLM in process with this config (tiny, full, or YAML)")
    batch.add_argument("--checkpoint", type=Path, help="DeltaVLM weights for --model-config")
    batch.add_argument("--endpoint", help="URL of a DeltaVLM server (token from $CHANGEAGENT_TOKEN)")
    batch.add_argument("--json", action="store_true", help="no progress bar; print the run's report as JSON")
    batch.set_defaults(func=cmd_batch)

    scene = subparsers.add_parser(
        "scene",
        help="analyse a large GeoTIFF pair tile by tile (windowed reads, scene-level counts and cells)",
        description=(
            "Splits the scene into --tile px tiles, makes each tile's change mask with --overlap px of context, "
            "merges them on disk and answers at scene level: changed?, objects per category (an object cut by "
            "tile borders counts once), 3×3 cells and changed tiles; writes scene.json, changes.geojson (the "
            "scene's CRS) and change_mask.tif."
        ),
    )
    scene.add_argument("t1", type=Path, help="before scene (GeoTIFF)")
    scene.add_argument("t2", type=Path, help="after scene, on the same grid as t1 (or use --resample)")
    scene.add_argument("--out", type=Path, required=True, help="output folder")
    scene.add_argument("--tile", type=int, default=256, help="tile size in pixels (the fine grid of the answers)")
    scene.add_argument("--overlap", type=int, default=32, help="context read around each tile, in pixels")
    scene.add_argument("--mask", type=Path, help="a change-mask GeoTIFF on t1's grid (read windowed)")
    _add_mask_options(scene, "--mask")
    scene.add_argument("--resample", action="store_true", help="warp t2 onto t1's grid when the grids differ")
    scene.add_argument("--rgb-bands", type=int, nargs=3, metavar="B", help="1-based red green blue bands")
    scene.add_argument("--workers", type=_positive, default=1, help="processes making tile masks")
    scene.add_argument("--json", action="store_true", help="no progress bar; print the result as JSON")
    scene.set_defaults(func=cmd_scene)
