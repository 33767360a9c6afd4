"""Load test of the DeltaVLM server: N concurrent 5-turn dialogs, batching on against batching off.

Run: ``.venv/bin/python bench/bench_server.py [--dialogs 16] [--engine uvicorn|ray] [--out result.json]``.

For each mode the script starts ``python -m deltavlm.serving --model tiny`` on 127.0.0.1 (a separate process,
so the client's work is not the server's), waits for ``/health``, runs one warm-up dialog, then N dialogs at
once. Each dialog uploads its own pair and asks five questions in turn, sending the earlier turns as
history, like the agent does. It reports chat throughput, p50/p95 chat latency, the mean rows per
``generate`` call, and the vision-encoder work per dialog (pairs encoded, from the feature cache's misses,
must be 1; batched Bi-VE forwards may be fewer, because concurrent uploads share one).

The server runs torch on one thread by default (``--torch-threads``): a 1-CPU Ray replica gets one anyway,
and on a shared CPU box more threads than free cores make every number noise.

Bounded by design: loopback only, at most 64 dialogs of at most 10 turns, one time limit for everything.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

from deltavlm.serving.schema import ChatRequest, ChatResponse, ChatTurn, GenerationOptions, PairCreated, PairUpload

QUESTIONS = (
    "Please judge whether these two images have changed or not. Answer yes or no.",
    "How many buildings have been added?",
    "Where are the new buildings?",
    "Have any roads changed?",
    "Please briefly describe the changes in these two images.",
)
HOST = "127.0.0.1"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _png_b64(image: np.ndarray) -> str:
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return base64.b64encode(buffer.tobytes()).decode()


def _metrics(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m deltavlm.serving`` on loopback, stopped with SIGINT (then SIGKILL if it hangs)."""

    def __init__(self, args: argparse.Namespace, max_batch_size: int) -> None:
        self.port = _free_port()
        self.url = f"http://{HOST}:{self.port}"
        command = [
            sys.executable, "-m", "deltavlm.serving", "--model", "tiny", "--engine", args.engine,
            "--host", HOST, "--port", str(self.port), "--max-batch-size", str(max_batch_size),
            "--max-wait-ms", str(args.max_wait_ms), "--torch-threads", str(args.torch_threads),
            "--log-level", "warning",
        ]  # fmt: skip
        env = {**os.environ, "CHANGEAGENT_TOKEN": ""}
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def wait_ready(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}): {self.process.stderr.read()[-2000:]}")
            try:
                health = httpx.get(f"{self.url}/health", timeout=2.0).json()
                if health.get("ready"):
                    return health
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"server not ready in {timeout_s:g} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


async def _dialog(client: httpx.AsyncClient, seed: int, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(seed)
    t1, t2 = (rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8) for _ in range(2))
    started = time.perf_counter()
    response = await client.post(
        "/v1/pairs", json=PairUpload(t1_png_b64=_png_b64(t1), t2_png_b64=_png_b64(t2)).model_dump(exclude_none=True)
    )
    response.raise_for_status()
    pair_id = PairCreated.model_validate(response.json()).pair_id
    upload_s = time.perf_counter() - started
    history: list[ChatTurn] = []
    latencies, batch_sizes, encodes = [], [], None
    options = GenerationOptions(max_new_tokens=args.max_new_tokens)
    for question in QUESTIONS[: args.turns]:
        request = ChatRequest(pair_id=pair_id, question=question, history=history, options=options)
        started = time.perf_counter()
        response = await client.post("/v1/chat", json=request.model_dump(mode="json"))
        response.raise_for_status()
        latencies.append(time.perf_counter() - started)
        reply = ChatResponse.model_validate(response.json())
        batch_sizes.append(reply.batch_size)
        encodes = reply.pair_encodes
        history.append(ChatTurn(question=question, answer=reply.text))
    return {"upload_s": upload_s, "latencies": latencies, "batch_sizes": batch_sizes, "pair_encodes": encodes}


