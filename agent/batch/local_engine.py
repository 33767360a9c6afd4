"""The local engine: pairs in worker processes, each with its own agent, committed by the parent."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from agent.batch.pair_work import BatchConfig, PairJob, PairOutcome, make_agent, process_pair

# ----------------------------------------------------------------------------------------- local engine

_WORKER: dict[str, Any] = {}


def _worker_init(config_json: str, threads: int) -> None:
    """Each worker process gets its share of the cores: N processes × N OpenMP/OpenCV threads each would
    oversubscribe the machine, and spinning OpenMP threads then slow everything down many times over."""
    # Ctrl-C reaches every process of the terminal's group: a worker leaves quietly (no traceback) and the parent,
    # which alone commits, reports the interruption; what the worker had in hand is redone on the next run.
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import cv2

    cv2.setNumThreads(threads)
    config = BatchConfig.model_validate_json(config_json)
    _WORKER["config"] = config
    _WORKER["agent"] = make_agent(config)


def _worker_process(job_json: str) -> PairOutcome:
    return process_pair(PairJob.model_validate_json(job_json), _WORKER["agent"], _WORKER["config"])


def run_local(jobs: list[PairJob], config: BatchConfig, workers: int, commit: Callable[[PairOutcome], None]) -> None:
    """One process (workers=1) or a pool of processes, each with its own agent; this process writes."""
    if not jobs:
        return
    if workers == 1:
        agent = make_agent(config)
        try:
            for job in jobs:
                commit(process_pair(job, agent, config))
        finally:
            agent.close()
        return
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # fork after torch/langgraph threads is unsafe
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_worker_init,
        initargs=(config.model_dump_json(), max(1, (os.cpu_count() or 1) // workers)),
    ) as pool:
        queue = iter(jobs)
        running: set[concurrent.futures.Future[PairOutcome]] = set()
        for job in queue:
            running.add(pool.submit(_worker_process, job.model_dump_json()))
            if len(running) >= 2 * workers:
                break
        while running:
            finished, running = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                commit(future.result())
                following = next(queue, None)
                if following is not None:
                    running.add(pool.submit(_worker_process, following.model_dump_json()))
