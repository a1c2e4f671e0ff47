"""Issue 11, "The desktop dialogs can be abused": pairing. Real signed clients on real sockets
ask a real engine, whose pairing handler is the desktop app's real dialog (offscreen)."""

from __future__ import annotations

import asyncio
import time

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from desktop.pairing import PairingController
from engine.client import EngineClient
from tests.conftest import EngineFactory, Wallet
from tests.desktop.conftest import wait_until


async def paired_engine(make_engine: EngineFactory, **config: object):
    engine = await make_engine(owners=(), **config)
    pairing = PairingController()
    engine.set_pairing_handler(pairing.ask)
    saved: list[list[str]] = []
    engine.on_owners_changed = lambda owners: saved.append(list(owners))
    return engine, pairing, saved


async def test_forty_throwaway_keys_get_one_dialog(make_engine: EngineFactory) -> None:
    engine, pairing, saved = await paired_engine(make_engine)
    wallets = [Wallet() for _ in range(40)]
    clients = [await EngineClient.connect(engine.url, w.key) for w in wallets]
    try:
        replies = [asyncio.ensure_future(c.request("request_settings", check=False, timeout=60))
                   for c in clients]
        await wait_until(lambda: sum(r.done() for r in replies) == 39, what="39 refusals")
        assert len(pairing.dialogs) == 1  # one question at a time; the others were not held
        asked = next(iter(pairing.dialogs))
        refused = [r.result() for r in replies if r.done()]
        assert all(r["code"] == "not_authorized" for r in refused)
        # Allow the one asked about: it becomes the only owner, nobody else is asked any more.
        pairing.dialogs[asked].allow_button.click()
        await wait_until(lambda: all(r.done() for r in replies), what="the last reply")
        assert [o.lower() for o in engine.owners] == [asked.lower()]
        assert saved == [[asked.lower()]]
        again = [await c.request("request_settings", check=False) for c in clients
                 if c.address != asked]
        assert all(r["code"] == "not_authorized" for r in again)
        assert pairing.dialogs == {}
    finally:
        for c in clients:
            await c.close()


async def test_a_denied_address_is_not_asked_about_again_at_once(make_engine: EngineFactory,
                                                                  stranger: Wallet) -> None:
    engine, pairing, _ = await paired_engine(make_engine)
    async with await EngineClient.connect(engine.url, stranger.key) as client:
        reply = asyncio.ensure_future(client.request("request_settings", check=False, timeout=60))
        await wait_until(lambda: stranger.address in pairing.dialogs, what="the dialog")
        pairing.dialogs[stranger.address].deny_button.click()
        assert (await reply)["code"] == "not_authorized"
    async with await EngineClient.connect(engine.url, stranger.key) as client:
        started = time.monotonic()
        assert (await client.request("request_settings", check=False))["code"] == "not_authorized"
        assert pairing.dialogs == {}
    assert len(engine.owners) == 0
    assert time.monotonic() - started < 30  # refused, not left waiting for a dialog


async def test_the_dialog_says_where_the_request_came_from_as_plain_text(
        make_engine: EngineFactory, stranger: Wallet) -> None:
    engine, pairing, _ = await paired_engine(make_engine)
    origin = "http://localhost:5173"
    async with await EngineClient.connect(engine.url, stranger.key, origin=origin) as client:
        reply = asyncio.ensure_future(client.request("request_settings", check=False, timeout=60))
        dialog = await wait_until(lambda: pairing.dialogs.get(stranger.address), what="the dialog")
        local_port = client.ws.local_address[1]
        assert origin in dialog.text()
        assert f"127.0.0.1:{local_port}" in dialog.text()
        assert dialog.textFormat() == Qt.TextFormat.PlainText
        shown = [label for label in dialog.findChildren(QLabel) if origin in label.text()]
        assert shown and all(label.textFormat() == Qt.TextFormat.PlainText for label in shown)
        assert dialog.defaultButton() is dialog.deny_button
        dialog.deny_button.click()
        await reply


async def test_an_owner_set_meanwhile_closes_the_question(make_engine: EngineFactory,
                                                          owner: Wallet, stranger: Wallet) -> None:
    """The allow-list is looked at again: once someone owns the engine (set in the desktop
    app's settings here), the open question closes and its frames are refused."""
    engine, pairing, saved = await paired_engine(make_engine)
    async with await EngineClient.connect(engine.url, stranger.key) as client:
        reply = asyncio.ensure_future(client.request("request_settings", check=False, timeout=60))
        dialog = await wait_until(lambda: pairing.dialogs.get(stranger.address), what="the dialog")
        engine.set_owners([owner.address])
        assert (await reply)["code"] == "not_authorized"
        await wait_until(lambda: pairing.dialogs == {}, what="the dialog to close")
        assert not shiboken6.isValid(dialog) or not dialog.isVisible()
    assert list(engine.owners) == [owner.address.lower()] and saved == []


async def test_an_unanswered_question_ends_and_spares_no_one_the_sign_in_timeout(
        make_engine: EngineFactory, stranger: Wallet) -> None:
    engine, pairing, _ = await paired_engine(make_engine, pairing_timeout_s=1.0, auth_timeout_s=0.5)
    async with await EngineClient.connect(engine.url, stranger.key) as client:
        started = time.monotonic()
        reply = await client.request("request_settings", check=False, timeout=60)
        assert reply["code"] == "not_authorized"
        assert time.monotonic() - started < 30
        await wait_until(lambda: pairing.dialogs == {}, what="the dialog to close")
        await asyncio.wait_for(client.closed.wait(), 30)
        assert client.ws.close_code == 1008
    assert len(engine.owners) == 0
