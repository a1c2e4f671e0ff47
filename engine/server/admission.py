"""How many new connections the engine reads per second, before anyone has signed anything.

A stranger who knows the engineId can reconnect as fast as the engine closes them: every new
connection costs a WebSocket handshake and, with permessage-deflate, up to 64 KiB of inflating
before its first frame is refused. Per connection that is bounded, but a flooder with a free
core opens hundreds of thousands a minute and fills the engine's core with them. So new
connections take a token from one engine-wide bucket before a byte of theirs is read: the
first `burst` at once, then `rate` per second. One bucket for all, not one per address:
behind the Cloudflare tunnel every client, owner and stranger alike, arrives from loopback.

A connection without a token waits with its reading paused (it costs a socket and nothing of
the loop), in order of arrival; websockets' open timeout (10 s) closes one that waits longer,
and past `max_waiting` the oldest waiter is dropped. Under a flood the owner's new connection
(the GUI opened meanwhile) therefore waits for the strangers' connections ahead of it, about
their number / `rate` seconds: half a second behind 48 of them at the default 100 per second.
(Newest-first was tried: a stranger served reconnects within a millisecond, before the next
token, so it was always the newest and the owner was never served.)
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from websockets.asyncio.server import ServerConnection


class Admission:
    """The token bucket and the waiting connections (their transports, oldest first)."""

    def __init__(self, rate: float, burst: int, *, max_waiting: int) -> None:
        """`rate` > 0 and `burst` ≥ 1, as engine/config.py checks them."""
        self.rate = rate
        self.burst = burst
        self.max_waiting = max_waiting
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._waiting: deque[asyncio.Transport] = deque()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def arrive(self, transport: asyncio.Transport) -> None:
        """A new connection, before anything of it is read: read it now, or park it."""
        if not self._waiting and self._take():
            return
        transport.pause_reading()
        self._waiting.append(transport)
        if len(self._waiting) > self.max_waiting:
            self._waiting.popleft().abort()
        self._schedule()

    def leave(self, transport: asyncio.Transport) -> None:
        """The connection closed (a waiter that gave up, or any other): forget it."""
        try:
            self._waiting.remove(transport)
        except ValueError:
            pass

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _schedule(self) -> None:
        if self._timer is None and self._waiting:
            delay = max(0.0, (1.0 - self._tokens) / self.rate)
            self._timer = asyncio.get_running_loop().call_later(delay, self._serve)

    def _serve(self) -> None:
        self._timer = None
        while self._waiting and self._take():
            transport = self._waiting.popleft()
            if not transport.is_closing():
                transport.resume_reading()
        self._schedule()


class AdmittedConnection(ServerConnection):
    """websockets' server connection, made to wait for its Admission token before it reads."""

    def __init__(self, *args: Any, admission: Admission, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admission = admission

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.admission.arrive(transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.admission.leave(self.transport)
        super().connection_lost(exc)
