"""Long threads: peak memory of 2,000 questions on one pair in batch, and the database of a 400-turn API thread.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/bench_threads.py [--questions 2000] [--turns 400]``.

Both parts run on one synthetic 256² GeoTIFF pair (``deltavlm.synthetic.write_example``, seed 26) with the
classical mask, each in a fresh process, and print one JSON line: the batch part's peak RSS
(``getrusage``) with ``changeagent batch``'s runner in one local worker; the thread part's
SQLite file (with its WAL) after ``--turns`` asks in one thread through ``Agent.ask``. The questions cycle
through a fixed list of counts, locations, follow-ups and explanations. Issue 26 asks for under 600 MB and under
50 MB; before checkpoints stopped copying every past turn they were 7.6 GB and 1.13 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "Has anything changed?",
    "How many buildings were added?",
    "Where did the changes happen?",
    "why?",
    "and roads?",
    "Is the north-west changed?",
    "are you sure?",
    "Describe the changes.",
]


def batch_part(folder: Path, n: int) -> dict[str, float]:
    from agent.batch.runner import BatchOptions, run_batch
    from deltavlm.synthetic import write_example

    paths = write_example(folder / "pair", seed=26, size=256)
    catalog = folder / "pairs.csv"
    catalog.write_text(f"id,t1,t2\none,{paths.t1.relative_to(folder)},{paths.t2.relative_to(folder)}\n")
    questions = folder / "questions.txt"
    questions.write_text("\n".join(QUESTIONS[i % len(QUESTIONS)] for i in range(n)) + "\n")
    started = time.perf_counter()
    report = run_batch(
        BatchOptions(catalog=catalog, questions=questions, out=folder / "out", workers=1, progress=False)
    )
    return {"questions": n, "pairs_failed": report.failed, "seconds": round(time.perf_counter() - started, 1)}


def thread_part(folder: Path, turns: int) -> dict[str, float]:
    from agent.api import Agent
    from agent.settings import AgentSettings
    from deltavlm.synthetic import write_example

    paths = write_example(folder / "pair", seed=26, size=256)
    db = folder / "threads.sqlite"
    agent = Agent(AgentSettings(artefact_dir=folder / "artefacts", checkpoint_db=db))
    started = time.perf_counter()
    for turn in range(turns):
        agent.ask((paths.t1, paths.t2), QUESTIONS[turn % len(QUESTIONS)], thread_id="long")
    kept = len(agent.history("long"))
    agent.close()
    size = sum(p.stat().st_size for p in folder.glob("threads.sqlite*"))
    return {
        "turns": turns,
        "history": kept,
        "db_mb": round(size / 2**20, 2),
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_part(part: str, count: int) -> dict[str, float]:
    """Run one part in a fresh process; it reports its own peak RSS (and its workers', if any)."""
    command = [sys.executable, __file__, "--part", part, "--count", str(count)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return {"part": part, **json.loads(done.stdout.strip().splitlines()[-1])}


def peak_rss_mb() -> int:
    """This process's peak resident memory, or its children's when larger (Linux reports kB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=2000, help="questions on one pair in batch")
    parser.add_argument("--turns", type=int, default=400, help="turns of one API thread")
    parser.add_argument("--part", choices=["batch", "thread"], help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        with tempfile.TemporaryDirectory() as folder:
            work = batch_part if args.part == "batch" else thread_part
            print(json.dumps(work(Path(folder), args.count) | {"peak_rss_mb": peak_rss_mb()}))
        return
    print(json.dumps(run_part("thread", args.turns)), flush=True)
    print(json.dumps(run_part("batch", args.questions)), flush=True)


if __name__ == "__main__":
    main()
