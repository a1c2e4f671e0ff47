"""Issue 11, "Before authentication, a stranger can take the engine down": what a connection
that has not signed in may cost the engine, tried with real permessage-deflate frames."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.flood import Flood, bomb_text
from engine.app import Engine
from engine.client import EngineClient
from tests.conftest import EngineFactory, Wallet
from tests.hardening.helpers import catch_logs, frame_text

# What SECURITY.md promises for a connection that has not signed in yet (engine/server/server.py).
PREAUTH_MAX_FRAME_BYTES = 64 * 1024
PREAUTH_MAX_REFUSED = 4


async def deflating(url: str) -> ClientConnection:
    ws = await connect(url, compression="deflate", max_size=None)
    assert ws.protocol.extensions, "permessage-deflate was not negotiated"
    return ws


async def closed_code(ws: ClientConnection, timeout: float = 10) -> int | None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    return ws.close_code


async def reply_to(ws: ClientConnection, request_id: str, timeout: float = 10) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame.get("request_id") == request_id:
            return frame


async def test_a_compressed_bomb_before_signing_in_is_not_inflated(engine: Engine,
                                                                   client: EngineClient) -> None:
    ws = await deflating(engine.url)
    text = bomb_text()
    await ws.send(text)
    # The engine inflated at most PREAUTH_MAX_FRAME_BYTES of it and closed: 1009, message too big.
    assert await closed_code(ws) == 1009
    assert len(text) > 60 * PREAUTH_MAX_FRAME_BYTES
    assert (await client.request("request_settings"))["type"] == "settings_response"


async def test_a_connection_that_has_signed_in_gets_the_full_frame_size(engine: Engine,
                                                                       owner: Wallet) -> None:
    ws = await deflating(engine.url)
    try:
        await ws.send(frame_text(owner.key, {"type": "request_settings", "request_id": "a"}))
        assert (await reply_to(ws, "a"))["type"] == "settings_response"
        blob = "b" * (3 * PREAUTH_MAX_FRAME_BYTES)
        await ws.send(frame_text(owner.key, {"type": "save_settings", "request_id": "b",
                                             "settings": {"blob": blob}}))
        reply = await reply_to(ws, "b")
        assert reply["type"] == "settings_response" and reply["settings"]["blob"] == blob, reply.get("error")
    finally:
        await ws.close()


async def test_an_uncompressed_frame_over_the_preauth_limit_closes_with_1009(engine: Engine) -> None:
    ws = await connect(engine.url, compression=None)
    await ws.send(json.dumps({"payload": {"type": "request_settings", "x": "y" * PREAUTH_MAX_FRAME_BYTES}}))
    assert await closed_code(ws) == 1009


async def test_a_stranger_gets_a_few_refused_frames_then_is_closed(engine: Engine,
                                                                   stranger: Wallet) -> None:
    ws = await deflating(engine.url)
    frames = [frame_text(stranger.key, {"type": "request_settings", "request_id": f"s{i}"})
              for i in range(200)]
    with contextlib.suppress(ConnectionClosed):
        for text in frames:
            await ws.send(text)
    replies: list[dict[str, Any]] = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    assert ws.close_code == 1008
    assert len(replies) == PREAUTH_MAX_REFUSED
    assert all(r["code"] == "not_authorized" for r in replies)


async def test_the_guis_opening_burst_is_answered_whole(engine: Engine, owner: Wallet) -> None:
    """Ten frames sent at once on a fresh connection (protocol.md §1): the small read-ahead
    before signing in holds the rest in the socket, nothing is lost."""
    ws = await deflating(engine.url)
    try:
        types = ["request_settings", "request_variables", "request_presets_list",
                 "request_prompts_list", "request_datasets_list", "request_local_models",
                 *["request_components_list"] * 4]
        for i, msg_type in enumerate(types):
            await ws.send(frame_text(owner.key, {"type": msg_type, "request_id": f"b{i}",
                                                 "component_type": "modules"}))
        seen = set()
        while len(seen) < len(types):
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert "error" not in frame, frame
            if "request_id" in frame:
                seen.add(frame["request_id"])
        assert seen == {f"b{i}" for i in range(len(types))}
    finally:
        await ws.close()


async def test_strangers_holding_every_slot_never_keep_the_owner_out(make_engine: EngineFactory,
                                                                      owner: Wallet) -> None:
    engine = await make_engine(max_connections=8, auth_timeout_s=0.5)
    stop = asyncio.Event()
    strangers_connected = 0

    async def stranger_slot() -> None:
        """Hold a slot, and take one again whenever the engine closes it (after a moment: a
        flood of fresh connections faster than the owner signs in is another matter, which
        SECURITY.md names as a limit)."""
        nonlocal strangers_connected
        while not stop.is_set():
            try:
                async with connect(engine.url) as ws:
                    strangers_connected += 1
                    await ws.wait_closed()
            except (InvalidStatus, OSError):
                pass
            await asyncio.sleep(0.2)

    holders = [asyncio.create_task(stranger_slot()) for _ in range(16)]
    try:
        while engine.server.client_count < 8:
            await asyncio.sleep(0.01)
        with catch_logs() as logs:
            for _ in range(10):
                async with await EngineClient.connect(engine.url, owner.key) as gui:
                    assert (await gui.request("request_settings"))["type"] == "settings_response"
        assert "to make room" in logs.text()
        assert strangers_connected >= 8
    finally:
        stop.set()
        for task in holders:
            task.cancel()
        await asyncio.gather(*holders, return_exceptions=True)


async def test_signed_in_owners_are_never_pushed_out(make_engine: EngineFactory, owner: Wallet) -> None:
    engine = await make_engine(max_connections=4)
    owners = [await EngineClient.connect(engine.url, owner.key) for _ in range(4)]
    try:
        for gui in owners:
            await gui.request("request_settings")
        for _ in range(20):
            with pytest.raises(InvalidStatus) as info:
                async with connect(engine.url):
                    pass
            assert info.value.response.status_code == 503
        for gui in owners:
            assert (await gui.request("request_settings"))["type"] == "settings_response"
    finally:
        for gui in owners:
            await gui.close()


async def test_a_flood_of_compressed_bombs_leaves_the_owner_served(make_engine: EngineFactory,
                                                                   owner: Wallet) -> None:
    """The issue's flood, smaller: strangers send bombs and reconnect at once, all the time;
    the owner connects and every request is answered (`bench_preauth_flood` measures how fast)."""
    engine = await make_engine(max_connections=32)
    flood = Flood(engine.url, 8)
    flood.start()
    try:
        while flood.opened < 16:
            await asyncio.sleep(0.01)
        async with await EngineClient.connect(engine.url, owner.key) as gui:
            for _ in range(100):
                assert (await gui.request("request_settings"))["type"] == "settings_response"
        assert flood.deflate_accepted == flood.opened  # the frames really were compressed
        # Each bomb ended its connection (1009) after at most 64 KiB of inflating.
        assert flood.close_codes and set(flood.close_codes) == {1009}, flood.close_codes[:10]
    finally:
        await flood.stop()


async def _raw_handshake(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection that has sent its WebSocket upgrade request, nothing more."""
    from bench.flood import handshake
    host, port, request = handshake(url)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    await writer.drain()
    return reader, writer


