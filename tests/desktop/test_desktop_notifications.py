"""Desktop notifications through desktop-notifier against a real D-Bus session bus, with a
notification server (org.freedesktop.Notifications) run by the test: its Approve/Reject buttons
answer the approval; an answer given elsewhere withdraws the notification.

(No `from __future__ import annotations` here: dbus-fast reads the signatures from them.)"""



import asyncio
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method, signal

from engine.client import EngineClient
from desktop.notifications import NOTIFICATION_ICON, Notifier, notification_icon
from tests.conftest import REPO_ROOT, require_tool
from tests.desktop.conftest import wait_until
from tests.desktop.test_desktop_approvals import approval_flow
from tests.desktop.test_desktop_runs import shown_run
from tests.runtime_support import collect, final, start


class NotificationServer(ServiceInterface):
    """What a desktop's notification daemon offers, recording what it is asked to show."""

    def __init__(self) -> None:
        super().__init__("org.freedesktop.Notifications")
        self.shown: list[dict[str, Any]] = []
        self.closed: list[int] = []

    @method()
    def GetCapabilities(self) -> "as":  # noqa: F821 - D-Bus signatures, not Python types
        return ["actions", "body"]

    @method()
    def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s", summary: "s", body: "s",  # noqa: F821
               actions: "as", hints: "a{sv}", expire_timeout: "i") -> "u":  # noqa: F821
        self.shown.append({"id": len(self.shown) + 1, "app": app_name, "icon": app_icon, "summary": summary,
                           "body": body, "actions": dict(zip(actions[1::2], actions[0::2]))})
        return len(self.shown)

    @method()
    def CloseNotification(self, notification_id: "u") -> None:  # noqa: F821
        self.closed.append(notification_id)
        self.NotificationClosed(notification_id, 3)

    @method()
    def GetServerInformation(self) -> "ssss":  # noqa: F821
        return ["flowork-test", "flowork", "1", "1.2"]

    @signal()
    def ActionInvoked(self, notification_id: "u", action_key: "s") -> "us":  # noqa: F821
        return [notification_id, action_key]

    @signal()
    def NotificationClosed(self, notification_id: "u", reason: "u") -> "uu":  # noqa: F821
        return [notification_id, reason]


@pytest.fixture
def session_bus(monkeypatch):
    daemon = require_tool("dbus-daemon")
    proc = subprocess.Popen([daemon, "--session", "--nofork", "--nopidfile", "--print-address=1"],
                            stdout=subprocess.PIPE, text=True)
    address = proc.stdout.readline().strip()
    assert address, "dbus-daemon did not start"
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    yield address
    proc.terminate()
    proc.wait(10)


@pytest.fixture
async def notification_server(session_bus):
    bus = await MessageBus(bus_address=session_bus).connect()
    server = NotificationServer()
    bus.export("/org/freedesktop/Notifications", server)
    await bus.request_name("org.freedesktop.Notifications")
    yield server
    bus.disconnect()
    await bus.wait_for_disconnect()


async def test_the_notifications_reject_button_answers(make_app, owner, desktop_config, notification_server):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()  # the real desktop-notifier
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, approval_flow(), preset_name="Release")
        await wait_until(lambda: notification_server.shown, what="the notification")
        shown = notification_server.shown[0]
        assert shown["app"] == "Flowork" and shown["summary"] == "Approval needed: Release"
        assert shown["icon"] == notification_icon().as_uri()  # Flowork's, not the Python logo
        assert "Deploy to production?" in shown["body"]
        assert set(shown["actions"]) == {"Approve", "Reject", ""}  # "": a click on the body
        notification_server.ActionInvoked(shown["id"], shown["actions"]["Reject"])  # the click
        events = await collect(client, job_id)
        resolved = [e for e in events if e["type"] == "MANUAL_APPROVAL_RESOLVED"]
        assert resolved[0]["decision"] == "REJECTED" and resolved[0]["decided_by"] == "desktop"
        assert final(events)["status"] == "SUCCEEDED"
    assert not app.approvals.dialogs


async def test_an_answer_elsewhere_withdraws_the_notification(make_app, owner, desktop_config, notification_server):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, approval_flow())
        asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
        await wait_until(lambda: notification_server.shown and asked["approval_id"] in app.approvals._notifications,
                         what="the notification")
        await client.request("manual_approval_response", approval_id=asked["approval_id"], decision="APPROVED")
        assert final(await collect(client, job_id))["status"] == "SUCCEEDED"
        await wait_until(lambda: notification_server.closed == [notification_server.shown[0]["id"]],
                         what="the notification to be withdrawn")


def test_the_notification_icon_ships_in_the_bundle():
    """The bundle's resources are where resource_path looks when frozen (sys._MEIPASS)."""
    import sys
    sys.path.insert(0, str(REPO_ROOT / "installer" / "pyinstaller"))
    import bundle_config as cfg
    bundled = {(Path(src).name, dest) for src, dest in cfg.resource_files(REPO_ROOT / "resources")}
    *folders, name = NOTIFICATION_ICON
    assert (name, str(Path("resources", *folders))) in bundled
    assert notification_icon().is_file()


async def test_a_failed_run_reaches_the_notification_server(make_app, owner, desktop_config, notification_server):
    from tests.desktop.test_desktop_runs import failing_flow
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, failing_flow(), preset_name="Nightly import")
        assert final(await collect(client, job_id))["status"] == "FAILED"
    await wait_until(lambda: notification_server.shown, what="the failure notice")
    shown = notification_server.shown[0]
    assert shown["summary"] == "Workflow failed: Nightly import"
    assert "Check stock" in shown["body"] and shown["icon"] == notification_icon().as_uri()
    notification_server.ActionInvoked(shown["id"], shown["actions"]["Details…"])
    await wait_until(lambda: shown_run(app) == job_id, what="the run's details in the window")


async def test_without_a_session_bus_the_log_gets_one_line_not_a_traceback(monkeypatch, tmp_path, caplog):
    """No notification service: Flowork falls back to the tray's messages and the log says so
    in a line, without desktop-notifier's traceback (which reads like a crash)."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-such-bus'}")
    shown: list[str] = []
    notifier = Notifier(fallback=lambda title, message, clicked: shown.append(title))
    with caplog.at_level(logging.INFO):
        notifier.notify("Workflow failed: x", "node y")
        for _ in range(200):
            if shown:
                break
            await asyncio.sleep(0.05)
    assert shown == ["Workflow failed: x"]
    assert "using the tray's messages" in caplog.text
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
