"""Serving DeltaVLM over HTTP: ``changeagent serve`` and the wire contract shared with the agent's client.

- ``schema``: the HTTP contract (pydantic), imported by the server and by ``tools.vlm.HTTPBackend``.
- ``hashing``: the pair id (content hash), shared with ``tools.pairs``.
- ``engine``: pairs held by id, batched encoding and generation on one model thread, metrics.
- ``batching``: the asyncio micro-batcher, and Ray Serve's ``@serve.batch`` behind the same interface.
- ``app``: the FastAPI app (limits, auth, errors); ``limits``: input checks; ``metrics``: Prometheus text.
- ``ray_app``: the Ray Serve deployment; ``local``: uvicorn in a thread; ``cli``: the command line.

Nothing here is imported by ``import deltavlm``; the server's dependencies load only when a server starts.
"""
