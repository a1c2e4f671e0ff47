"""One client connection: its outbox, the addresses that authenticated on it, its reply helper."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection

from engine.events import Delivery
from engine.protocol.frames import encode
from engine.server.outbox import Outbox

_ids = itertools.count(1)


@dataclass(eq=False)
class ClientConnection:
    ws: ServerConnection
    outbox: Outbox
    id: int = field(default_factory=lambda: next(_ids))
    owners: set[str] = field(default_factory=set)  # lower-case addresses seen on valid frames
    remote: str = "?"
    refused: int = 0  # frames refused before the connection signed in
    pairing: bool = False  # waiting for the desktop app's "allow this address?" answer
    pairing_until: float = 0.0  # loop time the pairing wait ends at the latest
    watchdog: asyncio.TimerHandle | None = None  # closes the connection if nobody signs in
    reply_tail: asyncio.Future[None] | None = None  # the last reply still waiting to be sent

    @property
    def label(self) -> str:
        return f"client #{self.id} ({self.remote})"

    def send(self, frame: dict[str, Any], delivery: Delivery = Delivery.ESSENTIAL,
             coalesce_key: str | None = None) -> None:
        """Queue a frame for this client only (replies)."""
        self.outbox.put(encode(frame), delivery, coalesce_key)

    def send_text(self, text: str, delivery: Delivery = Delivery.ESSENTIAL,
                  coalesce_key: str | None = None) -> None:
        self.outbox.put(text, delivery, coalesce_key)
