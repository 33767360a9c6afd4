"""``changeagent eval-masks``: score change-mask providers on a LEVIR-style folder.

Registered by ``agent.cli.main`` through :func:`add_eval_masks_parser`, so the command lives beside the others
while its code stays here. It prints the summary table (and, with ``--pairs``, the per-pair rows), and writes
the full report as JSON and/or CSV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deltavlm.rules import RuleSettings
from tools.atomic import write_atomic
from tools.mask_eval import evaluate, format_pairs, format_table, write_report
from tools.provider_spec import PROVIDER_HELP, build_provider
from tools.raster import InputError


def cmd_lodo(args: argparse.Namespace) -> int:
    """The leave-one-dataset-out protocol over a data root: each dataset scored with settings chosen on the others."""
    from tools.lodo import format_lodo_table, run_leave_one_dataset_out, write_calibration

    progress = (lambda line: print(line, file=sys.stderr)) if args.verbose else None
    extra = [(spec, build_provider(spec)) for spec in args.provider or []]
    report = run_leave_one_dataset_out(args.folder, extra, progress=progress, detector_folds=args.detector_folds)
    print(format_lodo_table(report, markdown=args.markdown))
    if args.json:
        write_atomic(args.json, report.model_dump_json(indent=1))
        print(f"wrote {args.json}")
    if args.write_calibration:
        print(f"wrote {write_calibration(report)}")
    return 0


def cmd_eval_masks(args: argparse.Namespace) -> int:
    """Build each provider, run it on every labelled pair of ``args.folder``, print and write the scores."""
    if args.lodo:
        return cmd_lodo(args)
    if args.write_calibration:
        raise InputError(
            "--write-calibration needs --lodo: the calibration is measured by the leave-one-dataset-out protocol, "
            "not by scoring one folder (run: changeagent eval-masks DATA_ROOT --lodo --write-calibration)"
        )
    specs = args.provider or ["classical"]
    providers = [build_provider(spec) for spec in specs]
    rules = RuleSettings(cell_threshold=args.cell_threshold, min_object_pixels=args.min_object_pixels)
    progress = (lambda line: print(line, file=sys.stderr)) if args.verbose else None
    report = evaluate(
        args.folder,
        providers,
        label_kind=args.label_kind,
        rules=rules,
        warmup=not args.no_warmup,
        progress=progress,
        labels=specs,
        gsd_m=args.gsd,
    )
    print(f"{report.root}: {len(report.providers[0].pairs)} labelled pairs (labels read as {args.label_kind})")
    for name, why in report.skipped.items():
        print(f"  skipped {name}: {why}")
    print(format_table(report, markdown=args.markdown))
    if args.pairs:
        print()
        print(format_pairs(report))
    for path in (args.json, args.csv):
        if path:
            print(f"wrote {write_report(report, path)}")
    return 0


def add_eval_masks_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``eval-masks`` on the ``changeagent`` sub-command parser and return it."""
    parser = subparsers.add_parser(
        "eval-masks",
        help="score change-mask providers on a LEVIR-style folder (A/, B/, label/)",
        description=(
            "Pixel precision/recall/F1/IoU, per-pair object-count error, 3×3-grid micro F1, binary accuracy and "
            "time per pair, by the ChangeChat rules. Binary 0/255 labels are compared as change of any category."
        ),
    )
    parser.add_argument(
        "folder", type=Path, help="folder with A/ (before), B/ (after) and label/ (masks); with --lodo, the data root"
    )
    parser.add_argument(
        "--lodo",
        action="store_true",
        help="leave-one-dataset-out over a data root (levircd, dsifn, sztaki, oscd, egybcd and no-change pairs made "
        "from them): each dataset scored with the classical settings chosen on the others; --provider adds rows",
    )
    parser.add_argument(
        "--detector-folds",
        type=Path,
        metavar="DIR",
        help="with --lodo: learned-detector fold models DIR/<held-out set>, each trained without that set; "
        "adds a row scoring each set X with detector:DIR/X",
    )
    parser.add_argument(
        "--write-calibration", action="store_true", help="with --lodo: store the measured mask confidences"
    )
    parser.add_argument("--gsd", type=float, help="metres per pixel of the folder's images (plain files have none)")
    parser.add_argument(
        "--provider", action="append", metavar="SPEC", help=f"repeatable; default classical. {PROVIDER_HELP}"
    )
    parser.add_argument(
        "--label-kind",
        choices=["auto", "levir-mci", "index", "binary"],
        default="auto",
        help="how to read label/ files (auto: 0/255 = change of unknown category, 0/128/255 = LEVIR-MCI)",
    )
    parser.add_argument("--json", type=Path, help="write the full report (per-pair rows included) as JSON")
    parser.add_argument("--csv", type=Path, help="write per-pair and pooled rows as CSV")
    parser.add_argument("--pairs", action="store_true", help="also print one row per pair")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--cell-threshold", type=float, default=0.05, help="grid cell changed above this fraction")
    parser.add_argument("--min-object-pixels", type=int, default=8, help="smaller contours are not counted")
    parser.add_argument("--no-warmup", action="store_true", help="time the first call too (includes start-up)")
    parser.add_argument("--verbose", action="store_true", help="report each pair on stderr")
    parser.set_defaults(func=cmd_eval_masks)
    return parser
