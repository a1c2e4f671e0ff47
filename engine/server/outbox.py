"""A bounded per-connection send queue, so a client that reads slowly costs bounded memory and
never slows anyone else down.

Below `limit` queued frames, everything is kept. Above it, droppable frames (metrics, edge
animations, log lines) are dropped and counted, and "latest" frames (engine status) replace
their queued predecessor. Essential frames (replies, terminal statuses, approvals) are always
queued, up to `hard_limit`; past that the client is hopeless and the connection is closed
(code 1013, "try again later"), which makes the GUI reconnect and resynchronize.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Awaitable, Callable

from engine.events import Delivery

log = logging.getLogger(__name__)

SendFn = Callable[[str], Awaitable[None]]


class OutboxOverflow(Exception):
    """Too many essential frames are waiting for this client."""


class Outbox:
    def __init__(self, send: SendFn, *, label: str, limit: int = 1024,
                 hard_limit: int | None = None) -> None:
        self._send = send
        self._label = label
        self.limit = limit
        self.hard_limit = hard_limit or limit * 4
        self._queue: deque[list[str]] = deque()
        self._latest: dict[str, list[str]] = {}
        self._wakeup = asyncio.Event()
        self._closed = False
        self.dropped = 0
        self._dropped_unreported = 0
        self._last_drop_report = 0.0

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, text: str, delivery: Delivery = Delivery.ESSENTIAL,
            coalesce_key: str | None = None) -> None:
        """Queue a frame without waiting. Raises OutboxOverflow when hopeless."""
        if self._closed:
            return
        if delivery is Delivery.LATEST and coalesce_key is not None:
            pending = self._latest.get(coalesce_key)
            if pending is not None:
                pending[0] = text  # still queued: replace it in place, keep its position
                return
        backlog = len(self._queue)
        if delivery is not Delivery.ESSENTIAL and backlog >= self.limit:
            self._count_drop()
            return
        if backlog >= self.hard_limit:
            raise OutboxOverflow(f"{backlog} frames waiting for {self._label}")
        holder = [text]
        if delivery is Delivery.LATEST and coalesce_key is not None:
            self._latest[coalesce_key] = holder
            holder.append(coalesce_key)
        self._queue.append(holder)
        self._wakeup.set()

    def _count_drop(self) -> None:
        self.dropped += 1
        self._dropped_unreported += 1
        now = time.monotonic()
        if now - self._last_drop_report >= 5.0:
            log.warning("%s reads too slowly: dropped %d event frames (metrics, animations, logs) "
                        "it can afford to miss; %d dropped in all",
                        self._label, self._dropped_unreported, self.dropped)
            self._dropped_unreported = 0
            self._last_drop_report = now

    async def run(self) -> None:
        """Send queued frames in order until closed. Runs as the connection's writer task."""
        while True:
            while not self._queue:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            holder = self._queue.popleft()
            if len(holder) > 1:
                self._latest.pop(holder[1], None)
            await self._send(holder[0])

    def close(self) -> None:
        """Stop after what is queued has been sent."""
        self._closed = True
        self._wakeup.set()
