"""``changeagent ask`` and ``chat``: questions to the agent, with conversations kept in SQLite across calls."""

from __future__ import annotations

import argparse
import os
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent.answer import Answer
from agent.answering.cli_messages import (
    answer_tag,
    chat_banner,
    continue_thread,
    environment_language,
    question_failed,
)
from agent.mask_options import gsd_option_spec, mask_option_specs
from agent.reading import Request, read_request
from tools.georef import load_placed_pair
from tools.raster import DEFAULT_MAX_PIXELS, InputError

if TYPE_CHECKING:  # agent.api (LangGraph and the rest, about 1.5 s) is imported only when a command runs it
    from agent.api import Agent


def _state_db() -> Path:
    """Conversations of the CLI persist here, so ``--thread`` continues across invocations."""
    root = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return root / "changeagent" / "threads.sqlite"


def _agent_from_args(args: argparse.Namespace) -> Agent:
    from agent.api import Agent
    from agent.settings import AgentSettings, ModelSettings

    model = ModelSettings.choose(args.model_config, args.checkpoint, args.endpoint)
    return Agent(AgentSettings(model=model, checkpoint_db=args.db, artefact_dir=args.artefacts))


def print_answer(answer: Answer, as_json: bool) -> None:
    """An answer and the line under it (``answer_tag``), or the whole answer as JSON with ``as_json``."""
    if as_json:
        print(answer.model_dump_json(indent=1))
        return
    print(answer.text)
    print(answer_tag(answer))


def cmd_ask(args: argparse.Namespace) -> int:
    agent = _agent_from_args(args)
    try:
        pair = load_placed_pair(args.t1, args.t2, max_pixels=args.max_pixels, bounds=args.bounds, crs=args.crs)
        answer = agent.ask(
            pair,
            args.question,
            thread_id=args.thread,
            mask=args.mask,
            mask_kind=args.mask_kind,
            mask_category=args.mask_category,
            gsd_m=args.gsd,
            aoi=args.aoi,
        )
        print_answer(answer, args.json)
        if not args.json:
            print(continue_thread(answer))
    finally:
        agent.close()
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    agent = _agent_from_args(args)
    try:
        pair = load_placed_pair(args.t1, args.t2, max_pixels=args.max_pixels, bounds=args.bounds, crs=args.crs)
        thread = args.thread or uuid.uuid4().hex[:12]
        print(agent.perception)
        print(chat_banner(thread, environment_language()))
        mask, aoi = args.mask, args.aoi
        last: list[Request] = []  # how the last question was read: the language of a short follow-up
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
                    gsd_m=args.gsd,
                    aoi=aoi,
                )
            except InputError as exc:
                print(question_failed(str(exc), read_request(question, last).language))
                continue
            mask = aoi = None  # the thread keeps them
            last = [answer.evidence.route]
            print_answer(answer, args.json)
    finally:
        agent.close()
    return 0


def add_agent_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("t1", type=Path, help="before image (PNG/JPEG/TIFF/GeoTIFF)")
    parser.add_argument("t2", type=Path, help="after image, co-registered with t1")
    add_mask_options(parser)
    add_place_options(parser)
    add_aoi_option(parser)
    parser.add_argument("--thread", help="conversation id; reuse it to continue a conversation")
    parser.add_argument("--db", type=Path, default=_state_db(), help="SQLite file that keeps conversations")
    parser.add_argument("--artefacts", type=Path, default=Path("out/artefacts"), help="folder for overlays/GeoJSON")
    parser.add_argument("--model-config", help="run DeltaVLM in process with this config (tiny, full, or YAML)")
    parser.add_argument("--checkpoint", type=Path, help="DeltaVLM weights for --model-config")
    parser.add_argument("--endpoint", help="URL of a DeltaVLM server (token from $CHANGEAGENT_TOKEN)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    parser.add_argument("--json", action="store_true", help="print answers as JSON")


def add_mask_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mask", type=Path, help="change mask file; without it the classical detector runs")
    for flag, options in mask_option_specs("--mask"):
        parser.add_argument(flag, **options)


def add_aoi_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--aoi",
        type=Path,
        metavar="FILE",
        help="areas of interest (GeoJSON, GeoPackage or Shapefile, any CRS): ask about 'the parcels', 'plot 12', "
        "'which fields changed?'; the pair must be placed on a map",
    )


def add_place_options(parser: argparse.ArgumentParser) -> None:
    """``--bounds W,S,E,N --crs EPSG:…``: a georeference for plain images (see :mod:`tools.georef`)."""
    parser.add_argument(
        "--bounds",
        metavar="W,S,E,N",
        help="place plain images: west,south,east,north in --crs, as W,S,E,N or four numbers "
        "(negative numbers welcome: --bounds -97.9,29.9,-97.8,30.0)",
    )
    parser.add_argument(
        "--crs", metavar="EPSG:…", help="CRS of --bounds, or of a world file (.pgw/.jgw/.wld) that has none"
    )
    flag, options = gsd_option_spec()
    parser.add_argument(flag, **options)


_NUMBERS = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def join_bounds(argv: Sequence[str]) -> list[str]:
    """``--bounds`` followed by a value argparse would take for an option (``-97.8,29.9,…``) or by four separate
    numbers becomes ``--bounds=W,S,E,N``, so the western and southern hemispheres need no ``=``."""
    out: list[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        if tokens[i] != "--bounds":
            out.append(tokens[i])
            i += 1
            continue
        numbers: list[str] = []
        j = i + 1
        while j < len(tokens) and len(numbers) < 4:
            parts = [p for p in re.split(r"[,\s]+", tokens[j].strip()) if p]
            if not parts or not all(_NUMBERS.match(p) for p in parts):
                break
            numbers += parts
            j += 1
        if numbers:
            out.append("--bounds=" + ",".join(numbers))
            i = j
        else:
            out.append(tokens[i])
            i += 1
    return out
