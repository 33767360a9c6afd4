"""The ``changeagent`` command: the interactive commands live here; others join through entry points.

Commands of other front-ends (``batch``, ``scene``) register themselves under the ``changeagent.commands``
entry-point group (see ``pyproject.toml``), so this package never imports theirs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from agent.cli.conversation import (
    add_agent_options,
    add_aoi_option,
    add_mask_options,
    add_place_options,
    cmd_ask,
    cmd_chat,
    join_bounds,
)
from agent.cli.masks import add_eval_masks_parser
from agent.cli.serve import add_serve_parser
from agent.cli.verify import cmd_demo, cmd_verify
from deltavlm.generate_cli import add_parser as add_model_parser
from tools.raster import DEFAULT_MAX_PIXELS, InputError

COMMAND_GROUP = "changeagent.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="changeagent", description="Change analysis of bi-temporal satellite and aerial image pairs."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    verify_p = sub.add_parser("verify", help="apply the ChangeChat rules (binary, counts, 3×3 grid) to a pair")
    verify_p.add_argument("t1", type=Path, help="before image (PNG/JPEG/TIFF/GeoTIFF)")
    verify_p.add_argument("t2", type=Path, help="after image, co-registered with t1")
    add_mask_options(verify_p)
    verify_p.add_argument(
        "--export",
        "--geojson",
        dest="geojson",
        type=Path,
        help="write the changed cells here: .geojson, .gpkg (GeoPackage) or .shp (Shapefile, one per layer)",
    )
    add_aoi_option(verify_p)
    verify_p.add_argument(
        "--mask-tif", type=Path, help="write the change mask here as a Cloud-Optimised GeoTIFF on the pair's grid"
    )
    verify_p.add_argument("--objects", action="store_true", help="also export changed objects as polygons")
    add_place_options(verify_p)
    verify_p.add_argument(
        "--geojson-crs",
        choices=["wgs84", "native"],
        default="wgs84",
        help="export coordinates: EPSG:4326 or the image's CRS",
    )
    verify_p.add_argument("--overlay", type=Path, help="write an overlay PNG here")
    verify_p.add_argument("--cell-threshold", type=float, default=0.05, help="cell changed above this fraction")
    verify_p.add_argument("--min-object-pixels", type=int, default=8, help="smaller contours are noise")
    verify_p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    verify_p.add_argument("--json", action="store_true", help="print the full result as JSON")
    verify_p.set_defaults(func=cmd_verify)

    ask_p = sub.add_parser("ask", help="ask one question about a pair (continue with --thread)")
    add_agent_options(ask_p)
    ask_p.add_argument("question", help="the question, in plain language")
    ask_p.set_defaults(func=cmd_ask)

    chat_p = sub.add_parser("chat", help="an interactive conversation about a pair")
    add_agent_options(chat_p)
    chat_p.set_defaults(func=cmd_chat)

    add_eval_masks_parser(sub)
    add_serve_parser(sub)
    add_model_parser(sub)
    for command in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        command.load()(sub)

    demo_p = sub.add_parser("demo", help="run on a bundled synthetic example (no GPU, no download)")
    demo_p.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for the example and results")
    demo_p.add_argument("--seed", type=int, default=7)
    demo_p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success, 1 when some work failed (the command says which), 2 for an input the user can fix
    (one line naming it, no traceback), 130 on Ctrl-C."""
    args = build_parser().parse_args(join_bounds(sys.argv[1:] if argv is None else argv))
    try:
        return args.func(args)
    except InputError as exc:
        print(f"changeagent: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user named: missing, not a folder, no permission, a disk full
        print(f"changeagent: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("changeagent: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
