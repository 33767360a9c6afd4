"""``model generate``: one raw DeltaVLM generation, bypassing the agent, for checks against other stacks.

Prints what the model was given and what it produced: the prompt text, the Q-former and LLM prompt ids,
the new token ids (up to and including EOS) and their decoded text, as the release decodes it. Bad inputs
(a missing image or config, a broken tokenizer or weight file) end with one line on stderr and exit code 2.

``changeagent model generate …`` mounts this parser; ``python -m deltavlm.generate_cli model generate …``
runs it alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError

from deltavlm.config import PromptForm
from deltavlm.errors import ModelLoadError

EXIT_BAD_INPUT = 2


class GenerateInputError(ValueError):
    """An input of the command is unusable; the message names it."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``model`` (with its ``generate`` subcommand) to a command's subparsers; returns ``model``'s parser."""
    model = subparsers.add_parser("model", help="run DeltaVLM directly, without the agent")
    actions = model.add_subparsers(dest="model_command", required=True)
    generate = actions.add_parser(
        "generate",
        help="one raw generation: prompt ids, new token ids and their text",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    generate.add_argument("before", type=Path, help="image of the first date (PNG, JPEG, …)")
    generate.add_argument("after", type=Path, help="image of the second date, same size")
    generate.add_argument("prompt", help="the question, as a user would type it")
    generate.add_argument("--model-config", required=True, help="DeltaVLM config: tiny, full, or a YAML path")
    generate.add_argument("--checkpoint", type=Path, help="more weights to load after the config's (any format)")
    generate.add_argument(
        "--prompt-form",
        choices=get_args(PromptForm),
        help="eval: normalised as the authors' evaluation; raw: as written (default: the config's)",
    )
    generate.add_argument("--max-new-tokens", type=int, help="default: the config's generation.max_new_tokens")
    generate.add_argument("--num-beams", type=int, help="default: the config's generation.num_beams")
    generate.add_argument("--json", action="store_true", help="print one JSON object instead of text lines")
    generate.set_defaults(func=run_generate)
    return model


def _image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise GenerateInputError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise GenerateInputError(f"cannot read {path} as an image: {error}") from error


def generate_record(args: argparse.Namespace) -> dict[str, Any]:
    """Run one generation and describe it; raises ``GenerateInputError`` or ``ModelLoadError`` on bad input."""
    from deltavlm.inference import AnswerRequest, DeltaVLMRunner, decode_answers

    before, after = _image(args.before), _image(args.after)
    if before.shape != after.shape:
        raise GenerateInputError(f"{args.before} is {before.shape[:2]} but {args.after} is {after.shape[:2]}")
    overrides: dict[str, Any] = {"text": {"prompt_form": args.prompt_form}} if args.prompt_form else {}
    runner = DeltaVLMRunner.from_config(args.model_config, checkpoint=args.checkpoint, **overrides)
    options = {
        name: value
        for name, value in (("max_new_tokens", args.max_new_tokens), ("num_beams", args.num_beams))
        if value is not None
    }
    request = AnswerRequest(before, after, args.prompt)
    turn = runner.prompt_turns([request])[0]
    try:
        tokens = runner.generate_ids([request], **options)[0]
    except ValidationError as error:
        raise GenerateInputError(f"bad generation option: {error.errors()[0]['msg']}") from error
    eos = runner.tokenizers.llm.eos_token_id
    ids = tokens.tolist()
    if eos in ids:
        ids = ids[: ids.index(eos) + 1]
    qformer = runner.tokenizers.qformer(
        turn.qformer_text, truncation=True, max_length=runner.config.qformer.max_text_tokens
    )
    return {
        "config": runner.config.name,
        "prompt_form": runner.config.text.prompt_form,
        "instruction": turn.qformer_text,
        "llm_prompt_ids": [i for i in turn.input_ids if i >= 0],
        "num_visual_tokens": sum(1 for i in turn.input_ids if i < 0),
        "qformer_input_ids": list(qformer["input_ids"]),
        "new_token_ids": ids,
        "stopped_on_eos": bool(ids) and ids[-1] == eos,
        "text": decode_answers(runner.tokenizers.llm, tokens[None])[0],
    }


def run_generate(args: argparse.Namespace) -> int:
    """The ``generate`` handler: prints the record; bad input is one line on stderr and exit code 2."""
    try:
        record = generate_record(args)
    except (GenerateInputError, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(record))
    else:
        for key, value in record.items():
            print(f"{key}: {value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deltavlm.generate_cli model generate BEFORE AFTER PROMPT --model-config …``."""
    parser = argparse.ArgumentParser(prog="python -m deltavlm.generate_cli", description=__doc__)
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
