"""Time to a first answer on a fresh install: the command line, and the page as a visitor meets it.

Run with the venv under test (e.g. one ``make setup`` just built): ``.venv/bin/python bench/bench_first_answer.py``.
It times, each in a new process (so imports and start-up count, as they do for a user):

- ``changeagent ask`` on a synthetic 256² GeoTIFF pair with its mask, from launch to the printed answer;
- ``python app.py``, from launch to the page answering HTTP, then loading the bundled example and asking
  one question through the page's API (gradio_client, installed with gradio), i.e. until the first answer.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_cli(work: Path) -> float:
    from deltavlm.synthetic import write_example

    pair = write_example(work / "pair", seed=7)
    command = [
        sys.executable,
        "-m",
        "agent.cli",
        "ask",
        str(pair.t1),
        str(pair.t2),
        "Has anything changed?",
        "--mask",
        str(pair.mask),
        "--mask-kind",
        "levir-mci",
        "--db",
        str(work / "threads.sqlite"),
        "--artefacts",
        str(work / "artefacts"),
    ]
    started = time.perf_counter()
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - started
    assert out.startswith("Yes"), out
    return seconds


def time_page(work: Path) -> tuple[float, float]:
    from gradio_client import Client

    port = _free_port()
    log = (work / "app.log").open("w")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--examples", "7"], cwd=ROOT, stdout=log, stderr=log
    )
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.perf_counter() - started > 180:
                    raise RuntimeError(f"app.py did not come up; see {work / 'app.log'}") from None
                time.sleep(0.2)
        up = time.perf_counter() - started
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        label = "Synthetic suburb, seed 7 (GeoTIFF, UTM 14N, 0.5 m)"
        client.predict(label, True, api_name="/load_example")
        status, *_ = client.predict("Has anything changed?", api_name="/ask")
        answered = time.perf_counter() - started
        assert "Answered turn 1" in status, status
        return up, answered
    finally:
        process.terminate()
        process.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        cli = time_cli(work)
        up, answered = time_page(work)
    print(f"changeagent ask, launch to answer: {cli:.1f} s")
    print(
        f"app.py, launch to page up: {up:.1f} s; to the first answer (example loaded, one question): {answered:.1f} s"
    )


if __name__ == "__main__":
    main()
