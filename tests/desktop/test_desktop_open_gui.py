"""Open web GUI, Copy engine ID, Copy WebSocket URL, Open logs folder: what reaches the opener
and the clipboard; the library path a frozen Linux build hands to the browser."""

from __future__ import annotations

import os
import sys
from urllib.parse import parse_qs, urlsplit

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QToolTip

from desktop.open_gui import gui_link, open_url


async def test_open_web_gui_from_the_menu(make_app, opened, desktop_config):
    desktop_config.update(gui_url="https://flowork.cloud/app?lang=en")
    app = await make_app()
    app.menu.open_gui.trigger()
    (url,) = opened.urls
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
    assert opened.urls == [f"file://{desktop_config.log_dir}"]


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
