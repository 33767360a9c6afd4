"""The reader on the phrasing set: requests read exactly, and answers right with the label as the mask, by kind.

    PYTHONPATH=. .venv/bin/python bench/bench_reader.py [--heldout] [--show-failures]

Every question is asked through ``Agent.ask`` on its shared/data pair with the label supplied as the mask (LEVIR-CD
labels as building change, DSIFN and OSCD labels as change without category), so perception is perfect and only the
reading and the answer are measured. Follow-up chains run in one thread. The answer's first sentence is checked
against truth recomputed from the label (tests/phrasings.py). ``--heldout`` scores the held-out file, which was
written with the main set and never used for tuning.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent import Agent
from agent.settings import AgentSettings
from tests.conftest import SHARED_DATA
from tests.phrasings import DATA, PAIRS, Truth, check_answer, load_items, request_matches


def run(path: Path, show_failures: bool) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    items = load_items(path)
    agent = Agent(AgentSettings(artefact_dir=Path(tempfile.mkdtemp(prefix="bench_reader_"))))
    truths: dict[str, Truth] = {}
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_ask: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for item in items:
        truth = truths.get(item.pair) or truths.setdefault(item.pair, Truth(SHARED_DATA, item.pair))
        t1, t2, label = truth.paths
        answer = agent.ask(
            (t1, t2),
            item.question,
            thread_id=f"{path.stem}-{item.thread}",
            mask=label,
            mask_kind="binary",
            mask_category=PAIRS[item.pair][3],
        )
        wrong = request_matches(item.expected, answer.evidence.route.core(), answer.evidence.route.other_subject)
        problem = check_answer(item, truth, answer)
        for row in (table[item.kind], by_ask[item.expected["ask"]]):
            row[0] += 1
            row[1] += not wrong
            row[2] += problem is None
        if show_failures and (wrong or problem):
            print(f"line {item.line} [{item.kind}] {item.question!r}")
            if wrong:
                got = answer.evidence.route.core()
                print(f"   request: wrong {wrong}: got {[(k, got.get(k)) for k in wrong if k in got]}")
            if problem:
                print(f"   answer: {problem}")
    return table, by_ask


def _print(title: str, table: dict[str, list[int]]) -> None:
    print(f"| {title} | questions | request read exactly | answer right |")
    print("|---|---:|---:|---:|")
    for kind, (n, read, right) in sorted(table.items()):
        print(f"| {kind} | {n} | {read / n:.0%} | {right / n:.0%} |")
    total = [sum(r[i] for r in table.values()) for i in range(3)]
    print(f"| **all** | {total[0]} | {total[1] / total[0]:.1%} | {total[2] / total[0]:.1%} |\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", action="store_true")
    parser.add_argument("--show-failures", action="store_true")
    args = parser.parse_args()
    if not (SHARED_DATA / "manifest.json").exists():
        sys.exit(f"shared data not found at {SHARED_DATA}")
    path = DATA / ("phrasings_heldout.txt" if args.heldout else "phrasings.txt")
    start = time.perf_counter()
    table, by_ask = run(path, args.show_failures)
    print(f"\n{path.name}: {sum(r[0] for r in table.values())} questions in {time.perf_counter() - start:.1f} s\n")
    _print("kind of phrasing", table)
    _print("expected ask", by_ask)


if __name__ == "__main__":
    main()
