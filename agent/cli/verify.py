"""``changeagent verify`` and ``demo``: the ChangeChat rules on a pair, with its GeoJSON and overlay."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.answering import unplaced_hint
from agent.answering.aoi import aoi_table
from agent.answering.verification import verification_text
from agent.cli.conversation import print_answer
from deltavlm.rules import RuleSettings
from tools.aoi import AoiLayer, AoiSummary, aoi_collection, aoi_figures, read_aoi
from tools.classical_mask import ClassicalMaskProvider
from tools.geojson import changes_geojson
from tools.georef import load_placed_pair
from tools.mask_geotiff import write_mask_cog
from tools.masks import ChangeMask, MaskProvider, UserMaskProvider, on_valid_data
from tools.overlay import render_overlay, save_png
from tools.pairs import ImagePair, load_pair
from tools.raster import ensure_folder
from tools.vector_export import format_of, write_vector
from tools.verify import Verification, verify


def _verify_pair(pair: ImagePair, provider: MaskProvider, settings: RuleSettings) -> tuple[ChangeMask, Verification]:
    mask = on_valid_data(provider).provide(pair)
    return mask, verify(mask, settings)


def _write_artefacts(
    pair: ImagePair,
    mask: ChangeMask,
    verification: Verification,
    geojson: Path | None,
    overlay: Path | None,
    objects: bool,
    crs: str,
    mask_tif: Path | None = None,
    aoi: tuple[AoiLayer, AoiSummary] | None = None,
) -> dict[str, str]:
    written = {}
    if geojson:
        if aoi is not None and pair.georef is not None:  # the user's layer, with each polygon's figures as columns
            collection = aoi_collection(*aoi, pair.georef, crs)  # type: ignore[arg-type]
        else:
            collection = changes_geojson(
                verification, mask, pair.georef, pair_name=pair.name, objects=objects, crs=crs, gsd_m=pair.gsd_m
            )
        fmt = format_of(geojson)
        for number, path in enumerate(write_vector(collection, geojson)):
            written[fmt if number == 0 else f"{fmt} {path.stem}"] = str(path)
    if mask_tif:
        written["mask_geotiff"] = str(write_mask_cog(mask, pair.georef, mask_tif))
    if overlay:
        written["overlay"] = str(save_png(render_overlay(pair, mask, verification), overlay))
    return written


def cmd_verify(args: argparse.Namespace) -> int:
    pair = load_placed_pair(
        args.t1, args.t2, max_pixels=args.max_pixels, bounds=args.bounds, crs=args.crs, gsd_m=args.gsd
    )
    provider: MaskProvider = (
        UserMaskProvider(args.mask, kind=args.mask_kind, binary_category=args.mask_category)
        if args.mask
        else ClassicalMaskProvider()
    )
    settings = RuleSettings(cell_threshold=args.cell_threshold, min_object_pixels=args.min_object_pixels)
    layer = read_aoi(args.aoi) if args.aoi else None  # a bad file is refused before the mask is made
    mask, verification = _verify_pair(pair, provider, settings)
    aoi = (layer, aoi_figures(layer, mask, pair.georef, settings, gsd_m=pair.gsd_m)) if layer else None
    written = _write_artefacts(
        pair, mask, verification, args.geojson, args.overlay, args.objects, args.geojson_crs, args.mask_tif, aoi
    )
    if args.json:
        payload = {
            "pair": {"t1": str(pair.t1_path), "t2": str(pair.t2_path), "pair_id": pair.pair_id},
            "georef": pair.georef.model_dump() if pair.georef else None,
            "verification": verification.model_dump(mode="json", exclude={"summary"}),
            "areas_of_interest": aoi[1].model_dump(mode="json") if aoi else None,
            "written": written,
        }
        print(json.dumps(payload, indent=1))
    else:
        print(f"pair: {pair.t1_path} → {pair.t2_path} ({pair.shape[1]}×{pair.shape[0]} px)")
        print(verification_text(verification))
        if aoi:
            print(aoi_table(aoi[1]))
        if not verification.source.categorical:
            print("note: this mask has no categories; supply a labelled mask (--mask) for road/building counts")
        for kind, path in written.items():
            print(f"wrote {kind}: {path}")
        if (args.geojson or args.mask_tif) and pair.georef is None:
            print(f"note: the exports are in pixel coordinates. {unplaced_hint(pair)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from deltavlm.synthetic import write_example

    out = ensure_folder(Path(args.out), "--out")
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
        print(verification_text(verification))
        for kind, path in written.items():
            print(f"wrote {kind}: {path}")
        print()
    from agent.api import Agent
    from agent.settings import AgentSettings

    agent = Agent(AgentSettings(artefact_dir=out / "artefacts"))
    print(f"== a conversation with the agent ({agent.perception}) ==")
    for question in DEMO_QUESTIONS:
        answer = agent.ask(pair, question, thread_id="demo", mask=example.mask, mask_kind="levir-mci")
        print(f"you> {question}")
        print_answer(answer, as_json=False)
    return 0


DEMO_QUESTIONS = (
    "Has anything changed?",
    "How many new buildings?",
    "and where?",
    "Describe the changes.",
    "Export the changed cells as GeoJSON",
)
