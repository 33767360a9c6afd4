"""``changeagent serve`` (also ``python -m deltavlm.serving``): start the DeltaVLM server.

The options are defined here, next to the server, and ``agent/cli/serve.py`` mounts them under the
``changeagent`` command, so the two entry points cannot disagree. Heavy imports (torch, Ray, uvicorn)
wait until a server actually starts, so ``changeagent --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from deltavlm.serving.schema import RequestLimits
from deltavlm.serving.settings import ServerSettings

TOKEN_ENV = "CHANGEAGENT_TOKEN"
log = logging.getLogger("deltavlm.serving")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's options, on any parser."""
    defaults = ServerSettings()
    limits = RequestLimits()
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model", required=True, help="config name (tiny, full), a config YAML, or one of our checkpoint folders"
    )
    model.add_argument("--checkpoint", help="weights to load over the config (our folder or the authors' .pth)")
    model.add_argument("--device", help="torch device (default: the config's; 'auto' = CUDA when present)")
    model.add_argument(
        "--dtype",
        choices=["auto", "bfloat16", "float16", "float32"],
        default=defaults.dtype,
        help="GPU precision: autocast and frozen-LLM weights (auto keeps the config's, bf16 for full)",
    )
    net = parser.add_argument_group("network")
    net.add_argument(
        "--host",
        default=defaults.host,
        help="bind address (default loopback); a wider bind needs a token (or --allow-no-token)",
    )
    net.add_argument(
        "--allow-no-token",
        action="store_true",
        help="bind beyond loopback WITHOUT a token anyway (anyone who reaches the port can use the model)",
    )
    net.add_argument(
        "--body-timeout-s",
        type=float,
        default=defaults.body_timeout_s,
        help="close requests whose body has not arrived after this many seconds (408)",
    )
    net.add_argument("--port", type=int, default=defaults.port)
    net.add_argument(
        "--token-file",
        type=Path,
        help=f"read the bearer token from this file (first line); or set ${TOKEN_ENV}. A token typed on the command "
        "line is refused: every user of the machine could read it in ps",
    )
    net.add_argument("--token", help=argparse.SUPPRESS)
    net.add_argument(
        "--engine",
        choices=["auto", "ray", "uvicorn"],
        default=defaults.engine,
        help="ray: Ray Serve (replicas, back-pressure); uvicorn: one process; auto: Ray Serve when installed",
    )
    batch = parser.add_argument_group("batching and memory")
    batch.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size, help="1 turns batching off")
    batch.add_argument("--max-wait-ms", type=float, default=defaults.max_wait_ms, help="longest wait to fill a batch")
    batch.add_argument("--max-queue", type=int, default=defaults.max_queue, help="queued requests beyond get 503")
    batch.add_argument("--queue-timeout-s", type=float, default=defaults.queue_timeout_s)
    batch.add_argument("--torch-threads", type=int, help="CPU threads for torch (CPU serving on a shared machine)")
    batch.add_argument("--feature-cache-mb", type=int, help="per-pair feature cache budget (default: the config's)")
    batch.add_argument("--pair-store-mb", type=int, default=defaults.pair_store_mb, help="memory for held pairs")
    batch.add_argument("--replicas", type=int, default=defaults.replicas, help="Ray Serve replicas (one model each)")
    batch.add_argument("--gpus-per-replica", type=float, help="default 1 with CUDA, else 0")
    batch.add_argument("--ray-address", help="join this Ray cluster instead of starting a private one")
    lim = parser.add_argument_group("request limits")
    lim.add_argument("--max-image-mb", type=float, default=limits.max_image_bytes / 2**20, help="per PNG")
    lim.add_argument("--max-pixels", type=int, default=limits.max_pixels, help="width × height per date")
    lim.add_argument("--max-turns", type=int, default=limits.max_turns, help="earlier turns per chat request")
    lim.add_argument("--max-new-tokens", type=int, default=limits.max_new_tokens)
    lim.add_argument("--max-beams", type=int, default=limits.max_beams)
    lim.add_argument("--data-root", type=Path, help="let POST /v1/pairs name PNG files below this folder")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def token_from(args: argparse.Namespace) -> str | None:
    """The bearer token from ``--token-file`` or ``$CHANGEAGENT_TOKEN``; never from the command line itself."""
    if args.token:
        raise ValueError(
            f"--token puts the token in the command line, where ps shows it to every user; set ${TOKEN_ENV} or pass "
            "--token-file FILE instead"
        )
    if args.token_file is not None:
        try:
            lines = args.token_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--token-file {args.token_file} cannot be read: {exc}") from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise ValueError(f"--token-file {args.token_file} is empty; its first line is the token")
        return token
    return os.environ.get(TOKEN_ENV) or None


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    limits = RequestLimits(
        max_image_bytes=int(args.max_image_mb * 2**20),
        max_pixels=args.max_pixels,
        max_turns=args.max_turns,
        max_new_tokens=args.max_new_tokens,
        max_beams=args.max_beams,
    )
    return ServerSettings(
        model=args.model,
        checkpoint=args.checkpoint,
        device=args.device,
        dtype=args.dtype,
        host=args.host,
        port=args.port,
        token=token_from(args),
        allow_no_token=args.allow_no_token,
        body_timeout_s=args.body_timeout_s,
        engine=args.engine,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        queue_timeout_s=args.queue_timeout_s,
        torch_threads=args.torch_threads,
        feature_cache_mb=args.feature_cache_mb,
        pair_store_mb=args.pair_store_mb,
        limits=limits,
        data_root=args.data_root,
        replicas=args.replicas,
        gpus_per_replica=args.gpus_per_replica,
        ray_address=args.ray_address,
    )


