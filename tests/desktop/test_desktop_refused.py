"""Addresses turned away while owners exist: a notice with Allow / Ignore (once per address in
a while), and Settings listing owners with Remove and the turned-away ones with Allow."""

from __future__ import annotations

from desktop.config import DesktopConfig
from desktop.refused import Refusal, shown_origin
from engine.client import EngineClient
from tests.desktop.conftest import wait_until
from tests.desktop.test_desktop_approvals import Recorder

ORIGIN = "https://flowork.cloud"


async def refused(url: str, key: str, times: int = 1) -> list[dict]:
    async with await EngineClient.connect(url, key, origin=ORIGIN) as client:
        return [await client.request("request_settings", check=False) for _ in range(times)]


def notices(recorder: Recorder) -> list[dict]:
    return [n for n in recorder.sent if n["title"] == "An address asked to use Flowork"]


async def test_a_refused_address_is_offered_once_and_allow_lets_it_in(make_app, owner, stranger, desktop_config):
    desktop_config.update(owners=(owner.address,))
    recorder = Recorder()
    app = await make_app(notifier=recorder)
    replies = await refused(app.engine.url, stranger.key, times=3)
    assert all("not authorized" in r["error"] for r in replies)
    await wait_until(lambda: notices(recorder), what="the notice")
    await refused(app.engine.url, stranger.key)  # the GUI tries again: no second notice
    (notice,) = notices(recorder)
    assert f"{stranger.address} (from {ORIGIN}) asked to use this engine" in notice["message"]
    assert set(notice["buttons"]) == {"Allow", "Ignore"}
    assert [r.address for r in app.refused.recent] == [stranger.address]

    notice["buttons"]["Allow"]()
    await wait_until(lambda: stranger.address in app.config.settings.owners, what="the new owner")
    async with await EngineClient.connect(app.engine.url, stranger.key) as client:
        assert (await client.request("request_settings"))["type"] == "settings_response"
    await app.config.flush()
    saved = DesktopConfig(folder=desktop_config.folder, data_dir=desktop_config.data_dir).settings
    assert saved.owners == (owner.address, stranger.address)
    assert app.refused.recent == []


async def test_ignore_keeps_it_quiet(make_app, owner, stranger, desktop_config):
    desktop_config.update(owners=(owner.address,))
    recorder = Recorder()
    app = await make_app(notifier=recorder)
    app.refused._clock = lambda: 10_000.0  # long after any earlier notice
    await refused(app.engine.url, stranger.key)
    await wait_until(lambda: notices(recorder))
    notices(recorder)[0]["buttons"]["Ignore"]()
    app.refused._clock = lambda: 99_999.0  # even much later
    await refused(app.engine.url, stranger.key)
    await wait_until(lambda: len(app.refused.recent) == 1)
    assert len(notices(recorder)) == 1
    assert stranger.address not in app.config.settings.owners


async def test_settings_lists_owners_with_remove_and_refused_with_allow(make_app, owner, stranger, desktop_config):
    desktop_config.update(owners=(owner.address,))
    app = await make_app(notifier=Recorder())
    await refused(app.engine.url, stranger.key)
    await wait_until(lambda: app.refused.recent)
    app.menu.settings.trigger()
    editor = app.settings_dialog.owners
    assert list(editor.remove_buttons) == [owner.address]
    assert list(editor.allow_buttons) == [stranger.address]
    editor.allow_buttons[stranger.address].click()
    editor.remove_buttons[owner.address].click()
    assert editor.owners() == (stranger.address,) and editor.allow_buttons == {}
    app.settings_dialog.save_button.click()
    # Saved, and handed to the engine (which happens after the settings file is written).
    await wait_until(lambda: app.config.settings.owners == (stranger.address,)
                     and app.engine.owners.allows(stranger.address)
                     and not app.engine.owners.allows(owner.address), what="saved owners")
    async with await EngineClient.connect(app.engine.url, stranger.key) as client:
        assert (await client.request("request_settings"))["type"] == "settings_response"
    replies = await refused(app.engine.url, owner.key)  # removed: turned away now
    assert "not authorized" in replies[0]["error"]


def test_an_origin_is_shown_as_plain_text():
    assert shown_origin("https://x.flowork.cloud") == "https://x.flowork.cloud"
    assert shown_origin("https://<b>x</b>.flowork.cloud") == "https://?b?x?/b?.flowork.cloud"
    assert shown_origin(None) == "a program on this computer"
    assert Refusal("0xabc", None, "127.0.0.1:1", 0).describe() == "0xabc (from a program on this computer)"
