"""Issue 11, "The desktop dialogs can be abused": approvals. A real workflow on a real engine
asks; the desktop app's real dialog (offscreen) shows it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit

from engine.client import EngineClient
from tests.desktop.conftest import wait_until
from tests.desktop.test_desktop_approvals import Recorder
from tests.runtime_support import collect, edge, final, node, start, workflow

BADGE = "<b style='color:green'>✔ Verified by Flowork</b>"
MESSAGE = "<h1>Routine check</h1><a href='https://evil.example'>details</a>"


def asking_flow() -> dict:
    return workflow([node("t", "manual_trigger"),
                     node("ask", "manual_approval", "<i>node</i>", message=MESSAGE, timeout_s=600),
                     node("yes", "set_data", data={"result": "approved"}),
                     node("no", "set_data", data={"result": "rejected"})],
                    [edge("t", "ask"), edge("ask", "yes", "APPROVED"), edge("ask", "no", "REJECTED")])


async def test_workflow_text_is_plain_and_keys_typed_elsewhere_never_approve(make_app, owner,
                                                                             desktop_config):
    desktop_config.update(owners=(owner.address,))
    recorder = Recorder()
    app = await make_app(notifier=recorder)
    # Someone is typing in another window of this app when the request arrives.
    elsewhere = QLineEdit()
    elsewhere.show()
    elsewhere.activateWindow()
    elsewhere.setFocus()
    await wait_until(lambda: QApplication.focusWidget() is elsewhere, what="focus elsewhere")
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, asking_flow(), preset_name=BADGE)
        await wait_until(lambda: app.approvals.dialogs, what="approval dialog")
        (approval_id, dialog), = app.approvals.dialogs.items()
        assert dialog.isVisible()
        # Every label fed by the workflow shows its text as typed, as plain text.
        labels = {label.text(): label for label in dialog.findChildren(QLabel)}
        for text in (BADGE, MESSAGE, "<i>node</i>"):
            assert text in labels, list(labels)
            assert labels[text].textFormat() == Qt.TextFormat.PlainText
        # The dialog asks the window system not to activate it (the offscreen platform used
        # here activates every new window regardless, so that part is the attribute), and
        # inside it the focus starts on Reject: Approve has none and is not the default.
        assert dialog.testAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        assert dialog.focusWidget() is dialog.reject_button
        assert not dialog.approve_button.hasFocus() and not dialog.approve_button.isDefault()
        # Keys that reach the dialog anyway (Enter, Space) never approve.
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            QTest.keyClick(dialog, key)
            focused = dialog.focusWidget()
            if focused is not None:
                QTest.keyClick(focused, key)
        await asyncio.sleep(0.3)
        events = await collect(client, job_id) if approval_id not in app.approvals.dialogs else []
        if events:
            assert final(events)["status"] == "SUCCEEDED"
            decided = [e["decision"] for e in events if e["type"] == "MANUAL_APPROVAL_RESOLVED"]
            assert decided == ["REJECTED"], decided
        else:
            assert not dialog.approve_button.hasFocus()
            await client.request("manual_approval_response", approval_id=approval_id,
                                 decision="REJECTED")
        # The notification path stays: it was sent, with both buttons.
        assert recorder.sent and set(recorder.sent[0]["buttons"]) == {"Approve", "Reject"}
        # Asked for (the tray menu, the notification): the dialog then comes to the front.
    elsewhere.close()
    elsewhere.deleteLater()


def test_on_a_real_display_an_unasked_request_does_not_take_the_focus(tmp_path) -> None:
    """On Xvfb (xcb, a real X server), in its own process: the approval dialog of a request
    that just arrived leaves the focus where the person is typing; asked for, it takes it."""
    from tests.conftest import REPO_ROOT, require_tool
    from tests.desktop.test_desktop_xvfb_smoke import start_xvfb
    server, number = start_xvfb(require_tool("Xvfb"), tmp_path / "xvfb.log")
    try:
        env = {**os.environ, "DISPLAY": f":{number}", "QT_QPA_PLATFORM": "xcb"}
        done = subprocess.run([sys.executable, "-m", "tests.hardening.dialogs.focus_probe"],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        seen = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait(10)
    assert seen["typing_active_before"], seen
    assert seen["dialog_visible"] and seen["typing_active_after"] and seen["focus_still_typing"], seen
    assert not seen["dialog_active_after"], seen
    assert seen["dialog_active_when_asked"] and seen["focus_on_reject_when_asked"], seen
    assert seen["answers"] == 0, seen  # nothing was answered by any of this
