"""The Settings dialog, applied to a running engine: port, owners, engine ID (regenerated with a
confirmation), web GUI URL, start at login; bad input is refused with a sentence."""

from __future__ import annotations

import socket

import pytest
from PySide6.QtWidgets import QMessageBox
from websockets.exceptions import InvalidStatus

from desktop.config import DesktopConfig
from engine.client import EngineClient
from tests.desktop.conftest import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_port_owners_and_url_are_applied_and_kept(make_app, owner, stranger, desktop_config, home):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    first = app.engine
    app.menu.settings.trigger()
    dialog = app.settings_dialog
    assert dialog.isVisible() and not dialog.isModal()
    assert dialog.engine_id.text() == app.engine_id and dialog.engine_id.isReadOnly()
    port = free_port()
    dialog.port.setValue(port)
    assert list(dialog.owners.remove_buttons) == [owner.address]
    dialog.owners.new_owner.setText(stranger.address)
    dialog.owners.add_button.click()
    assert list(dialog.owners.remove_buttons) == [owner.address, stranger.address]
    dialog.gui_url.setText("https://gui.example/")
    dialog.start_at_login.setChecked(True)
    dialog.save_button.click()
    await wait_until(lambda: app.engine is not None and app.engine is not first, what="restart on the new port")
    assert app.engine.config.port == port
    async with await EngineClient.connect(app.engine.url, stranger.key) as client:
        assert (await client.request("request_settings"))["type"] == "settings_response"
    saved = DesktopConfig(folder=desktop_config.folder, data_dir=desktop_config.data_dir).settings
    assert (saved.port, saved.owners, saved.gui_url) == (port, (owner.address, stranger.address), "https://gui.example/")
    assert (home / ".config" / "autostart" / "flowork.desktop").is_file()


async def test_bad_input_is_refused_with_a_sentence(make_app, desktop_config):
    app = await make_app(start_engine=False)
    app.menu.settings.trigger()
    dialog = app.settings_dialog
    dialog.owners.new_owner.setText("0x123")
    dialog.save_button.click()
    assert "is not an address" in dialog.error.text() and dialog.isVisible()
    dialog.owners.new_owner.setText("")
    dialog.gui_url.setText("flowork.cloud")
    dialog.save_button.click()
    assert "https://" in dialog.error.text()
    assert desktop_config.settings_file.load().gui_url == "https://flowork.cloud/"


async def test_regenerating_the_engine_id_asks_first_and_restarts(make_app, owner, desktop_config, memory_keyring):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    old_id = app.engine_id
    app.menu.settings.trigger()
    dialog = app.settings_dialog
    dialog.regenerate_button.click()
    confirm = dialog.confirm
    assert confirm.isVisible() and "Regenerate" in confirm.windowTitle()
    confirm.button(QMessageBox.StandardButton.Cancel).click()
    assert dialog.engine_id.text() == old_id
    dialog.regenerate_button.click()
    dialog.confirm.button(QMessageBox.StandardButton.Yes).click()
    new_id = dialog.engine_id.text()
    assert new_id != old_id and new_id.startswith("flowork-")
    dialog.save_button.click()
    await wait_until(lambda: app.engine is not None and app.engine.config.engine_id == new_id, what="restart")
    assert ("flowork-desktop", "engine_id") in memory_keyring.entries
    assert memory_keyring.entries[("flowork-desktop", "engine_id")] == new_id
    old_port_url = app.engine.url.replace(new_id, old_id)
    with pytest.raises(InvalidStatus):
        await EngineClient.connect(old_port_url, owner.key)
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        assert (await client.request("request_settings"))["type"] == "settings_response"
