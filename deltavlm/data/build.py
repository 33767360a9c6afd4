"""``python -m deltavlm.data.build``: build ChangeChat records from a LEVIR-MCI folder (or a synthetic one).

Examples::

    python -m deltavlm.data.build --source data/LEVIR-MCI --out data/changechat --workers 8
    python -m deltavlm.data.build --source data/LEVIR-MCI --out data/changechat \\
        --openqa-model langchain_openai:ChatOpenAI --openqa-kwargs '{"model": "gpt-4o-mini"}'
    python -m deltavlm.data.build --synthetic train=400,val=40,test=100 --size 96 --out /tmp/cc

With ``--synthetic`` the source is written to ``OUT/source`` by :func:`deltavlm.synthetic.write_levir_mci`
and then built like real data.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from deltavlm.data.builder import BuilderConfig, build_changechat
from deltavlm.data.openqa import OpenQAConfig
from deltavlm.data.templates import TASKS
from deltavlm.synthetic import write_levir_mci


def parse_split_sizes(text: str) -> dict[str, int]:
    """``train=400,val=40,test=100`` → ``{"train": 400, "val": 40, "test": 100}``."""
    sizes = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if not value:
            raise argparse.ArgumentTypeError(f"expected split=count, got {part!r}")
        sizes[name.strip()] = int(value)
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deltavlm.data.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="LEVIR-MCI folder (images/{split}/{A,B,label} + captions JSON)")
    parser.add_argument("--captions", type=Path, help="captions JSON, if not in the source folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--synthetic", type=parse_split_sizes, help="write a synthetic source first: train=N,val=N,test=N"
    )
    parser.add_argument("--size", type=int, default=256, help="synthetic tile size in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--splits", nargs="*")
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=TASKS)
    parser.add_argument("--format", choices=("json", "jsonl"), default="json")
    parser.add_argument("--answer-style", choices=("canonical", "varied"), default="varied")
    parser.add_argument("--instructions", choices=("release", "paper"), default="release")
    parser.add_argument("--category-count-questions", action="store_true")
    parser.add_argument("--openqa-model", help="'package.module:Factory' returning a LangChain chat model")
    parser.add_argument("--openqa-kwargs", type=json.loads, default={}, help="JSON keyword arguments of the factory")
    parser.add_argument("--questions-per-pair", type=int, default=4)
    parser.add_argument("--conversation-turns", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    source = args.source
    if args.synthetic:
        source = args.out / "source"
        write_levir_mci(source, args.synthetic, seed=args.seed, size=args.size)
    if source is None:
        parser.error("give --source, or --synthetic to generate one")
    config = BuilderConfig(
        source=source,
        out_dir=args.out,
        captions_file=args.captions,
        splits=args.splits or None,
        tasks=args.tasks,
        format=args.format,
        seed=args.seed,
        answer_style=args.answer_style,
        instructions=args.instructions,
        category_count_questions=args.category_count_questions,
        openqa=OpenQAConfig(
            model=args.openqa_model,
            model_kwargs=args.openqa_kwargs,
            questions_per_pair=args.questions_per_pair,
            conversation_turns=args.conversation_turns,
        ),
        workers=args.workers,
    )
    report = build_changechat(config)
    print(report.table1())
    for path in report.files:
        print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
