"""The first message: sent only once the engine listens, with the icon of the state it is in;
a start that fails says nothing of the kind (its dialog explains)."""

from __future__ import annotations

import socket

import pytest

from desktop.icons import TrayState
from desktop.supervisor import State
from desktop.tray import Tray
from tests.desktop.conftest import wait_until


@pytest.fixture
def messages(monkeypatch):
    """Every tray message, with the icon state it was shown with."""
    shown: list[tuple[str, TrayState | None]] = []
    monkeypatch.setattr(Tray, "message", lambda self, title, text: shown.append((title, self.state)))
    return shown


async def test_running_is_announced_once_the_engine_listens(make_app, messages):
    app = await make_app(hidden=False)
    assert app.supervisor.state is State.RUNNING
    assert messages == [("Flowork is running", TrayState.IDLE)]


async def test_a_taken_port_is_not_announced_as_running(make_app, messages, desktop_config):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        desktop_config.update(port=holder.getsockname()[1])
        app = await make_app(hidden=False)
        assert app.supervisor.state is State.PORT_IN_USE
        await wait_until(lambda: app.problem_dialog is not None, what="the port dialog")
        assert messages == []
    finally:
        holder.close()


async def test_without_the_engine_the_message_says_it_is_stopped(make_app, messages):
    await make_app(hidden=False, start_engine=False)
    assert messages == [("Flowork is in the tray", TrayState.STOPPED)]
