"""The ``changeagent`` command line.

Errors a user can fix (a missing file, mismatched dates, a mask of the wrong size) are printed as
one line naming the file and the problem, with exit status 2; they never surface as tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from agent.cli_batch import add_batch_parsers
from agent.cli_masks import add_eval_masks_parser
from agent.cli_serve import add_serve_parser
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
    from agent.api import Agent
    from agent.settings import AgentSettings

    agent = Agent(AgentSettings(artefact_dir=out / "artefacts"))
    print(f"== a conversation with the agent ({agent.perception}) ==")
    for question in DEMO_QUESTIONS:
        answer = agent.ask(pair, question, thread_id="demo", mask=example.mask, mask_kind="levir-mci")
        print(f"you> {question}")
        _print_answer(answer, as_json=False)
    return 0


DEMO_QUESTIONS = (
    "Has anything changed?",
    "How many new buildings?",
    "and where?",
    "Describe the changes.",
    "Export the changed cells as GeoJSON",
)


def _state_db() -> Path:
    """Conversations of the CLI persist here, so ``--thread`` continues across invocations."""
    root = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return root / "changeagent" / "threads.sqlite"


def _agent_from_args(args: argparse.Namespace):
    from agent.api import Agent
    from agent.settings import AgentSettings, ModelSettings

    if args.endpoint:
        model = ModelSettings(backend="http", endpoint=args.endpoint, token=os.environ.get("CHANGEAGENT_TOKEN"))
    elif args.model_config:
        model = ModelSettings(backend="in-process", config=args.model_config, checkpoint=args.checkpoint)
    else:
        model = ModelSettings()
    settings = AgentSettings(model=model, checkpoint_db=args.db, artefact_dir=args.artefacts)
    return Agent(settings)


def _print_answer(answer, as_json: bool) -> None:
    if as_json:
        print(answer.model_dump_json(indent=1))
        return
    print(answer.text)
    source = answer.evidence.mask
    tools = ", ".join(answer.evidence.tools)
    mask = f"{source.provider} mask, confidence {source.confidence:.2f}" if source else "no mask"
    print(f"  [{answer.intent}; {tools}; {mask}; answer confidence {answer.confidence:.2f}]")


def cmd_ask(args: argparse.Namespace) -> int:
    agent = _agent_from_args(args)
    try:
        pair = load_pair(args.t1, args.t2, max_pixels=args.max_pixels)
        answer = agent.ask(
            pair,
            args.question,
            thread_id=args.thread,
            mask=args.mask,
            mask_kind=args.mask_kind,
            mask_category=args.mask_category,
        )
        _print_answer(answer, args.json)
        if not args.json:
            print(f"  thread: {answer.thread_id} (continue with --thread {answer.thread_id})")
    finally:
        agent.close()
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    agent = _agent_from_args(args)
    try:
        pair = load_pair(args.t1, args.t2, max_pixels=args.max_pixels)
        thread = args.thread or uuid.uuid4().hex[:12]
        print(f"{agent.perception}\nthread {thread}; ask about the pair, 'quit' to leave.")
        mask = args.mask
        while True:
            try:
                question = input("you> ").strip()
            except EOFError:
                break
            if question.lower() in ("quit", "exit", "q"):
                break
            if not question:
                continue
            try:
                answer = agent.ask(
                    pair,
                    question,
                    thread_id=thread,
                    mask=mask,
                    mask_kind=args.mask_kind,
                    mask_category=args.mask_category,
                )
            except InputError as exc:
                print(f"error: {exc}")
                continue
            mask = None  # the thread keeps it
            _print_answer(answer, args.json)
    finally:
        agent.close()
    return 0


def _add_agent_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("t1", type=Path, help="before image (PNG/JPEG/TIFF/GeoTIFF)")
    parser.add_argument("t2", type=Path, help="after image, co-registered with t1")
    _add_mask_options(parser)
    parser.add_argument("--thread", help="conversation id; reuse it to continue a conversation")
    parser.add_argument("--db", type=Path, default=_state_db(), help="SQLite file that keeps conversations")
    parser.add_argument("--artefacts", type=Path, default=Path("out/artefacts"), help="folder for overlays/GeoJSON")
    parser.add_argument("--model-config", help="run DeltaVLM in process with this config (tiny, full, or YAML)")
    parser.add_argument("--checkpoint", type=Path, help="DeltaVLM weights for --model-config")
    parser.add_argument("--endpoint", help="URL of a DeltaVLM server (token from $CHANGEAGENT_TOKEN)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    parser.add_argument("--json", action="store_true", help="print answers as JSON")


def _add_mask_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mask", type=Path, help="change mask file; without it the classical detector runs")
    parser.add_argument(
        "--mask-kind",
        choices=["auto", "levir-mci", "index", "binary"],
        default="auto",
        help="how to read --mask: LEVIR-MCI values (0/128 road/255 building), class indices, or binary",
    )
    parser.add_argument(
        "--mask-category",
        choices=["road", "building"],
        help="with a binary mask: the category its change belongs to (LEVIR-CD labels are buildings)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="changeagent", description="Change analysis of bi-temporal satellite and aerial image pairs."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    verify_p = sub.add_parser("verify", help="apply the ChangeChat rules (binary, counts, 3×3 grid) to a pair")
    verify_p.add_argument("t1", type=Path, help="before image (PNG/JPEG/TIFF/GeoTIFF)")
    verify_p.add_argument("t2", type=Path, help="after image, co-registered with t1")
    _add_mask_options(verify_p)
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

    ask_p = sub.add_parser("ask", help="ask one question about a pair (continue with --thread)")
    _add_agent_options(ask_p)
    ask_p.add_argument("question", help="the question, in plain language")
    ask_p.set_defaults(func=cmd_ask)

    chat_p = sub.add_parser("chat", help="an interactive conversation about a pair")
    _add_agent_options(chat_p)
    chat_p.set_defaults(func=cmd_chat)

    add_eval_masks_parser(sub)
    add_serve_parser(sub)
    add_batch_parsers(sub)

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
