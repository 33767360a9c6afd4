"""Cause 4 of issue 19: two writers to one thread never lose a turn.

Two processes ask 25 questions each in ONE thread of one SQLite store at the same time; the thread must hold all
50 turns, numbered 0–49 without gaps (before the per-thread lock it kept 38–56 of them, on forked lineages).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from agent.api import Agent
from agent.settings import AgentSettings
from agent.thread_lock import ThreadBusy, ThreadLocks
from tests.bad_inputs.cases import example

ROOT = Path(__file__).resolve().parents[2]
ASKS = 25
WORKER = textwrap.dedent(
    """
    import sys
    from agent.api import Agent
    from agent.settings import AgentSettings
    from tools.pairs import load_pair

    db, t1, t2, mask, name, asks = sys.argv[1:7]
    pair = load_pair(t1, t2)
    agent = Agent(AgentSettings(checkpoint_db=db, artefact_dir=db + ".art"))
    print("ready", flush=True)
    sys.stdin.readline()  # both start together
    for i in range(int(asks)):
        agent.ask(pair, f"{name} {i}: has anything changed?", thread_id="shared", mask=mask, mask_kind="levir-mci")
    agent.close()
    print("done", flush=True)
    """
)


def test_two_processes_asking_in_one_thread_keep_every_turn(tmp_path):
    ex = example(tmp_path / "ex")
    db = tmp_path / "threads.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db), str(ex.t1), str(ex.t2), str(ex.mask), name, str(ASKS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("a", "b")
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
        assert out.strip() == "done"
    agent = Agent(AgentSettings(checkpoint_db=db, artefact_dir=tmp_path / "art"))
    turns = agent.history("shared")
    agent.close()
    assert len(turns) == 2 * ASKS
    asked = sorted(t.question for t in turns)
    assert asked == sorted(f"{n} {i}: has anything changed?" for n in "ab" for i in range(ASKS))
    for name in "ab":  # each writer's turns in its own order
        mine = [t.question for t in turns if t.question.startswith(f"{name} ")]
        assert mine == [f"{name} {i}: has anything changed?" for i in range(ASKS)]


def test_a_writer_that_cannot_get_the_thread_gets_a_clear_busy_error(tmp_path):
    db = tmp_path / "threads.sqlite"
    holder = ThreadLocks(db)
    waiter = ThreadLocks(db, wait_s=0.2)
    with holder.hold("t1"):
        started = time.monotonic()
        with pytest.raises(ThreadBusy, match="thread t1 is busy"), waiter.hold("t1"):
            pass
        assert time.monotonic() - started < 2
        with waiter.hold("t2"):  # other threads are not held up
            pass
    with waiter.hold("t1"):  # released with the holder
        pass


def test_in_memory_threads_serialise_within_a_process(tmp_path):
    ex = example(tmp_path / "ex")
    agent = Agent(AgentSettings(artefact_dir=tmp_path / "art"))
    errors: list[BaseException] = []

    def ask(name: str) -> None:
        try:
            for i in range(5):
                agent.ask((ex.t1, ex.t2), f"{name} {i}", thread_id="shared", mask=ex.mask, mask_kind="levir-mci")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(n,)) for n in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(agent.history("shared")) == 10
