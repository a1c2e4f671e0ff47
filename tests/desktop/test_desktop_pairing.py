"""Pairing: with an empty allow-list, a real signed client makes the app ask; the answer is
stored (Allow) or the client is refused (Deny)."""

from __future__ import annotations

import asyncio

import pytest

from engine.client import EngineClient, EngineReplyError
from tests.desktop.conftest import wait_until


async def test_allow_pairs_the_address_and_stores_it(make_app, owner, desktop_config):
    assert desktop_config.settings.owners == ()
    app = await make_app()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        reply = asyncio.ensure_future(client.request("request_settings", timeout=60))
        await wait_until(lambda: owner.address in app.pairing.dialogs, what="pairing dialog")
        dialog = app.pairing.dialogs[owner.address]
        assert dialog.isVisible() and not dialog.isModal()
        assert dialog.text().startswith(f"Allow {owner.address} to control this engine?\n")
        dialog.allow_button.click()
        assert (await reply)["type"] == "settings_response"
    assert [o.lower() for o in desktop_config.settings_file.load().owners] == [owner.address.lower()]
    # stored: a restarted engine knows the owner without asking again
    app.menu.restart.trigger()
    first = app.engine
    await wait_until(lambda: app.engine is not None and app.engine is not first, what="restart")
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        assert (await client.request("request_settings"))["type"] == "settings_response"
    assert app.pairing.dialogs == {}


async def test_deny_refuses_the_client(make_app, stranger, desktop_config):
    app = await make_app()
    async with await EngineClient.connect(app.engine.url, stranger.key) as client:
        reply = asyncio.ensure_future(client.request("request_settings", timeout=60))
        await wait_until(lambda: stranger.address in app.pairing.dialogs, what="pairing dialog")
        app.pairing.dialogs[stranger.address].deny_button.click()
        with pytest.raises(EngineReplyError) as refused:
            await reply
        assert f"not authorized for engine {app.engine_id}" in str(refused.value)
    assert desktop_config.settings_file.load().owners == ()


async def test_with_owners_nobody_else_is_asked(make_app, owner, stranger, desktop_config):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    async with await EngineClient.connect(app.engine.url, stranger.key) as client:
        with pytest.raises(EngineReplyError):
            await client.request("request_settings")
    assert app.pairing.dialogs == {}
