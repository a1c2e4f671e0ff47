"""Frames leave uncompressed below 2 KiB even on a permessage-deflate connection (deflating a
small frame costs more than it saves), larger ones compressed; a client that falls behind gets a
node's latest metric in place of the one it replaced, not a gap."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import zlib

from engine.client import Signer
from engine.events import Delivery
from engine.server.connection import COMPRESS_MIN_BYTES
from engine.server.outbox import Outbox
from tests.conftest import EngineFactory, Wallet


async def _raw_frames(reader: asyncio.StreamReader, count: int) -> list[tuple[bool, bytes]]:
    """(RSV1 set, payload) of the next `count` server frames (servers never mask)."""
    out = []
    while len(out) < count:
        head = await reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        out.append((bool(head[0] & 0x40), await reader.readexactly(length)))
    return out


async def test_small_frames_go_out_uncompressed_and_large_ones_compressed(
        make_engine: EngineFactory, owner: Wallet) -> None:
    engine = await make_engine()
    reader, writer = await asyncio.open_connection("127.0.0.1", engine.config.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /?engineId={engine.config.engine_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; "
                  f"client_max_window_bits\r\n\r\n").encode())
    response = await reader.readuntil(b"\r\n\r\n")
    assert b"101" in response.split(b"\r\n")[0] and b"permessage-deflate" in response
    text = json.dumps({"auth": Signer(owner.key).auth_block(), "payload": {"type": "request_settings"}}).encode()
    mask = os.urandom(4)
    writer.write(bytes([0x81, 0x80 | 126]) + len(text).to_bytes(2, "big") + mask
                 + bytes(b ^ mask[i % 4] for i, b in enumerate(text)))
    first = await _raw_frames(reader, 2)  # engine_status_update, settings_response: small
    assert [rsv1 for rsv1, _ in first] == [False, False]
    assert {json.loads(p)["type"] for _, p in first} == {"engine_status_update", "settings_response"}
    big = "z" * (COMPRESS_MIN_BYTES * 4)
    engine.publish_to_owner(owner.address, {"type": "log", "message": big}, Delivery.DROPPABLE)
    engine.publish_to_owner(owner.address, {"type": "log", "message": "small"}, Delivery.DROPPABLE)
    (rsv1_big, body), (rsv1_small, small) = await _raw_frames(reader, 2)
    assert rsv1_big and not rsv1_small and json.loads(small)["message"] == "small"
    assert json.loads(zlib.decompressobj(-15).decompress(body + b"\x00\x00\xff\xff"))["message"] == big
    writer.close()


async def test_a_falling_behind_client_gets_the_latest_metric_of_a_node_in_its_place() -> None:
    sent: list[str] = []
    outbox = Outbox(lambda t: asyncio.sleep(0), label="test", limit=2,
                    send_many=lambda batch: asyncio.sleep(0, sent.extend(batch)))
    outbox.put("run-a", Delivery.DROPPABLE, "m a")
    outbox.put("edge-a", Delivery.DROPPABLE, "c a")
    outbox.put("log", Delivery.DROPPABLE)            # over the limit, no key: dropped
    outbox.put("done-a", Delivery.DROPPABLE, "m a")  # over the limit: replaces run-a in place
    outbox.put("run-b", Delivery.DROPPABLE, "m b")   # over the limit, nothing to replace
    assert [h[0] for h in outbox._queue] == ["done-a", "edge-a"] and outbox.dropped == 3
    writer = asyncio.ensure_future(outbox.run())
    await asyncio.sleep(0.01)
    outbox.put("done-b", Delivery.DROPPABLE, "m b")  # caught up: queued as usual
    await asyncio.sleep(0.01)
    outbox.close()
    await writer
    assert sent == ["done-a", "edge-a", "done-b"]
