"""A bounded per-connection send queue, so a client that reads slowly costs bounded memory and
never slows anyone else down.

Below `limit` queued frames (and `limit_bytes` queued bytes), everything is kept. Above it,
droppable frames (metrics, edge animations, log lines) are dropped and counted by type, and
"latest" frames (engine status) replace their queued predecessor. Essential frames (replies,
terminal statuses, approvals) are always queued, up to `hard_limit` frames or `hard_limit_bytes`;
past that the client is hopeless and the connection is closed (code 1013, "try again later"),
which makes the GUI reconnect and resynchronize. Counting bytes as well as frames keeps a slow
reader's cost bounded even when frames are large (job results, popups).
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
SendManyFn = Callable[[list[str]], Awaitable[None]]
BATCH_FRAMES = 256               # at most this many frames per write...
BATCH_CHARS = 512 * 1024         # ...and about this much text


class OutboxOverflow(Exception):
    """Too many essential frames are waiting for this client."""


class Outbox:
    def __init__(self, send: SendFn, *, label: str, limit: int = 1024,
                 hard_limit: int | None = None, limit_bytes: int = 8 * 1024 * 1024,
                 hard_limit_bytes: int | None = None, send_many: SendManyFn | None = None) -> None:
        self._send = send
        # Whatever queued up while the writer was busy leaves in one write (one socket call,
        # one flow-control wait) instead of one per frame.
        self._send_many = send_many
        self._label = label
        self.limit = limit
        self.hard_limit = hard_limit or limit * 4
        self.limit_bytes = limit_bytes
        self.hard_limit_bytes = hard_limit_bytes or limit_bytes * 8
        self.queued_bytes = 0
        self._dropped_by_type: dict[str, int] = {}
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
        """Queue a frame without waiting. Raises OutboxOverflow when hopeless.

        LATEST frames replace their queued predecessor (same key) always. DROPPABLE frames with
        a key (a node's metric, an edge's update: engine/runtime/reporter.py) are queued like
        any other while the client keeps up; once it falls behind, a new one replaces the
        queued frame of the same key in place (so the node's latest status still arrives, in
        its place) instead of being dropped; the frame it replaced counts as dropped."""
        if self._closed:
            return
        pending = self._latest.get(coalesce_key) if coalesce_key is not None else None
        if pending is not None and delivery is Delivery.LATEST:
            self.queued_bytes += len(text) - len(pending[0])
            pending[0] = text  # still queued: replace it in place, keep its position
            return
        backlog = len(self._queue)
        if delivery is not Delivery.ESSENTIAL and (backlog >= self.limit
                                                   or self.queued_bytes + len(text) > self.limit_bytes):
            if pending is not None:
                self._count_drop(pending[0])
                self.queued_bytes += len(text) - len(pending[0])
                pending[0] = text
                return
            self._count_drop(text)
            return
        if backlog >= self.hard_limit or self.queued_bytes + len(text) > self.hard_limit_bytes:
            raise OutboxOverflow(f"{backlog} frames ({self.queued_bytes} characters) waiting for "
                                 f"{self._label}")
        self.queued_bytes += len(text)
        holder = [text]
        if coalesce_key is not None and delivery is not Delivery.ESSENTIAL:
            self._latest[coalesce_key] = holder
            holder.append(coalesce_key)
        self._queue.append(holder)
        self._wakeup.set()

    def _count_drop(self, text: str) -> None:
        self.dropped += 1
        self._dropped_unreported += 1
        kind = _frame_type(text)
        self._dropped_by_type[kind] = self._dropped_by_type.get(kind, 0) + 1
        if time.monotonic() - self._last_drop_report >= 5.0:
            self._report_drops()

    def _report_drops(self) -> None:
        """Say what was dropped: at most every 5 s while dropping, and once it caught up."""
        if not self._dropped_unreported:
            return
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self._dropped_by_type.items()))
        log.warning("%s reads too slowly: dropped %d event frames it can afford to miss (%s); "
                    "%d dropped in all", self._label, self._dropped_unreported, kinds, self.dropped)
        self._dropped_unreported = 0
        self._dropped_by_type.clear()
        self._last_drop_report = time.monotonic()

    async def run(self) -> None:
        """Send queued frames in order until closed. Runs as the connection's writer task."""
        while True:
            while not self._queue:
                self._report_drops()  # caught up: the rest of the story, if any
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            if self._send_many is None:
                holder = self._queue.popleft()
                self._unlatch(holder)
                self.queued_bytes -= len(holder[0])
                await self._send(holder[0])
                continue
            batch: list[str] = []
            chars = 0
            while self._queue and len(batch) < BATCH_FRAMES and chars < BATCH_CHARS:
                holder = self._queue.popleft()
                self._unlatch(holder)
                batch.append(holder[0])
                chars += len(holder[0])
            self.queued_bytes -= chars
            await self._send_many(batch)

    def _unlatch(self, holder: list[str]) -> None:
        if len(holder) > 1 and self._latest.get(holder[1]) is holder:
            del self._latest[holder[1]]

    def close(self) -> None:
        """Stop after what is queued has been sent."""
        self._closed = True
        self._report_drops()
        self._wakeup.set()


def _frame_type(text: str) -> str:
    """The frame's `type` when it is the first key (as in every event frame), for the log."""
    prefix = '{"type":"'
    if text.startswith(prefix):
        end = text.find('"', len(prefix))
        if 0 < end - len(prefix) <= 64:
            return text[len(prefix):end]
    return "other"
