"""Graceful drain on SIGTERM: turn unready first, keep serving, then stop listening with nothing lost.

uvicorn's own shutdown closes the listening socket at once. Connections the kernel had already
accepted into the listen backlog, which the event loop had not yet picked up, are then reset, and so
is a keep-alive connection whose next request is still in transit when it is closed: those clients
sent a request and get a ``ReadError`` instead of an answer. :class:`DrainingServer` puts three steps
in front of uvicorn's sequence:

1. **Unready.** :class:`Drain` is flagged: ``/readyz`` answers 503 and every response carries
   ``Connection: close``, so clients stop reusing connections and a load balancer stops routing here.
   Requests keep being accepted and served for ``drain_s`` (set it above the balancer's probe period).
2. **Empty the backlog.** Wait (briefly, bounded) until no accepted connection is pending on the
   listening sockets, then close them; from now on a new connection is refused, never reset.
3. **Let in-transit requests land.** Wait ``landing_s`` before uvicorn closes idle connections, so a
   request sent on a connection that was just accepted is read and answered.

Then uvicorn's sequence runs: in-flight requests finish (up to ``timeout_graceful_shutdown``) and the
app's lifespan drains the batcher (queued pairs are scored, or answered 503 past the grace).
"""

from __future__ import annotations

import asyncio
import logging
import select
import time

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class Drain:
    """The app's view of a shutdown in progress; the server flips it, the app reads it."""

    def __init__(self) -> None:
        self.draining = False

    def begin(self) -> None:
        self.draining = True


class CloseWhileDraining:
    """ASGI middleware: while draining, every HTTP response says ``Connection: close``."""

    def __init__(self, app: ASGIApp, drain: Drain):
        self.app, self.drain = app, drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.drain.draining:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)


class DrainingServer(uvicorn.Server):
    """``uvicorn.Server`` whose shutdown first drains (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, drain: Drain, *, drain_s: float, landing_s: float = 0.5,
                 backlog_timeout_s: float = 2.0):
        super().__init__(config)
        self.drain, self.drain_s, self.landing_s, self.backlog_timeout_s = drain, drain_s, landing_s, backlog_timeout_s

    async def shutdown(self, sockets=None) -> None:
        self.drain.begin()
        log.info("draining: /readyz is 503; still serving for %.1f s", self.drain_s)
        await asyncio.sleep(self.drain_s)
        await self._empty_backlog()
        for server in self.servers:
            server.close()
        await asyncio.sleep(self.landing_s)
        await super().shutdown(sockets)

    async def _empty_backlog(self) -> None:
        """Yield to the event loop until no listening socket has a connection waiting to be accepted."""
        listening = [s for server in self.servers for s in (server.sockets or ())]
        deadline = time.monotonic() + self.backlog_timeout_s
        while listening and time.monotonic() < deadline:
            readable, _, _ = select.select(listening, [], [], 0)
            if not readable:
                return
            await asyncio.sleep(0.005)
        if listening:
            log.warning("connections still waiting in the listen backlog after %.1f s", self.backlog_timeout_s)
