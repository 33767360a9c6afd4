"""The ``changeagent`` command line.

Errors a user can fix (a missing file, mismatched dates, a mask of the wrong size) are printed as
one line naming the file and the problem, with exit status 2; they never surface as tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from deltavlm.rules import RuleSettings
from tools.classical_mask import ClassicalMaskProvider
from tools.geojson import changes_geojson, write_geojson
from tools.masks import ChangeMask, MaskProvider, UserMaskProvider
from tools.overlay import render_overlay, save_png
from tools.pairs import ImagePair, load_pair
from tools.raster import DEFAULT_MAX_PIXELS, InputError
from tools.verify import Verification, describe, verify


def _verify_pair(pair: ImagePair, provider: MaskProvider, settings: RuleSettings) -> tuple[ChangeMask, Verification]:
    mask = provider.provide(pair)
    return mask, verify(mask, settings)


def _write_artefacts(
    pair: ImagePair,
    mask: ChangeMask,
    verification: Verification,
    geojson: Path | None,
    overlay: Path | None,
    objects: bool,
    crs: str,
) -> dict[str, str]:
    written = {}
    if geojson:
        collection = changes_geojson(verification, mask, pair.georef, pair_name=pair.name, objects=objects, crs=crs)
        written["geojson"] = str(write_geojson(collection, geojson))
    if overlay:
        written["overlay"] = str(save_png(render_overlay(pair, mask, verification), overlay))
    return written


def cmd_verify(args: argparse.Namespace) -> int:
    pair = load_pair(args.t1, args.t2, max_pixels=args.max_pixels)
    provider: MaskProvider = (
        UserMaskProvider(args.mask, kind=args.mask_kind, binary_category=args.mask_category)
        if args.mask
        else ClassicalMaskProvider()
    )
    settings = RuleSettings(cell_threshold=args.cell_threshold, min_object_pixels=args.min_object_pixels)
    mask, verification = _verify_pair(pair, provider, settings)
    written = _write_artefacts(pair, mask, verification, args.geojson, args.overlay, args.objects, args.crs)
    if args.json:
        payload = {
            "pair": {"t1": str(pair.t1_path), "t2": str(pair.t2_path), "pair_id": pair.pair_id},
            "georef": pair.georef.model_dump() if pair.georef else None,
            "verification": verification.model_dump(mode="json", exclude={"summary"}),
            "written": written,
        }
        print(json.dumps(payload, indent=1))
    else:
        print(f"pair: {pair.t1_path} → {pair.t2_path} ({pair.shape[1]}×{pair.shape[0]} px)")
        print(describe(verification))
        if not verification.source.categorical:
            print("note: this mask has no categories; supply a labelled mask (--mask) for road/building counts")
        for kind, path in written.items():
            print(f"wrote {kind}: {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from deltavlm.synthetic import write_example

    out = Path(args.out)
    example = write_example(out, seed=args.seed)
    pair = load_pair(example.t1, example.t2)
    print(f"synthetic example pair written to {out} (seed {args.seed}, EPSG:32614, 0.5 m pixels)\n")
    providers: list[MaskProvider] = [UserMaskProvider(example.mask, kind="levir-mci"), ClassicalMaskProvider()]
    for provider in providers:
        mask, verification = _verify_pair(pair, provider, RuleSettings())
        written = _write_artefacts(
            pair,
            mask,
            verification,
            out / f"changes_{provider.name}.geojson",
            out / f"overlay_{provider.name}.png",
            objects=True,
            crs="wgs84",
        )
        print(f"== {provider.name} mask ==")
        print(describe(verification))
        for kind, path in written.items():
            print(f"wrote {kind}: {path}")
        print()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="changeagent", description="Change analysis of bi-temporal satellite and aerial image pairs."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    verify_p = sub.add_parser("verify", help="apply the ChangeChat rules (binary, counts, 3×3 grid) to a pair")
    verify_p.add_argument("t1", type=Path, help="before image (PNG/JPEG/TIFF/GeoTIFF)")
    verify_p.add_argument("t2", type=Path, help="after image, co-registered with t1")
    verify_p.add_argument("--mask", type=Path, help="change mask file; without it the classical detector runs")
    verify_p.add_argument(
        "--mask-kind",
        choices=["auto", "levir-mci", "index", "binary"],
        default="auto",
        help="how to read --mask: LEVIR-MCI values (0/128 road/255 building), class indices, or binary",
    )
    verify_p.add_argument(
        "--mask-category",
        choices=["road", "building"],
        help="with a binary mask: the category its change belongs to (LEVIR-CD labels are buildings)",
    )
    verify_p.add_argument("--geojson", type=Path, help="write the changed cells as GeoJSON here")
    verify_p.add_argument("--objects", action="store_true", help="also export changed objects as polygons")
    verify_p.add_argument(
        "--crs", choices=["wgs84", "native"], default="wgs84", help="GeoJSON coordinates: EPSG:4326 or the image's CRS"
    )
    verify_p.add_argument("--overlay", type=Path, help="write an overlay PNG here")
    verify_p.add_argument("--cell-threshold", type=float, default=0.05, help="cell changed above this fraction")
    verify_p.add_argument("--min-object-pixels", type=int, default=8, help="smaller contours are noise")
    verify_p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    verify_p.add_argument("--json", action="store_true", help="print the full result as JSON")
    verify_p.set_defaults(func=cmd_verify)

    demo_p = sub.add_parser("demo", help="run on a bundled synthetic example (no GPU, no download)")
    demo_p.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for the example and results")
    demo_p.add_argument("--seed", type=int, default=7)
    demo_p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"changeagent: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