async def test_new_connections_past_the_burst_wait_their_turn_in_order(make_engine: EngineFactory,
                                                                      owner: Wallet) -> None:
    """A stranger reconnecting as fast as it is closed costs the engine a handshake each time:
    past a burst, new connections are read at `handshakes_per_s`, oldest first, and the owner's
    connection already signed in is not held up by them."""
    engine = await make_engine(handshake_burst=2, handshakes_per_s=1.0)
    async with await EngineClient.connect(engine.url, owner.key) as gui:  # takes one token
        first = await _raw_handshake(engine.url)     # takes the other
        assert (await asyncio.wait_for(first[0].readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 101")
        waiting = [await _raw_handshake(engine.url) for _ in range(2)]
        try:
            await asyncio.sleep(0.3)
            # No token yet (the next one comes a second after the burst): nothing of theirs
            # was read, so nothing was answered.
            assert not any(reader.at_eof() or len(reader._buffer) for reader, _ in waiting)  # noqa: SLF001
            assert engine.server.admission is not None and engine.server.admission.waiting == 2
            assert (await gui.request("request_settings"))["type"] == "settings_response"
            # Then one per second, in the order they came.
            answered = await asyncio.wait_for(waiting[0][0].readuntil(b"\r\n\r\n"), 5)
            assert answered.startswith(b"HTTP/1.1 101")
            assert not len(waiting[1][0]._buffer)  # noqa: SLF001
            assert (await asyncio.wait_for(waiting[1][0].readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 101")
        finally:
            for _, writer in [first, *waiting]:
                writer.close()


async def test_past_max_connections_waiting_the_oldest_waiter_is_dropped(make_engine: EngineFactory) -> None:
    engine = await make_engine(handshake_burst=1, handshakes_per_s=0.1, max_connections=2)
    served = await _raw_handshake(engine.url)
    assert (await asyncio.wait_for(served[0].readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 101")
    waiting = [await _raw_handshake(engine.url) for _ in range(3)]
    try:
        # Closed without a word (reset, no HTTP answer); the two newer ones still wait.
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(waiting[0][0].read(), 5)
        await asyncio.sleep(0.2)
        assert not any(reader.at_eof() for reader, _ in waiting[1:])
        assert engine.server.admission is not None and engine.server.admission.waiting == 2
    finally:
        for _, writer in [served, *waiting]:
            writer.close()
