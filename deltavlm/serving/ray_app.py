"""Ray Serve hosting: the same FastAPI app as the replica's ingress, batching by ``@serve.batch``.

Ray Serve brings what one uvicorn process cannot: replicas across GPUs (``--replicas``, one model each,
``num_gpus`` per replica), back-pressure (``max_queued_requests`` → 503) and restarts of a failed replica.
Each replica builds its engine from the same :class:`ServerSettings` (sent as JSON), loads the model in
its constructor, and serves :func:`create_app` over it; only the batcher differs (Ray's ``@serve.batch``
instead of our asyncio one), so the code the fast tests cover is the code Ray runs.

With ``--replicas`` above 1 a conversation should stay on the replica that encoded its pair: the client
sends the pair id as ``serve_multiplexed_model_id`` and each replica registers the pairs it holds through
``@serve.multiplexed``, so Ray's router prefers that replica. Ray learns those registrations
asynchronously, so a turn can still land elsewhere; that replica then finds the pixels in a store shared
by all replicas (a Ray actor) and encodes the pair once for itself, instead of answering 404.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

from deltavlm.serving.settings import ServerSettings

log = logging.getLogger(__name__)

APP_NAME = "changeagent"
DEPLOYMENT_NAME = "deltavlm"
PAIRS_ACTOR = "changeagent-pairs"
_SINGLE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_started_ray = False
_saved_env: dict[str, str | None] = {}
_saved_constants: dict[str, object] = {}


def _gpus_per_replica(settings: ServerSettings) -> float:
    if settings.gpus_per_replica is not None:
        return settings.gpus_per_replica
    if settings.device is not None and not settings.device.startswith("cuda"):
        return 0.0
    import torch

    return 1.0 if torch.cuda.is_available() else 0.0


def _single_machine_in_this_process() -> None:
    """Make this (already importing) process agree with its Ray children that the node IP is loopback.

    Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when ``ray`` is first imported; this process may
    have imported it earlier (to check Ray Serve is installed), so the constant is updated too. Guarded:
    if Ray drops the constant, only the environment variable applies.
    """
    try:
        from ray._private import ray_constants
    except ImportError:
        return
    if hasattr(ray_constants, "ENABLE_RAY_CLUSTER"):
        _saved_constants.setdefault("ENABLE_RAY_CLUSTER", ray_constants.ENABLE_RAY_CLUSTER)
        ray_constants.ENABLE_RAY_CLUSTER = False


def _replica_grpc_on_loopback() -> None:
    """Bind the replica's inter-deployment gRPC server to 127.0.0.1 instead of every interface.

    Ray Serve 2.60 hard-codes ``[::]:0`` for it (``ray/serve/_private/replica.py``, no setting), which would
    open a port to the network on a server meant to be reachable from this machine only. With the node IP
    on loopback (see :func:`start`) nothing needs to reach it from elsewhere. The patch is guarded: if Ray
    renames the helper, nothing is patched and Ray's own behaviour stands.
    """
    try:
        from ray.serve._private import replica
    except ImportError:
        return
    original = getattr(replica, "add_port_to_grpc_server", None)
    if original is None or getattr(original, "loopback_only", False):
        return

    def add_port_on_loopback(server: Any, address: str) -> int:
        if address.startswith("[::]:") or address.startswith("0.0.0.0:"):
            address = "127.0.0.1:" + address.rsplit(":", 1)[1]
        return original(server, address)

    add_port_on_loopback.loopback_only = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = add_port_on_loopback


class SharedPairStore:
    """One store of pair pixels for all replicas (a Ray actor), so a turn that lands on another replica
    finds its pair instead of a 404; that replica then encodes the pair once for itself."""

    def __init__(self, max_bytes: int, max_entries: int) -> None:
        from deltavlm.serving.engine import PairStore

        self._store = PairStore(max_bytes, max_entries)

    def put(self, pair_id: str, t1: Any, t2: Any) -> None:
        from deltavlm.serving.engine import StoredPair

        self._store.put(StoredPair(pair_id, t1, t2, feature_key=""))

    def get(self, pair_id: str) -> tuple[Any, Any] | None:
        pair = self._store.get(pair_id)
        return None if pair is None else (pair.t1, pair.t2)


class RayPairDirectory:
    """:class:`~deltavlm.serving.engine.PairDirectory` over the shared store's actor."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def publish(self, pair_id: str, t1: Any, t2: Any) -> None:
        await self.actor.put.remote(pair_id, t1, t2)

    async def lookup(self, pair_id: str) -> tuple[Any, Any] | None:
        return await self.actor.get.remote(pair_id)


