"""The per-connection send queue over real sockets: a client that stops reading costs bounded
memory, loses only frames it can afford to miss, is closed when even essential frames pile up,
and never slows down another connection of the same owner."""

from __future__ import annotations

import asyncio
import base64
import json
import os

from websockets.asyncio.client import connect

from engine.app import Engine
from engine.client import EngineClient, Signer
from engine.events import Delivery, Event
from engine.server.connection import ClientConnection
from tests.conftest import EngineFactory, Wallet

# Big frames fill the socket buffers quickly; random, so that compression cannot shrink them.
PAD = base64.b64encode(os.urandom(192 * 1024)).decode("ascii")


async def stalled_connection(engine: Engine, owner: Wallet) -> tuple[object, ClientConnection]:
    """An authenticated connection whose client reads nothing after its first reply."""
    ws = await connect(engine.url, max_queue=1)  # buffers one frame, then stops reading
    await ws.send(json.dumps({"auth": Signer(owner.key).auth_block(),
                              "payload": {"type": "request_settings"}}))
    port = ws.local_address[1]
    while True:
        mine = [c for c in engine.server.connections_of(owner.address) if c.ws.remote_address[1] == port]
        if mine:
            return ws, mine[0]
        await asyncio.sleep(0.01)


async def test_a_client_that_stops_reading_costs_bounded_memory_and_nobody_else(
        make_engine: EngineFactory, owner: Wallet) -> None:
    engine = await make_engine(outbox_limit=4)
    healthy = await EngineClient.connect(engine.url, owner.key)
    await healthy.request("request_settings")
    stalled_ws, stalled = await stalled_connection(engine, owner)
    try:
        # Droppable frames (logs, metrics): the stalled client's queue stays at its limit and
        # the rest is dropped; the healthy tab of the same owner gets every one, in order.
        for i in range(120):
            engine.publish_to_owner(owner.address, {"type": "log", "i": i, "message": PAD},
                                    Delivery.DROPPABLE)
            got = await healthy.next_event("log")
            assert got["i"] == i
            assert len(stalled.outbox) <= stalled.outbox.limit
        assert stalled.outbox.dropped > 0
        # Essential frames are never dropped: past the hard limit the hopeless client is closed.
        for i in range(200):
            if stalled not in engine.server.connections_of(owner.address):
                break
            engine.publish_to_owner(owner.address, {"type": "workflow_status_update", "i": i,
                                                    "status_data": {"status": "RUNNING"}, "pad": PAD})
            assert (await healthy.next_event("workflow_status_update"))["i"] == i
            assert len(stalled.outbox) <= stalled.outbox.hard_limit
        for _ in range(3000):  # the close handshake times out against a client that reads nothing
            if stalled not in engine.server.connections_of(owner.address):
                break
            await asyncio.sleep(0.01)
        assert stalled not in engine.server.connections_of(owner.address)
        assert stalled.ws.close_code in (1013, 1006)
        assert (await healthy.request("request_variables"))["type"] == "variables_response"
    finally:
        stalled_ws.transport.abort()
        await healthy.close()


async def test_status_frames_replace_each_other_while_queued(make_engine: EngineFactory, owner: Wallet) -> None:
    engine = await make_engine(outbox_limit=4)
    stalled_ws, stalled = await stalled_connection(engine, owner)
    try:
        for _ in range(400):  # until the socket is full and one frame waits in the queue
            if len(stalled.outbox) >= 1:
                break
            engine.publish_to_owner(owner.address, {"type": "log", "message": PAD}, Delivery.DROPPABLE)
            await asyncio.sleep(0.005)
        assert len(stalled.outbox) == 1
        for n in range(50):
            engine.bus.publish(Event(None, {"type": "engine_status_update", "n": n}, Delivery.LATEST,
                                     "engine_status"))
        queued = [json.loads(h[0]) for h in stalled.outbox._queue if "engine_status_update" in h[0]]
        assert [q["n"] for q in queued] == [49]  # one frame, the newest
        assert len(stalled.outbox) == 2
    finally:
        stalled_ws.transport.abort()


async def test_a_hopeless_client_is_closed_and_said_once(make_engine: EngineFactory, owner: Wallet,
                                                          caplog) -> None:
    """Past its hard limit a client is closed; the events that keep coming while its close
    handshake runs are neither queued for it nor each logged again (one line, not dozens)."""
    engine = await make_engine(outbox_limit=4)
    stalled_ws, stalled = await stalled_connection(engine, owner)
    try:
        for i in range(stalled.outbox.hard_limit + 100):
            engine.publish_to_owner(owner.address, {"type": "workflow_status_update", "i": i,
                                                    "status_data": {"status": "RUNNING"}, "pad": PAD})
        assert stalled.too_slow and len(stalled.outbox) <= stalled.outbox.hard_limit
        said = [r for r in caplog.records if r.getMessage().startswith(f"closing {stalled.label}")]
        assert len(said) == 1, [r.getMessage() for r in said]
    finally:
        stalled_ws.transport.abort()
