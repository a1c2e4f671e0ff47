"""A validly signed frame of a non-owner, refused while owners exist: the engine logs the
address (once in a while, not per frame) and tells Engine.on_address_refused who asked, from
which origin and peer. The pairing case (no owners yet) does not reach it."""

from __future__ import annotations

import logging

from engine.auth.access import AccessRequest
from engine.client import EngineClient


async def test_a_refused_address_is_logged_once_and_reported(make_engine, stranger, owner, caplog):
    engine = await make_engine()
    seen: list[AccessRequest] = []
    engine.on_address_refused = seen.append
    caplog.set_level(logging.INFO, logger="engine.server.server")
    async with await EngineClient.connect(engine.url, stranger.key, origin="https://flowork.cloud") as client:
        for _ in range(2):
            reply = await client.request("request_settings", check=False)
            assert reply["type"] == "settings_response" and "not authorized" in reply["error"]
    assert [r.address for r in seen] == [stranger.address, stranger.address]
    assert seen[0].origin == "https://flowork.cloud" and seen[0].remote.startswith("127.0.0.1:")
    refusals = [r for r in caplog.records if "refused" in r.getMessage() and stranger.address in r.getMessage()]
    assert len(refusals) == 1  # the log is not flooded by a client that keeps trying

    async with await EngineClient.connect(engine.url, owner.key) as client:  # an owner is served
        assert (await client.request("request_settings"))["type"] == "settings_response"
    assert len(seen) == 2


async def test_a_broken_listener_does_not_change_the_refusal(make_engine, stranger):
    engine = await make_engine()
    engine.on_address_refused = lambda request: 1 / 0
    async with await EngineClient.connect(engine.url, stranger.key) as client:
        reply = await client.request("request_settings", check=False)
    assert "not authorized" in reply["error"]


async def test_without_owners_it_is_pairings_business(make_engine, stranger):
    engine = await make_engine(owners=())
    seen: list[AccessRequest] = []
    engine.on_address_refused = seen.append
    async with await EngineClient.connect(engine.url, stranger.key) as client:
        reply = await client.request("request_settings", check=False)
    assert "not authorized" in reply["error"] and seen == []
