"""Open web GUI, Copy engine ID, Copy WebSocket URL, Open logs folder: what reaches the opener
and the clipboard; the library path a frozen Linux build hands to the browser."""

from __future__ import annotations

import os
import sys
from urllib.parse import parse_qs, urlsplit

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QToolTip

from desktop.open_gui import gui_link, open_url
from tests.desktop.conftest import wait_until


async def test_open_web_gui_from_the_menu(make_app, opened, desktop_config):
    desktop_config.update(gui_url="https://flowork.cloud/app?lang=en")
    app = await make_app()
    app.menu.open_gui.trigger()
    (url,) = await wait_until(lambda: opened.urls, what="the browser")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "flowork.cloud", "/app")
    query = parse_qs(parts.query)
    assert query["engineUrl"] == [app.engine.url]
    assert query["engineId"] == [app.engine_id]
    assert query["lang"] == ["en"]


async def test_copy_actions_and_logs_folder(make_app, opened, desktop_config):
    app = await make_app()
    app.menu.copy_id.trigger()
    assert QGuiApplication.clipboard().text() == app.engine_id
    assert QToolTip.text() == "Engine ID copied"  # said where the pointer is
    app.menu.copy_url.trigger()
    assert QGuiApplication.clipboard().text() == app.engine.url
    assert QToolTip.text() == "WebSocket URL copied"
    app.menu.open_logs.trigger()
    await wait_until(lambda: opened.urls == [f"file://{desktop_config.log_dir}"], what="the logs folder")


async def test_stopped_engine_disables_open_gui(make_app):
    app = await make_app(start_engine=False)
    assert not app.menu.open_gui.isEnabled() and not app.menu.copy_url.isEnabled()


def test_gui_link_replaces_stale_engine_parameters():
    link = gui_link("https://gui.example/?engineId=old&x=1", "ws://127.0.0.1:1/?engineId=new", "new")
    assert parse_qs(urlsplit(link).query) == {"x": ["1"], "engineUrl": ["ws://127.0.0.1:1/?engineId=new"],
                                              "engineId": ["new"]}


def test_frozen_linux_build_restores_the_library_path(monkeypatch):
    seen: list[str | None] = []
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/tmp/_MEI123")
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/usr/local/lib")
    assert open_url("https://x.example/", lambda url: seen.append(os.environ.get("LD_LIBRARY_PATH")) or True)
    assert seen == ["/usr/local/lib"]
    assert os.environ["LD_LIBRARY_PATH"] == "/tmp/_MEI123"  # the app's own path is back
    monkeypatch.delenv("LD_LIBRARY_PATH_ORIG")
    open_url("https://x.example/", lambda url: seen.append(os.environ.get("LD_LIBRARY_PATH")) or True)
    assert seen[-1] is None  # the user had none: the browser gets none


def test_not_frozen_leaves_the_environment_alone(monkeypatch):
    monkeypatch.setenv("LD_LIBRARY_PATH", "/mine")
    seen = []
    open_url("https://x.example/", lambda url: seen.append(os.environ.get("LD_LIBRARY_PATH")) or True)
    assert seen == ["/mine"]


def fake_xdg_open(folder, script: str):
    """An xdg-open of our own on PATH: the real program's contract (exit 0: a browser took the
    URL; 3 or 4: none could), without starting a browser on this machine."""
    folder.mkdir(exist_ok=True)
    program = folder / "xdg-open"
    program.write_text(f"#!/bin/sh\necho \"$1\" >> {folder}/asked\n{script}\n")
    program.chmod(0o755)
    return folder


async def test_a_browser_that_never_opens_is_reported_with_the_link(make_app, tmp_path, monkeypatch):
    bin_dir = fake_xdg_open(tmp_path / "bin", "exit 4")  # xdg-open: the action failed
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    app = await make_app(opener=None)  # the real way of opening links
    app.menu.open_gui.trigger()
    await wait_until(lambda: app.link_dialog is not None and app.link_dialog.isVisible(),
                     what="the 'did not open' dialog")
    dialog = app.link_dialog
    assert (bin_dir / "asked").read_text().strip() == dialog.link.text()
    assert "engineUrl=" in dialog.link.text()
    assert "could not open your web browser" in " ".join(w.text() for w in dialog.findChildren(QLabel))
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == dialog.link.text()
    assert dialog.copy_button.text() == "Copied"


async def test_a_browser_that_opens_says_nothing(make_app, tmp_path, monkeypatch):
    bin_dir = fake_xdg_open(tmp_path / "bin", "exit 0")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    app = await make_app(opener=None)
    app.menu.open_gui.trigger()
    await wait_until(lambda: (bin_dir / "asked").exists(), what="xdg-open to be asked")
    await wait_until(lambda: not app._tasks, what="the open to finish")
    assert app.link_dialog is None


def test_a_browser_still_running_counts_as_opened(tmp_path):
    from desktop.open_gui import xdg_open
    bin_dir = fake_xdg_open(tmp_path / "bin", "sleep 5")  # the browser itself, in the foreground
    assert xdg_open("https://x.example/", str(bin_dir / "xdg-open"), wait_s=0.5)
    assert not xdg_open("https://x.example/", str(tmp_path / "no-such-program"))
