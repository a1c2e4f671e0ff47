"""A client that stops reading while a job floods events: its queue stays bounded, what it can
afford to miss is dropped (and the log says what), its essential frames are kept, and another
client of the same owner gets every event in full."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import pytest
from websockets.asyncio.client import connect

from engine.app import Engine
from engine.client import EngineClient, Signer
from tests.conftest import Wallet
from tests.runtime_support import collect, final, node, start, workflow


@pytest.fixture
async def engine(make_engine):
    return await make_engine(outbox_limit=64)


async def test_a_slow_reader_costs_bounded_memory_and_slows_no_one(engine: Engine, client: EngineClient,
                                                                   owner: Wallet,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="engine.server.outbox")
    signer = Signer(owner.key)
    # A tiny receive buffer (no kernel autotuning) and max_queue=1: once one message waits, the
    # client stops reading, and only the engine's own queue can hold what follows (no
    # compression either, or the repetitive log lines would shrink to nothing).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", engine.config.port))
    slow = await connect(engine.url, sock=sock, max_queue=1, max_size=None, compression=None)
    await slow.send(json.dumps({"auth": signer.auth_block(), "payload": {"type": "request_settings"}}))
    await client.request("request_settings")
    slow_conn = next(c for c in engine.server._connections if c.id == max(x.id for x in engine.server._connections))
    assert slow_conn.owners  # authenticated: it receives the owner's job events

    line = "x" * 50_000
    wf = workflow([node("l", "log_message", message=line)], [])
    wf["global_loop_config"] = {"isEnabled": True, "iterations": 600}
    job_id = await start(client, wf)
    events = await collect(client, job_id, timeout=60)
    assert final(events)["status"] == "SUCCEEDED"
    # The reading client lost nothing.
    assert sum(1 for e in events if e["type"] == "log" and e["message"] == line) == 600

    outbox = slow_conn.outbox
    assert outbox.dropped > 0
    assert len(outbox) <= outbox.hard_limit and outbox.queued_bytes <= outbox.hard_limit_bytes
    assert outbox.queued_bytes <= outbox.limit_bytes + 100_000  # only small essential frames beyond
    # The terminal status is essential: it waits in the queue, it was not dropped.
    assert slow.state.name == "OPEN"
    assert any('"status":"SUCCEEDED"' in holder[0] for holder in outbox._queue)
    # Once the client is gone, the log has told the whole story: how many, and of what kind.
    slow.transport.abort()
    for _ in range(500):
        if engine.server.client_count == 1:
            break
        await asyncio.sleep(0.01)
    reports = [r.getMessage() for r in caplog.records if "reads too slowly" in r.getMessage()]
    assert reports and reports[-1].endswith(f"{outbox.dropped} dropped in all")
    assert sum(int(m.split("dropped ")[1].split()[0]) for m in reports) == outbox.dropped
    assert any(" log" in m for m in reports) and any("NODE_EXECUTION_METRIC" in m for m in reports)
