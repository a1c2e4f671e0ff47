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

# Below this many bytes a frame goes out uncompressed even on a permessage-deflate connection
# (RFC 7692 lets a sender choose per message): deflating a small frame costs more CPU than the
# bytes it saves. Larger frames (results, listings, popups) are still compressed.
COMPRESS_MIN_BYTES = 2048


def _header(length: int) -> bytes:
    """The header of an unmasked, final, uncompressed text frame (a server never masks)."""
    if length < 126:
        return bytes((0x81, length))
    if length < 65536:
        return bytes((0x81, 126)) + length.to_bytes(2, "big")
    return bytes((0x81, 127)) + length.to_bytes(8, "big")


async def send_texts(ws: ServerConnection, texts: list[str]) -> None:
    """Send several text messages in one socket write and one flow-control wait, small ones
    uncompressed. Uses the connection's sans-I/O protocol object, as websockets' own `send`
    does; falls back to one `send` per message if that is not there."""
    protocol = getattr(ws, "protocol", None)
    context = getattr(ws, "send_context", None)
    if protocol is None or context is None or not hasattr(protocol, "writes"):
        for text in texts:
            await ws.send(text)
        return
    async with context():
        chunk = bytearray()
        for text in texts:
            data = text.encode("utf-8")
            if len(data) < COMPRESS_MIN_BYTES:
                chunk += _header(len(data))
                chunk += data
            else:
                if chunk:
                    protocol.writes.append(bytes(chunk))
                    chunk = bytearray()
                protocol.send_text(data)  # framed (and compressed) by websockets
        if chunk:
            protocol.writes.append(bytes(chunk))


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
    too_slow: bool = False  # its outbox overflowed: it is being closed, nothing more is queued

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
