"""``python app.py``: the changeagent chat page (Gradio) on http://127.0.0.1:7860.

A thin shell: flags become ``AgentSettings``, :mod:`agent.page` builds the page, this file launches it.
It binds to localhost unless told otherwise, because the page accepts uploads and runs the agent. Beyond
localhost it asks for a login: the password is ``$CHANGEAGENT_TOKEN`` (any user name); without a token it
refuses to start unless ``--force-public`` says that an open page is really wanted.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from starlette.middleware import Middleware

from agent.page.blocks import build_blocks, make_page
from agent.page.serving import HiddenFileGuard, page_folder
from agent.page.session import DEFAULT_MAX_FILE_MB, EXAMPLE_SEEDS
from agent.page.zoom import ZOOM_HEAD
from agent.settings import AgentSettings, ModelSettings
from tools.raster import DEFAULT_MAX_PIXELS, InputError

log = logging.getLogger("changeagent.app")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app.py", description="Serve the changeagent chat page (Gradio).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument(
        "--force-public",
        action="store_true",
        help="serve beyond localhost with no login (without it, a non-local --host needs $CHANGEAGENT_TOKEN)",
    )
    parser.add_argument("--model-config", help="run DeltaVLM in this process with this config (tiny, full, or YAML)")
    parser.add_argument("--checkpoint", type=Path, help="DeltaVLM weights for --model-config")
    parser.add_argument("--endpoint", help="URL of a DeltaVLM server (bearer token from $CHANGEAGENT_TOKEN)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the model per answer")
    parser.add_argument("--db", type=Path, help="SQLite file that keeps conversations across restarts")
    parser.add_argument(
        "--artefacts",
        type=Path,
        help="root under which the page makes its own folder for overlays/GeoJSON (default: a temporary folder); "
        "never the working folder, your home folder or the repository, nor a folder containing them",
    )
    parser.add_argument("--max-file-mb", type=float, default=DEFAULT_MAX_FILE_MB, help="largest upload per file")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    parser.add_argument(
        "--examples", type=int, nargs="*", default=list(EXAMPLE_SEEDS), help="seeds of the bundled synthetic examples"
    )
    return parser


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (``localhost``, 127.x, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_login(token: str) -> Callable[[str, str], bool]:
    """Gradio's login check: any user name, the token as the password (compared in constant time)."""

    def check(_user: str, password: str) -> bool:
        return hmac.compare_digest(password.encode(), token.encode())

    return check


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    token = os.environ.get("CHANGEAGENT_TOKEN", "")
    auth = None
    if not is_loopback(args.host):
        if token:
            auth = token_login(token)
            log.info("binding to %s: visitors log in with the password in $CHANGEAGENT_TOKEN", args.host)
        elif args.force_public:
            log.warning(
                "binding to %s with no login (--force-public): anyone who can reach this address can upload "
                "files and use the model",
                args.host,
            )
        else:
            print(
                f"app.py: error: --host {args.host} reaches beyond this machine and the page has no login; set "
                "$CHANGEAGENT_TOKEN (visitors log in with it), or pass --force-public if an open page is really "
                "wanted",
                file=sys.stderr,
            )
            return 2
    model = ModelSettings.choose(args.model_config, args.checkpoint, args.endpoint, args.timeout)
    settings = AgentSettings(model=model, checkpoint_db=args.db)
    work_dir = None
    try:
        if args.artefacts:
            work_dir = page_folder(args.artefacts)
            settings = settings.model_copy(update={"artefact_dir": work_dir / "agent"})
        page = make_page(
            settings,
            work_dir=work_dir,
            max_file_mb=args.max_file_mb,
            max_pixels=args.max_pixels,
            example_seeds=args.examples,
        )
    except (InputError, OSError, ValueError) as exc:  # a missing config or checkpoint: one line, no traceback
        print(f"app.py: error: could not set up the agent: {exc}", file=sys.stderr)
        return 2
    if page.agent.model_problem:  # asked for a model that does not load: say so now, not to every visitor
        print(
            f"app.py: error: {page.agent.model_problem}; fix --model-config/--checkpoint or drop them", file=sys.stderr
        )
        return 2
    log.info("perception: %s", page.perception)
    blocks = build_blocks(page)
    blocks.launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=int(args.max_file_mb * 1024 * 1024),
        app_kwargs={"middleware": [Middleware(HiddenFileGuard)]},  # no allowed_paths: outputs go through the cache
        show_error=False,
        auth=auth,
        head=ZOOM_HEAD,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
