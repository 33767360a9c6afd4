"""``changeagent batch``: a question list over a catalog of pairs (registered through the
``changeagent.commands`` entry point, so the command-line front-end never imports this package).

The batch machinery (LangGraph, Ray) is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agent.mask_options import gsd_option_spec, mask_option_specs


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cmd_batch(args: argparse.Namespace) -> int:
    from agent.batch.runner import BatchOptions, run_batch
    from agent.settings import AgentSettings, ModelSettings

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
        gsd_m=args.gsd,
        progress=not args.json,
        agent=AgentSettings(model=ModelSettings.choose(args.model_config, args.checkpoint, args.endpoint)),
    )
    try:
        report = run_batch(options)
    except KeyboardInterrupt:
        print(
            f"changeagent batch: interrupted; every pair committed so far is kept in {args.out}. "
            "Rerun the same command to finish the rest.",
            file=sys.stderr,
        )
        return 130
    failed = bool(report.failed or "errors" in report.outputs)
    if args.json:
        print(report.model_dump_json(indent=1))
        return 1 if failed else 0
    resumed = f", {report.done_before} done by an earlier run" if report.done_before else ""
    repaired = f"; dropped and redid {report.repaired} torn/partial record(s)" if report.repaired else ""
    print(
        f"batch: {report.pairs} catalog item(s){resumed}; this run answered {report.answered} and failed "
        f"{report.failed} in {report.seconds:.1f} s ({report.pairs_per_s:.2f} pairs/s, {report.engine} engine, "
        f"{report.workers} worker(s)){repaired}"
    )
    for kind, path in report.outputs.items():
        print(f"wrote {kind}: {path}")
    if failed:
        print(f"some pairs could not be analysed; see {report.outputs.get('errors')}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: Any) -> None:
    """Add ``batch`` to the ``changeagent`` sub-commands: exit 0 when every pair was answered, 1 when some failed
    (errors.jsonl says which and why), 2 for a usage error, 130 when interrupted."""
    batch = subparsers.add_parser(
        "batch",
        help="run a list of questions over a catalog of pairs (resumable; local or Ray)",
        description=(
            "Answers every question about every pair of CATALOG, one conversation per pair, into --out: "
            "answers.jsonl, changes.geojson and .gpkg, summary.csv, errors.jsonl. Rerun the same command to resume."
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
    for flag, options in mask_option_specs("the catalog's masks"):
        batch.add_argument(flag, **options)
    flag, options = gsd_option_spec()
    batch.add_argument(flag, **options)
    batch.add_argument("--model-config", help="run DeltaVLM in process with this config (tiny, full, or YAML)")
    batch.add_argument("--checkpoint", type=Path, help="DeltaVLM weights for --model-config")
    batch.add_argument("--endpoint", help="URL of a DeltaVLM server (token from $CHANGEAGENT_TOKEN)")
    batch.add_argument("--json", action="store_true", help="no progress bar; print the run's report as JSON")
    batch.set_defaults(func=cmd_batch)
