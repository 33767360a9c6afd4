"""The agent's own overhead on a verifier-only turn, against the bare verifier call.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/bench_agent.py [--turns 60]``. Both sides use a user-supplied mask on a
256² synthetic pair. The bare call reads the mask and applies the rules every time; the agent verifies
the pair once per conversation (pair store) and then pays for reading the question, reconciliation,
composing the answer and checkpointing the thread, which is what this measures. The reader's own cost is
measured alone on every question of the phrasing set (tests/data/phrasings.txt).

The two sides are timed turn about, so that a shared machine's changing load falls on both alike. The ratio is
also given in CPU time (the whole process's, since LangGraph saves the checkpoint on a thread of its own), which
other jobs on the machine disturb less than wall time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from agent.api import Agent
from agent.reading import read_request
from agent.settings import AgentSettings
from deltavlm.synthetic import write_example
from tools.masks import UserMaskProvider
from tools.pairs import load_pair
from tools.verify import verify

QUESTIONS = ["Has anything changed?", "How many new buildings?", "and where?", "Describe the changes."]
THREAD = [*QUESTIONS, "How much changed, in square metres?"]
"""A five-question thread: it must cost one verification (the pair store), whatever the questions ask."""
PHRASINGS = Path(__file__).resolve().parents[1] / "tests" / "data" / "phrasings.txt"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_example(Path(tmp), seed=7)
        pair = load_pair(paths.t1, paths.t2)
        provider = UserMaskProvider(paths.mask, kind="levir-mci")
        agent = Agent(AgentSettings(artefact_dir=Path(tmp) / "artefacts"))
        agent.ask(pair, "warm up", thread_id="warm", mask=paths.mask, mask_kind="levir-mci")
        bare, turns, bare_cpu, turns_cpu = [], [], [], []
        for i in range(args.turns):  # interleaved: a shared machine's load drifts over both sides alike
            started, cpu = time.perf_counter(), time.process_time()
            verify(provider.provide(pair))
            bare.append(time.perf_counter() - started)
            bare_cpu.append(time.process_time() - cpu)
            thread = f"t{i // len(QUESTIONS)}"
            started, cpu = time.perf_counter(), time.process_time()
            agent.ask(pair, QUESTIONS[i % len(QUESTIONS)], thread_id=thread, mask=paths.mask, mask_kind="levir-mci")
            turns.append(time.perf_counter() - started)
            turns_cpu.append(time.process_time() - cpu)
        before = agent.store.verifications
        for question in THREAD:
            agent.ask(pair, question, thread_id="five", mask=paths.mask, mask_kind="levir-mci")
        fresh = Agent(AgentSettings(artefact_dir=Path(tmp) / "fresh"))
        for question in THREAD:
            fresh.ask(pair, question, thread_id="five")
        verified = (agent.store.verifications - before, fresh.store.verifications)
    b50, b95 = _percentile(bare, 0.5) * 1e3, _percentile(bare, 0.95) * 1e3
    a50, a95 = _percentile(turns, 0.5) * 1e3, _percentile(turns, 0.95) * 1e3
    print(f"bare verifier (read mask + rules), 256² pair: p50 {b50:.1f} ms, p95 {b95:.1f} ms")
    print(f"agent verifier-only turn (in-memory checkpointer): p50 {a50:.1f} ms, p95 {a95:.1f} ms")
    print(f"ratio agent/bare: p50 {a50 / b50:.2f}×, p95 {a95 / b95:.2f}×  (mean {statistics.mean(turns) * 1e3:.1f} ms)")
    c50 = _percentile(turns_cpu, 0.5) / _percentile(bare_cpu, 0.5)
    print(f"ratio agent/bare in CPU time (process, all threads): p50 {c50:.2f}×")
    print(
        f"verifications for a {len(THREAD)}-question thread: {verified[0]} on a pair already in the store, "
        f"{verified[1]} on a new agent (classical mask)"
    )
    questions = [line.split(" | ")[2] for line in PHRASINGS.read_text(encoding="utf-8").splitlines() if " | " in line]
    previous = [read_request("How many new buildings in the north?")]
    for question in questions:  # warm up: regexes compiled, py3langid's model loaded
        read_request(question, previous)
    reads = []
    for _ in range(3):
        for question in questions:
            started = time.perf_counter()
            read_request(question, previous)
            reads.append(time.perf_counter() - started)
    r50, r95, rmax = (_percentile(reads, q) * 1e3 for q in (0.5, 0.95, 1.0))
    print(f"reader alone, {len(questions)} phrasings × 3: p50 {r50:.2f} ms, p95 {r95:.2f} ms, max {rmax:.2f} ms")


if __name__ == "__main__":
    main()