def check_model_source(settings: ServerSettings) -> None:
    """Fail in a second, with the reason, on a misspelt config or a missing checkpoint (not after Ray starts)."""
    from deltavlm.checkpoints import read_checkpoint_meta
    from deltavlm.config import load_config

    source = Path(settings.model)
    if source.is_dir():
        read_checkpoint_meta(source)
    else:
        load_config(settings.model)
    if settings.checkpoint is not None and not Path(settings.checkpoint).exists():
        raise FileNotFoundError(f"checkpoint not found: {settings.checkpoint}")
    if settings.data_root is not None and not settings.data_root.is_dir():
        raise FileNotFoundError(f"--data-root is not a folder: {settings.data_root}")


def choose_engine(settings: ServerSettings) -> str:
    """``ray`` or ``uvicorn``; ``auto`` falls back to uvicorn (with a warning) when Ray Serve is missing."""
    why = ""
    has_ray = importlib.util.find_spec("ray") is not None and importlib.util.find_spec("ray.serve") is not None
    if has_ray:
        try:
            import ray.serve  # noqa: F401  (its optional dependencies may still be missing)
        except ImportError as exc:
            has_ray, why = False, str(exc)
    else:
        why = "the ray package is not installed"
    if settings.engine == "uvicorn" or (settings.engine == "auto" and not has_ray):
        if settings.engine == "auto":
            log.warning("Ray Serve unavailable (%s); serving with uvicorn. pip install 'changeagent[serve]'", why)
        if settings.replicas > 1:
            raise ValueError("--replicas needs --engine ray (uvicorn runs one model in one process)")
        return "uvicorn"
    if not has_ray:
        raise RuntimeError(f"--engine ray needs Ray Serve: {why}; pip install 'changeagent[serve]'")
    return "ray"


def exposure_refusal(settings: ServerSettings) -> str | None:
    """Why the server must not start on this bind (None when it may): beyond loopback a token is required."""
    if settings.loopback or settings.token or settings.allow_no_token:
        return None
    return (
        f"refusing to bind {settings.host} without a token: anyone who reaches the port could use the model. "
        f"Set ${TOKEN_ENV} (or --token-file), bind 127.0.0.1, or pass --allow-no-token to accept the risk"
    )


def exposure_warning(settings: ServerSettings) -> str | None:
    """What to tell the operator when the server is reachable beyond this machine (None on loopback)."""
    if settings.loopback:
        return None
    exposure = "with a bearer token" if settings.token else "WITHOUT a token: anyone who reaches it can use it"
    return f"binding to {settings.host}: the server is reachable from other machines, {exposure}"


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


def serve(settings: ServerSettings, log_level: str = "info") -> int:
    """Run the server until interrupted; 2 for a setup error a user can fix."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    refusal = exposure_refusal(settings)
    if refusal:
        print(f"changeagent serve: error: {refusal}", file=sys.stderr)
        return 2
    try:
        check_model_source(settings)
        engine = choose_engine(settings)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"changeagent serve: error: {exc}", file=sys.stderr)
        return 2
    warning = exposure_warning(settings)
    if warning:
        log.warning(warning)
    url = f"http://{settings.host}:{settings.port}"
    if engine == "ray":
        from deltavlm.serving import ray_app

        started = time.perf_counter()
        try:
            ray_app.start(settings.model_copy(update={"engine": "ray"}))
        except Exception as exc:
            print(f"changeagent serve: Ray Serve failed to start: {exc}", file=sys.stderr)
            ray_app.stop()
            return 1
        log.info(
            "DeltaVLM (%s) served by Ray Serve at %s in %.1f s; Ctrl-C stops",
            settings.model,
            url,
            time.perf_counter() - started,
        )
        try:
            _wait_for_signal()
        finally:
            ray_app.stop()
        return 0

    import uvicorn

    from deltavlm.serving.app import create_app, engine_factory
    from deltavlm.serving.http_limits import uvicorn_limits
    from deltavlm.serving.metrics import ServerMetrics

    started = time.perf_counter()
    try:
        engine_obj = engine_factory(settings.model_copy(update={"engine": "uvicorn"}))(ServerMetrics())
    except Exception as exc:
        print(f"changeagent serve: could not load the model: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    health = engine_obj.health()
    log.info(
        "DeltaVLM (%s) loaded on %s (%s) in %.1f s; serving at %s",
        health.model,
        health.device,
        health.dtype,
        time.perf_counter() - started,
        url,
    )
    uvicorn.run(
        create_app(engine_obj, settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_keep_alive=5,  # an idle connection is closed after 5 s; a half-sent body after body_timeout_s
        **uvicorn_limits(),  # headers: at most 64 KiB, sent within 10 s (deltavlm.serving.http_limits)
    )
    return 0


def run_from_args(args: argparse.Namespace) -> int:
    """Parsed options → a running server; out-of-range values are one line on stderr and status 2."""
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"changeagent serve: error: {problems}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"changeagent serve: error: {exc}", file=sys.stderr)
        return 2
    return serve(settings, args.log_level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deltavlm.serving", description="Serve DeltaVLM over HTTP.")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
