"""A server in a background thread (uvicorn on loopback): for tests, the load test and notebooks.

Real HTTP on a real socket, so a client sees exactly what it would see from ``changeagent serve``, and the
server can be stopped and started again on the same port to test what clients do when it disappears.
"""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.types import ASGIApp


class BackgroundServer:
    """uvicorn serving ``app`` on ``host:port`` (port 0 picks a free one) until :meth:`stop`."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.app = app
        self.host = host
        self.port = port
        self.log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> BackgroundServer:
        from deltavlm.serving.http_limits import uvicorn_limits

        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level=self.log_level, lifespan="on", **uvicorn_limits()
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server on {self.host}:{self.port} did not start (port in use?)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the server on {self.host}:{self.port} did not start in {timeout_s:g} s")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close the socket and wait for the thread; later connections are refused."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._server = self._thread = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
