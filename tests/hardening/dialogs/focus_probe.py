"""`python -m tests.hardening.dialogs.focus_probe` on a real X display (xcb): someone types in a
window; an approval request arrives from a workflow; does the approval dialog take the focus?
Then the person asks for it (as from the tray menu). Prints one JSON line of what happened."""

from __future__ import annotations

import json
import sys
import time

from PySide6.QtWidgets import QApplication, QLineEdit

from desktop.approvals import ApprovalsController
from engine.runtime.approvals import ApprovalRequest


class Notifications:
    """The notification path is not what is probed here (no notification service on Xvfb)."""

    def notify(self, *args: object, **kwargs: object) -> None:
        pass

    def clear(self, identifier: str) -> None:
        pass


class Center:
    def __init__(self) -> None:
        self.answers: list[tuple[str, str]] = []

    def subscribe(self, on_requested, on_resolved):  # type: ignore[no-untyped-def]
        self.on_requested = on_requested
        return lambda: None

    def pending(self) -> list[ApprovalRequest]:
        return []

    def resolve(self, approval_id: str, decision: str, decided_by: str = "desktop") -> bool:
        self.answers.append((approval_id, decision))
        return True


def spin(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main() -> int:
    app = QApplication(sys.argv[:1])
    typing = QLineEdit()
    typing.setWindowTitle("someone is typing here")
    typing.show()
    typing.activateWindow()
    typing.setFocus()
    spin(app, 1.0)
    result = {"typing_active_before": app.activeWindow() is typing}
    center = Center()
    engine = type("EngineLike", (), {"approvals": center})()
    controller = ApprovalsController(Notifications())  # type: ignore[arg-type]
    controller.attach(engine)
    center.on_requested(ApprovalRequest("a1", "job-1", "0xowner", "ask", "Ask", "manual_approval",
                                        "Deploy?", time.time(), 600.0, "Release"))
    spin(app, 1.0)
    dialog = controller.dialogs["a1"]
    result.update(dialog_visible=dialog.isVisible(), typing_active_after=app.activeWindow() is typing,
                  dialog_active_after=app.activeWindow() is dialog,
                  focus_still_typing=app.focusWidget() is typing)
    controller.show("a1")  # asked for: from the tray menu or the notification
    spin(app, 1.0)
    result.update(dialog_active_when_asked=app.activeWindow() is dialog,
                  focus_on_reject_when_asked=app.focusWidget() is dialog.reject_button,
                  answers=len(center.answers))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
