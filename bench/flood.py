"""A stranger's flood, as issue 11 found it: small permessage-deflate frames that inflate to
megabytes of JSON, sent by connections that reconnect as soon as the engine closes them.

The frames are built once (compressed, masked) and written as raw bytes, so an attacker costs
its own process almost nothing per frame and the engine gets the whole flood. Used by
`bench_preauth_flood` (in its own process: `python -m bench.flood URL CONNECTIONS SECONDS`) and
by `tests/hardening/test_preauth_limits.py` (on the test's loop).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
import sys
import zlib
from urllib.parse import urlsplit

_MASK = b"\x37\xfa\x21\x3d"


def bomb_text(inflated_bytes: int = 4_000_000) -> str:
    """About `inflated_bytes` of unsigned JSON; it deflates to a few KiB."""
    return json.dumps({"auth": {"address": "0x" + "ab" * 20, "message": "m", "signature": "s"},
                       "payload": {"type": "save_settings", "settings": {"x": "a" * inflated_bytes}}})


def compressed_frame(text: str) -> bytes:
    """One masked client text frame, RSV1 set (permessage-deflate, RFC 7692 §7.2.1)."""
    deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, -15)
    data = deflate.compress(text.encode()) + deflate.flush(zlib.Z_SYNC_FLUSH)
    data = data[:-4] if data.endswith(b"\x00\x00\xff\xff") else data
    length = len(data)
    if length < 126:
        head = struct.pack("!BB", 0xC1, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", 0xC1, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0xC1, 0x80 | 127, length)
    masked = bytes(b ^ _MASK[i % 4] for i, b in enumerate(data))
    return head + _MASK + masked


def handshake(url: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {target} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
    return parts.hostname or "127.0.0.1", parts.port or 80, request.encode()


class Flood:
    """`connections` attackers, each sending bombs on one connection until the engine closes
    it, then reconnecting. Counts what happened."""

    def __init__(self, url: str, connections: int, frame: bytes | None = None) -> None:
        self.url = url
        self.connections = connections
        self.frame = frame if frame is not None else compressed_frame(bomb_text())
        self.sent = 0
        self.opened = 0
        self.refused = 0  # handshakes answered with something other than 101
        self.deflate_accepted = 0
        self.close_codes: list[int] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._attacker()) for _ in range(self.connections)]

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _attacker(self) -> None:
        host, port, request = handshake(self.url)
        while not self._stop.is_set():
            writer = None
            try:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 101"):
                    self.refused += 1
                    await asyncio.sleep(0.01)
                    continue
                self.opened += 1
                if b"permessage-deflate" in head.lower():
                    self.deflate_accepted += 1
                closed = asyncio.create_task(_read_frames(reader, self.close_codes))
                try:
                    while not self._stop.is_set() and not closed.done():
                        writer.write(self.frame)
                        self.sent += 1
                        await writer.drain()
                        await asyncio.sleep(0)
                finally:
                    closed.cancel()
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                await asyncio.sleep(0.01)
            finally:
                if writer is not None:
                    writer.close()


async def _read_frames(reader: asyncio.StreamReader, close_codes: list[int]) -> None:
    """Read the server's frames until EOF; note the code of its close frame, if any."""
    with contextlib.suppress(asyncio.IncompleteReadError, OSError):
        while True:
            first, second = await reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", await reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await reader.readexactly(8))[0]
            data = await reader.readexactly(length)
            if first & 0x0F == 0x8:
                close_codes.append(struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005)
                return


async def _run(url: str, connections: int, seconds: float) -> None:
    flood = Flood(url, connections)
    flood.start()
    print("FLOODING", flush=True)
    # Until the time is up or stdin closes (the benchmark's way to end the flood).
    eof = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))
    await asyncio.wait([eof], timeout=seconds)
    await flood.stop()
    print(json.dumps({"sent": flood.sent, "opened": flood.opened, "refused": flood.refused,
                      "deflate": flood.deflate_accepted}), flush=True)


if __name__ == "__main__":
    # The attacker's own CPU is not the engine's problem: on a shared 2-core machine it yields to
    # the engine and the owner, and sends with whatever is left (still thousands of bombs).
    os.nice(19)
    asyncio.run(_run(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
    os._exit(0)  # the stdin reader thread may still wait
