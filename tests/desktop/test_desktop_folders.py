"""Shared folders: chosen with the (non-blocking) folder picker from the real menu, kept in the
config, and exactly what request_drives lists; an empty list prompts the user to share one."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog

from desktop.config import DesktopConfig
from engine.client import EngineClient
from tests.desktop.conftest import wait_until
from tests.desktop.test_desktop_approvals import Recorder


def choose(picker: QFileDialog, folder) -> None:
    """What the user does in the picker: go to the folder and press Choose."""
    assert picker.isVisible() and picker.fileMode() == QFileDialog.FileMode.Directory
    picker.setDirectory(str(folder.parent))
    picker.selectFile(str(folder))
    picker.accept()


async def test_folders_picked_in_the_dialog_are_what_request_drives_lists(make_app, owner, desktop_config, tmp_path):
    desktop_config.update(owners=(owner.address,))
    photos = tmp_path / "Photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"meow")
    app = await make_app()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        assert (await client.request("request_drives"))["drives"] == []
        app.menu.folders.trigger()
        dialog = app.folders_dialog
        assert dialog.isVisible() and not dialog.isModal()
        dialog.add_button.click()
        picker = app.folders.picker  # we got here: opening it did not block (no exec())
        choose(picker, photos)
        assert [dialog.list.item(i).text() for i in range(dialog.list.count())] == [str(photos.resolve())]
        drives = (await client.request("request_drives"))["drives"]
        assert drives == [{"name": "Photos", "type": "drive", "path": str(photos.resolve())}]
        listing = await client.request("request_directory_list", path=str(photos.resolve()))
        assert [i["name"] for i in listing["items"]] == ["cat.jpg"]
        # kept: a new app (and engine) starts with it
    await app.config.flush()
    reloaded = DesktopConfig(folder=desktop_config.folder, data_dir=desktop_config.data_dir)
    assert reloaded.settings.roots == (photos.resolve(),)

    dialog.list.item(0).setSelected(True)
    dialog.remove_button.click()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        assert (await client.request("request_drives"))["drives"] == []
    await app.config.flush()
    assert DesktopConfig(folder=desktop_config.folder, data_dir=desktop_config.data_dir).settings.roots == ()


async def test_drives_asked_with_none_shared_prompts_to_share(make_app, owner, desktop_config, tmp_path):
    desktop_config.update(owners=(owner.address,))
    recorder = Recorder()
    app = await make_app(notifier=recorder)
    docs = tmp_path / "Docs"
    docs.mkdir()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        reply = await client.request("request_drives")
        assert reply["drives"] == [] and "Shared folders" in reply["message"]
        await wait_until(lambda: recorder.sent, what="notification")
        note = recorder.sent[0]
        assert note["title"] == "Share a folder with Flowork"
        note["on_clicked"]()  # the user clicks the notification: the picker opens
        choose(app.folders.picker, docs)
        drives = (await client.request("request_drives"))["drives"]
        assert [d["path"] for d in drives] == [str(docs.resolve())]
    assert len(recorder.sent) == 1


async def test_without_notifications_the_tray_message_opens_the_picker(make_app, owner, desktop_config, tmp_path):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()  # the real notifier: no notification service here, so the tray's
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        await client.request("request_drives")
        await wait_until(lambda: app._message_click is not None, what="tray message fallback")
        app.tray.icon.messageClicked.emit()
        assert app.folders.picker is not None and app.folders.picker.isVisible()
        app.folders.picker.reject()


async def test_a_removed_shared_folder_is_dropped_at_start(make_app, desktop_config, tmp_path):
    gone = tmp_path / "gone"
    desktop_config.update(roots=(gone,))
    app = await make_app()
    assert app.folders.roots == () and app.engine.roots == ()