async def _warm_up(url: str, args: argparse.Namespace, seed: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        await _dialog(client, seed, args)


async def _load(url: str, args: argparse.Namespace, seed0: int) -> tuple[list[dict], float]:
    limits = httpx.Limits(max_connections=args.dialogs + 4)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as client:
        started = time.perf_counter()
        dialogs = await asyncio.gather(*(_dialog(client, seed0 + i, args) for i in range(args.dialogs)))
        return list(dialogs), time.perf_counter() - started


def run_mode(args: argparse.Namespace, max_batch_size: int, seed0: int, deadline: float) -> dict:
    server = ServerProcess(args, max_batch_size)
    try:
        health = server.wait_ready(max(5.0, deadline - time.monotonic()))
        asyncio.run(_warm_up(server.url, args, seed0 - 1))  # first-call costs stay out of the numbers
        before = _metrics(httpx.get(f"{server.url}/metrics").text)
        dialogs, wall = asyncio.run(asyncio.wait_for(_load(server.url, args, seed0), deadline - time.monotonic()))
        after = _metrics(httpx.get(f"{server.url}/metrics").text)
    finally:
        server.stop()
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    latencies = [s for d in dialogs for s in d["latencies"]]
    generate_calls = delta.get('deltavlm_batch_size_count{stage="generate"}', 0.0)
    generate_rows = delta.get('deltavlm_batch_size_sum{stage="generate"}', 0.0)
    return {
        "engine": health["engine"],
        "max_batch_size": max_batch_size,
        "max_wait_ms": health["max_wait_ms"],
        "dialogs": len(dialogs),
        "turns": len(latencies),
        "wall_s": round(wall, 3),
        "chat_throughput_per_s": round(len(latencies) / wall, 2),
        "chat_p50_ms": round(_percentile(latencies, 0.5) * 1e3, 1),
        "chat_p95_ms": round(_percentile(latencies, 0.95) * 1e3, 1),
        "chat_mean_ms": round(statistics.mean(latencies) * 1e3, 1),
        "upload_p50_ms": round(_percentile([d["upload_s"] for d in dialogs], 0.5) * 1e3, 1),
        "mean_generate_batch": round(generate_rows / generate_calls, 2) if generate_calls else None,
        "pairs_encoded_per_dialog": delta.get("deltavlm_feature_cache_misses_total", 0.0) / len(dialogs),
        "encoder_forwards_per_dialog": round(delta.get("deltavlm_vision_encoder_calls_total", 0.0) / len(dialogs), 3),
        "pair_encodes_reported": sorted({d["pair_encodes"] for d in dialogs}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogs", type=int, default=16, help="concurrent dialogs (1–64)")
    parser.add_argument("--turns", type=int, default=5, help="questions per dialog (1–10)")
    parser.add_argument("--engine", choices=["uvicorn", "ray"], default="uvicorn")
    parser.add_argument("--max-batch-size", type=int, default=8, help="the 'batching on' setting")
    parser.add_argument("--max-wait-ms", type=float, default=20.0)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="server's torch threads (1: as a 1-CPU Ray replica gets)"
    )
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds for the whole run")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    if not (1 <= args.dialogs <= 64 and 1 <= args.turns <= len(QUESTIONS) * 2 and args.time_limit <= 1800):
        parser.error("keep it bounded: 1–64 dialogs, 1–10 turns, at most 1800 s")
    args.turns = min(args.turns, len(QUESTIONS))
    deadline = time.monotonic() + args.time_limit
    results = []
    for index, batch in enumerate((args.max_batch_size, 1)):
        result = run_mode(args, batch, seed0=1000 * (index + 1), deadline=deadline)
        results.append(result)
        mode = f"batching on (≤{batch})" if batch > 1 else "batching off (1)"
        print(
            f"{result['engine']:9s} {mode:18s} {result['dialogs']} dialogs × {args.turns} turns: "
            f"{result['chat_throughput_per_s']:.2f} chats/s, p50 {result['chat_p50_ms']:.0f} ms, "
            f"p95 {result['chat_p95_ms']:.0f} ms, mean generate batch {result['mean_generate_batch']}, "
            f"pairs encoded/dialog {result['pairs_encoded_per_dialog']:g} "
            f"(Bi-VE forwards/dialog {result['encoder_forwards_per_dialog']:g})",
            flush=True,
        )
    on, off = results
    print(f"batching speed-up: {on['chat_throughput_per_s'] / off['chat_throughput_per_s']:.2f}× throughput")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"settings": vars(args) | {"out": str(args.out)}, "results": results}, indent=1))
    ok = all(r["pairs_encoded_per_dialog"] == 1 and r["pair_encodes_reported"] == [1] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
