"""Limits uvicorn's HTTP layer lacks: the size of a request's headers and the time to send them.

uvicorn (0.55) closes an idle keep-alive connection, but a client that opens a connection and sends its
headers a byte at a time keeps it open for as long as it likes (20 such connections stayed open past 60 s in
the probe), and its httptools parser takes headers of any size (256 MB were accepted). :class:`GuardedH11`
is uvicorn's h11 protocol with a deadline for each request's headers (armed when the connection opens and
again after each response, cancelled when the request line and headers are complete), and the server runs it
with h11's own bound on an incomplete event (:data:`MAX_HEADER_BYTES`), so oversized headers get 400.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_HEADER_BYTES = 64 * 1024
"""Request line plus headers; a bearer token and the usual headers take well under 8 KiB."""
HEADER_TIMEOUT_S = 10.0
"""Seconds a client has to send a request's line and headers once it has the connection's attention."""


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a per-request header deadline."""

    header_timeout_s = HEADER_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_header_deadline", None) is not None:
            self._header_deadline.cancel()  # type: ignore[union-attr]
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        waiting = self.cycle is None or self.cycle.response_complete  # still waiting for this request's headers
        if waiting and not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before and self.cycle is not None:  # a request's headers are complete
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_limits() -> dict[str, Any]:
    """The keyword arguments that put these limits on ``uvicorn.run``."""
    return {"http": GuardedH11, "h11_max_incomplete_event_size": MAX_HEADER_BYTES}
