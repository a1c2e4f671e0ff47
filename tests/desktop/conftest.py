"""Desktop tests: real widgets (offscreen), a real engine on a real socket, on a qasync loop.

Every async test here runs on a qasync QEventLoop, as the app does, so awaiting in a test also
runs Qt. Waiting is done with `wait_until` (the async form of qtbot.waitUntil: qtbot's own
waits would re-enter the running loop) and generous timeouts, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest
import shiboken6
from PySide6.QtWidgets import QApplication

from desktop.app import DesktopApp
from desktop.autostart import Autostart
from desktop.config import DesktopConfig
from desktop.event_loop import DesktopEventLoop
from desktop.supervisor import RestartPolicy, State


class _TestLoop(DesktopEventLoop):
    """The app's loop, whose delayed callbacks also find their loop when Qt runs them between
    test phases.

    pytest-qt processes Qt events after each phase, outside `run_until_complete`; qasync's
    delayed callbacks are Qt timers, so a connection handler finishing then would see no
    running loop (the ready queue's callbacks already do, `DesktopEventLoop.as_running`). In
    the app, Qt's loop *is* the asyncio loop, so this cannot happen there.
    """

    def _add_callback(self, handle: Any, delay: float = 0) -> Any:
        callback = handle._callback

        def run(*args: Any) -> Any:
            if self.is_closed():
                return callback(*args)
            with self.as_running():
                return callback(*args)

        handle._callback = run
        return super()._add_callback(handle, delay)


def _qasync_loop() -> asyncio.AbstractEventLoop:
    app = QApplication.instance() or QApplication([])
    app.setQuitOnLastWindowClosed(False)
    return _TestLoop(app)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"qasync": _qasync_loop}


async def wait_until(condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll `condition` while the loop (and Qt) runs; fail with `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def no_session_bus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never the developer's own session bus (their notification daemon would pop up messages);
    the notification tests start a private bus of their own."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-session-bus")


class Opened:
    """The opener injected into the app: records every URL instead of starting a browser."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> bool:
        self.urls.append(url)
        return True


@pytest.fixture
def opened() -> Opened:
    return Opened()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.fixture
def desktop_config(tmp_path: Path, data_dir: Path) -> DesktopConfig:
    config = DesktopConfig(folder=tmp_path / "config", data_dir=data_dir, log_dir=tmp_path / "logs")
    config.update(port=0, webhook_port=0)
    return config


AppFactory = Callable[..., Awaitable[DesktopApp]]


@pytest.fixture
async def make_app(desktop_config: DesktopConfig, opened: Opened, home: Path,
                   qapp: QApplication) -> AsyncIterator[AppFactory]:
    """Desktop apps with the real tray menu; each is quit (engine and tunnel stopped) after."""
    apps: list[DesktopApp] = []

    async def factory(*, start_engine: bool = True, config: DesktopConfig | None = None,
                      **kwargs: Any) -> DesktopApp:
        options: dict[str, Any] = dict(
            tray=True, opener=opened, autostart=Autostart(system="Linux", home=home),
            policy=RestartPolicy(base_delay_s=0.05), hidden=True)
        options.update(kwargs)
        app = DesktopApp(config or desktop_config, **options)
        apps.append(app)
        await app.start(start_engine=start_engine)
        if start_engine:
            await wait_until(lambda: app.supervisor.state is not State.STARTING, what="engine start")
        return app

    yield factory
    for app in apps:
        if not app.finished.is_set():
            await app.shutdown()
        _dispose(app)


def _dispose(app: DesktopApp) -> None:
    """Delete the app's Qt objects now, on this thread (not whenever and wherever the GC runs)."""
    objects: list[Any] = [app.status_window, app.menu, app.folders_dialog, app.settings_dialog,
                          app.problem_dialog, app.data_dir_picker, app.folders.picker,
                          app.about_dialog, app.confirm_dialog, app.link_dialog,
                          *app.approvals.dialogs.values(), *app.pairing.dialogs.values()]
    if app.tray is not None:
        objects.append(app.tray.icon)
    objects += [app.window.window, app.window.feed, app.window.history, app.window]
    objects += [app.supervisor, app.tunnel, app.approvals, app.folders, app]
    for obj in objects:
        if obj is not None and shiboken6.isValid(obj):
            shiboken6.delete(obj)
