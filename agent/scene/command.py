"""``changeagent scene``: a large GeoTIFF pair analysed tile by tile (registered through the
``changeagent.commands`` entry point, so the command-line front-end never imports this package).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.mask_options import gsd_option_spec, mask_option_specs
from tools.raster import InputError


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cmd_scene(args: argparse.Namespace) -> int:
    from agent.answering.aoi import aoi_table
    from agent.scene.analysis import SCENE_BUDGET_PIXELS, analyse_scene
    from tools.aoi import aoi_collection, aoi_figures_on_raster, read_aoi
    from tools.vector_export import write_vector

    layer = read_aoi(args.aoi) if args.aoi else None  # a bad file is refused before hours of work
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
        gsd_m=args.gsd,
        budget_pixels=None if args.yes else SCENE_BUDGET_PIXELS,
    )
    figures = None
    if layer is not None:
        if result.georef is None or "change_mask" not in result.outputs:
            raise InputError(f"the scene has no georeference, so {layer.source} cannot be placed on it")
        figures = aoi_figures_on_raster(layer, result.outputs["change_mask"], result.mask)
        collection = aoi_collection(layer, figures, result.georef, "native")
        result.outputs["areas_of_interest"] = str(write_vector(collection, args.out / "areas_of_interest.gpkg")[0])
    if args.json:
        payload = result.model_dump(mode="json")
        payload["areas_of_interest"] = figures.model_dump(mode="json") if figures else None
        print(json.dumps(payload, indent=1))
        return 0
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(result.text)
    if figures is not None:
        print(aoi_table(figures))
    for kind, path in result.outputs.items():
        print(f"wrote {kind}: {path}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``scene`` to the ``changeagent`` sub-commands (errors exit 2 through the entry point)."""
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
    for flag, options in mask_option_specs("--mask"):
        scene.add_argument(flag, **options)
    scene.add_argument("--resample", action="store_true", help="warp t2 onto t1's grid when the grids differ")
    scene.add_argument("--rgb-bands", type=int, nargs=3, metavar="B", help="1-based red green blue bands")
    scene.add_argument("--workers", type=_positive, default=1, help="processes making tile masks")
    flag, options = gsd_option_spec()
    scene.add_argument(flag, **options)
    scene.add_argument(
        "--yes", action="store_true", help="start a scene over 400 MP (20,000² px) without asking; it takes hours"
    )
    scene.add_argument("--json", action="store_true", help="no progress bar; print the result as JSON")
    scene.add_argument(
        "--aoi",
        type=Path,
        metavar="FILE",
        help="areas of interest (GeoJSON, GeoPackage or Shapefile, any CRS): per-polygon figures, read from the "
        "scene's mask window by window, and areas_of_interest.gpkg",
    )
    scene.set_defaults(func=cmd_scene)