def _shared_pairs(settings: ServerSettings) -> RayPairDirectory:
    import ray

    actor = (
        ray.remote(num_cpus=0)(SharedPairStore)
        .options(name=PAIRS_ACTOR, namespace=APP_NAME, get_if_exists=True, lifetime="detached")
        .remote(settings.pair_store_mb * 2**20, settings.pair_store_entries)
    )
    return RayPairDirectory(actor)


def build_application(settings: ServerSettings) -> Any:
    """The Ray Serve application (``Deployment.bind``) for ``serve.run``."""
    from ray import serve

    from deltavlm.serving.app import create_app, engine_factory
    from deltavlm.serving.batching import ray_serve_batcher
    from deltavlm.serving.metrics import ServerMetrics

    gpus = _gpus_per_replica(settings)

    @serve.deployment(
        name=DEPLOYMENT_NAME,
        num_replicas=settings.replicas,
        ray_actor_options={"num_gpus": gpus, "num_cpus": 1},
        # room for a full batch of chats plus uploads, health and metrics in flight at once
        max_ongoing_requests=max(4 * settings.max_batch_size, 32),
        max_queued_requests=settings.max_queue,
        health_check_period_s=10,
    )
    @serve.ingress()
    class DeltaVLMDeployment:
        def __init__(self, settings_json: dict[str, Any]) -> None:
            self.settings = ServerSettings.model_validate(settings_json)
            if self.settings.loopback and not self.settings.ray_address:
                _replica_grpc_on_loopback()
            started = time.perf_counter()
            directory = _shared_pairs(self.settings) if self.settings.replicas > 1 else None
            build = engine_factory(
                self.settings, batcher_factory=ray_serve_batcher, engine_name="ray-serve", directory=directory
            )
            self.engine = build(ServerMetrics())
            self.engine.on_pair = self._note_pair
            log.info(
                "DeltaVLM replica ready in %.1f s on %s", time.perf_counter() - started, self.engine.health().device
            )

        def __serve_build_asgi_app__(self) -> Any:
            return create_app(self.engine, self.settings)

        @serve.multiplexed(max_num_models_per_replica=settings.pair_store_entries)
        async def _hold_pair(self, pair_id: str) -> str:
            return pair_id  # nothing to load: registering the id is what routes its requests here

        async def _note_pair(self, pair_id: str) -> None:
            if serve.get_multiplexed_model_id() == pair_id:  # the client asked for affinity to this pair
                await self._hold_pair(pair_id)

    return DeltaVLMDeployment.bind(settings.model_dump(mode="json"))


def start(settings: ServerSettings) -> None:
    """Start (or join) Ray, start Serve's HTTP proxy on ``host:port``, deploy, and wait until it is ready."""
    import ray
    from ray import serve

    global _started_ray
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "namespace": APP_NAME}
        env: dict[str, str] = {}
        if settings.ray_address:
            options["address"] = settings.ray_address
        else:
            options["address"] = "local"  # a private Ray instance, never someone else's running cluster
            if settings.loopback:
                # Ray's own servers (GCS, raylet, workers) listen on the node IP; on Linux Ray replaces a
                # loopback node IP by the routable one unless single-machine mode is asked for like this.
                env[_SINGLE_MACHINE] = "0"
                options["_node_ip_address"] = "127.0.0.1"
        _saved_env.update({key: os.environ.get(key) for key in env})
        os.environ.update(env)  # Ray's processes read it as they start, some after ray.init returns
        if env:
            _single_machine_in_this_process()
        ray.init(**options)
        _started_ray = True
    serve.start(http_options={"host": settings.host, "port": settings.port}, proxy_location="HeadOnly")
    serve.run(build_application(settings), name=APP_NAME, route_prefix="/", blocking=False)


def stop() -> None:
    """Tear down Serve, and the Ray runtime if :func:`start` started it."""
    import ray
    from ray import serve

    global _started_ray
    try:
        if ray.is_initialized():
            serve.shutdown()
            with contextlib.suppress(ValueError):  # ValueError: one replica, so no shared store
                ray.kill(ray.get_actor(PAIRS_ACTOR, namespace=APP_NAME))
    finally:
        if _started_ray and ray.is_initialized():  # a Ray runtime someone else started is theirs to stop
            ray.shutdown()
        _started_ray = False
        for key, value in _saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _saved_env.clear()
        if _saved_constants:
            from ray._private import ray_constants

            for name, value in _saved_constants.items():
                setattr(ray_constants, name, value)
            _saved_constants.clear()
