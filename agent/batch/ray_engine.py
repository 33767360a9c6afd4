"""The Ray engine: CPU tasks load, mask and verify; an actor pool holds the agent and model."""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable
from typing import Any

from agent.batch.pair_work import BatchConfig, PairJob, PairOutcome, converse, make_agent, prepare_pair
from tools.raster import InputError

# ------------------------------------------------------------------------------------------- Ray engine


def _ray_prepare(row: dict[str, Any], config_json: str) -> dict[str, Any]:
    """Ray task (CPU): decode, mask and verify one pair; the result travels pickled to the model actors."""
    config = BatchConfig.model_validate_json(config_json)
    prepared = prepare_pair(PairJob.model_validate_json(row["job"]), config)
    return {"payload": pickle.dumps(prepared, protocol=5)}


class _RayConversation:
    """Ray actor: holds one agent (and its model, on its GPU when there is one) and runs the conversations."""

    def __init__(self, config_json: str) -> None:
        self.config = BatchConfig.model_validate_json(config_json)
        self.agent = make_agent(self.config)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        prepared = pickle.loads(row["payload"])
        outcome = prepared if isinstance(prepared, PairOutcome) else converse(prepared, self.agent, self.config)
        return {"outcome": outcome.model_dump_json()}


def run_ray(
    jobs: list[PairJob], config: BatchConfig, workers: int | None, commit: Callable[[PairOutcome], None]
) -> int:
    """Run the pairs on Ray Data: CPU tasks prepare pairs, an actor pool holds the agent(s); this process writes.

    A local Ray is started on demand (and stopped after), or the cluster at ``RAY_ADDRESS`` is joined; its
    workers must see the catalog's files and this package. With an in-process DeltaVLM and GPUs in the
    cluster, the pool holds one actor per GPU; otherwise ``workers`` actors (default: the cluster's CPUs).
    Returns the number of workers used.
    """
    try:
        import ray
        import ray.data
        from ray.data import ActorPoolStrategy, TaskPoolStrategy
    except ImportError as exc:
        raise InputError("--engine ray needs Ray Data: pip install 'changeagent[batch]'") from exc
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=os.environ.get("RAY_ADDRESS") or None,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    try:
        resources = ray.cluster_resources()
        workers = workers or max(1, int(resources.get("CPU", 1)))
        gpus = int(resources.get("GPU", 0))
        if config.agent.model.backend == "in-process" and gpus:
            pool, actor_cpus, actor_gpus = gpus, 1.0, 1.0
        else:
            # the conversation is light next to decoding and masking: do not let the actors starve the tasks
            pool, actor_cpus, actor_gpus = workers, 0.001, 0.0
        if not jobs:
            return workers
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        config_json = config.model_dump_json()
        dataset = ray.data.from_items(
            [{"job": job.model_dump_json()} for job in jobs], override_num_blocks=min(len(jobs), 4096)
        )
        dataset = dataset.map(
            _ray_prepare, fn_kwargs={"config_json": config_json}, compute=TaskPoolStrategy(size=workers), num_cpus=1
        )
        dataset = dataset.map(
            _RayConversation,
            fn_constructor_kwargs={"config_json": config_json},
            compute=ActorPoolStrategy(size=pool),
            num_cpus=actor_cpus,
            num_gpus=actor_gpus,
        )
        for row in dataset.iter_rows():
            commit(PairOutcome.model_validate_json(row["outcome"]))
    finally:
        if started_here:
            ray.shutdown()
    return workers
