"""``changeagent serve``: the DeltaVLM server for agents that reach the model over HTTP (``--endpoint``).

The options live beside the server (:mod:`deltavlm.serving.cli`); this module only mounts them under the
``changeagent`` command, so ``changeagent serve`` and ``python -m deltavlm.serving`` cannot disagree.
"""

from __future__ import annotations

import argparse
from typing import Any


def cmd_serve(args: argparse.Namespace) -> int:
    from deltavlm.serving.cli import run_from_args

    return run_from_args(args)


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to the ``changeagent`` sub-commands (``subparsers`` from ``add_subparsers``)."""
    from deltavlm.serving.cli import add_arguments

    parser = subparsers.add_parser(
        "serve",
        help="serve DeltaVLM over HTTP for agents on other machines (Ray Serve, or uvicorn)",
        description="Start a long-running DeltaVLM server: POST /v1/pairs, POST /v1/chat, GET /health, "
        "GET /metrics, OpenAPI at /docs. Binds 127.0.0.1 unless --host says otherwise.",
    )
    add_arguments(parser)
    parser.set_defaults(func=cmd_serve)
    return parser
