"""The handshake (engineId, Origin, connection count), bounded frames, engine_status_update and
owner-wide delivery, over real sockets."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from engine.app import Engine
from engine.client import EngineClient
from tests.conftest import ClientFactory, EngineFactory, Wallet


def url_with(engine: Engine, query: str) -> str:
    return f"ws://127.0.0.1:{engine.config.port}/{query}"


@pytest.mark.parametrize("query", ["", "?engineId=", "?engineId=test-engin", "?engineId=test-engine2",
                                   "?engineid=test-engine", "?other=test-engine"])
async def test_wrong_or_missing_engine_id_is_refused_before_the_upgrade(engine: Engine, query: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        await connect(url_with(engine, query))
    assert info.value.response.status_code == 403
    assert b"engineId" in info.value.response.body


@pytest.mark.parametrize("origin", ["https://flowork.cloud", "https://app.flowork.cloud",
                                    "https://a.b.flowork.cloud", "http://localhost:5173",
                                    "http://127.0.0.1:8080", "http://[::1]:3000", "https://localhost",
                                    None])
async def test_allowed_origins_connect(make_client: ClientFactory, origin: str | None) -> None:
    client = await make_client(origin=origin)
    assert (await client.request("request_settings"))["type"] == "settings_response"


@pytest.mark.parametrize("origin", ["https://evil.example", "http://flowork.cloud",
                                    "https://flowork.cloud.evil.example", "https://evilflowork.cloud",
                                    "null", "http://localhost.evil.example", "http://127.0.0.1.nip.io"])
async def test_other_origins_are_refused(engine: Engine, origin: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        await connect(engine.url, additional_headers={"Origin": origin})
    assert info.value.response.status_code == 403
    assert b"Origin" in info.value.response.body


async def test_configured_origins_replace_the_defaults(make_engine: EngineFactory, owner: Wallet) -> None:
    engine = await make_engine(origins=("https://my.example",))
    client = await EngineClient.connect(engine.url, owner.key, origin="https://my.example")
    await client.close()
    with pytest.raises(InvalidStatus):
        await connect(engine.url, additional_headers={"Origin": "https://flowork.cloud"})


async def test_connection_count_is_bounded(make_engine: EngineFactory, owner: Wallet) -> None:
    engine = await make_engine(max_connections=2)
    first = await EngineClient.connect(engine.url, owner.key)
    second = await EngineClient.connect(engine.url, owner.key)
    for signed_in in (first, second):  # signed-in owners are never pushed out for a newcomer
        await signed_in.request("request_settings")
    try:
        with pytest.raises(InvalidStatus) as info:
            await connect(engine.url)
        assert info.value.response.status_code == 503
        await first.close()
        while engine.server.client_count >= 2:  # the server notices the close
            await asyncio.sleep(0.01)
        third = await EngineClient.connect(engine.url, owner.key)
        assert (await third.request("request_settings"))["type"] == "settings_response"
        await third.close()
    finally:
        await second.close()


async def test_simultaneous_handshakes_do_not_exceed_the_limit(make_engine: EngineFactory,
                                                              owner: Wallet) -> None:
    engine = await make_engine(max_connections=3)
    owners = [await EngineClient.connect(engine.url, owner.key) for _ in range(3)]
    try:
        for signed_in in owners:
            await signed_in.request("request_settings")
        results = await asyncio.gather(*(connect(engine.url) for _ in range(12)), return_exceptions=True)
        assert all(isinstance(r, InvalidStatus) and r.response.status_code == 503 for r in results), results
        for signed_in in owners:
            assert (await signed_in.request("request_settings"))["type"] == "settings_response"
    finally:
        for signed_in in owners:
            await signed_in.close()
    # Strangers only push each other out: the engine never holds more than the limit.
    strangers = await asyncio.gather(*(connect(engine.url) for _ in range(12)), return_exceptions=True)
    try:
        assert engine.server.client_count <= 3
    finally:
        for ws in strangers:
            if not isinstance(ws, BaseException):
                await ws.close()


async def test_an_oversized_frame_closes_only_that_connection(make_engine: EngineFactory,
                                                              owner: Wallet) -> None:
    engine = await make_engine(max_frame_bytes=64 * 1024)
    big = await EngineClient.connect(engine.url, owner.key)
    other = await EngineClient.connect(engine.url, owner.key)
    try:
        await big.send({"type": "save_settings", "settings": {"blob": "x" * 70_000}})
        await asyncio.wait_for(big.closed.wait(), 10)
        assert big.ws.close_code == 1009
        assert (await other.request("save_settings", settings={"blob": "y" * 30_000}))["settings"]["blob"]
    finally:
        await big.close()
        await other.close()


# --- engine_status_update ----------------------------------------------------------------------

STATUS_FIELDS = {"type", "engineId", "isBusy", "cpuPercent", "memoryPercent", "runningJobs",
                 "engineMemoryBytes", "connectedClients", "version"}


async def test_status_comes_right_after_the_first_authenticated_frame(client: EngineClient,
                                                                      engine: Engine) -> None:
    assert client.pending_events() == []  # nothing before the first signed frame
    await client.send({"type": "request_settings", "request_id": "first"})
    first = await client.next_event()
    assert first["type"] == "engine_status_update"
    assert STATUS_FIELDS <= set(first)
    assert first["engineId"] == engine.config.engine_id and first["isBusy"] is False
    assert isinstance(first["cpuPercent"], (int, float)) and 0 <= first["memoryPercent"] <= 100
    assert first["engineMemoryBytes"] > 0 and first["connectedClients"] == 1
    assert first["runningJobs"] == 0 and first["version"] == engine.version
    reply = await client.next_event()
    assert reply["request_id"] == "first"
    await client.request("request_settings")
    assert [e for e in client.pending_events() if e["type"] == "engine_status_update"] == []


async def test_status_repeats_every_interval(make_engine: EngineFactory, owner: Wallet) -> None:
    engine = await make_engine(status_interval=0.05)
    async with await EngineClient.connect(engine.url, owner.key) as client:
        await client.request("request_settings")
        for _ in range(3):
            status = await client.next_event("engine_status_update", timeout=10)
            assert status["engineId"] == engine.config.engine_id


async def test_unauthenticated_connections_get_no_status(make_engine: EngineFactory, owner: Wallet,
                                                         stranger: Wallet) -> None:
    engine = await make_engine(status_interval=0.02)
    silent = await EngineClient.connect(engine.url, owner.key)
    outsider = await EngineClient.connect(engine.url, stranger.key)
    watcher = await EngineClient.connect(engine.url, owner.key)
    try:
        await outsider.request("request_settings", check=False)
        await watcher.request("request_settings")
        for _ in range(3):  # several intervals pass
            await watcher.next_event("engine_status_update", timeout=10)
        assert silent.pending_events() == []
        assert [e["type"] for e in outsider.pending_events()] == []
    finally:
        for c in (silent, outsider, watcher):
            await c.close()


# --- owner-wide delivery -----------------------------------------------------------------------

async def test_pushes_reach_every_connection_of_the_owner_and_nobody_else(
        make_engine: EngineFactory, owner: Wallet, stranger: Wallet) -> None:
    engine = await make_engine(owners=(owner.address, stranger.address))
    tab1 = await EngineClient.connect(engine.url, owner.key)
    tab2 = await EngineClient.connect(engine.url, owner.key)
    other = await EngineClient.connect(engine.url, stranger.key)
    try:
        for c in (tab1, tab2, other):
            await c.request("request_variables")
        await tab1.request("update_variable", name="API_URL", data={"value": "https://x"})
        for c in (tab1, tab2):
            pushed = await c.next_event("variables_response")
            assert [v["name"] for v in pushed["variables"]] == ["API_URL"]
        await other.request("update_variable", name="MINE", data={"value": "1"})
        pushed = await other.next_event("variables_response")
        assert [v["name"] for v in pushed["variables"]] == ["MINE"]
        # The owner's tabs saw only their own change (the stranger's push is not theirs).
        await tab1.request("request_settings")
        assert [e for e in tab1.pending_events() if e["type"] == "variables_response"] == []
        assert [e for e in other.pending_events() if e["type"] == "variables_response"] == []
    finally:
        for c in (tab1, tab2, other):
            await c.close()


async def test_a_connection_of_a_never_signed_in_owner_gets_no_pushes(make_client: ClientFactory) -> None:
    active = await make_client()
    idle = await make_client()
    await active.request("update_variable", name="A", data={"value": "1"})
    await active.next_event("variables_response")
    await active.request("request_settings")
    assert idle.pending_events() == []
