"""Manual approvals on the desktop: a non-modal dialog and a notification per request.

Either one answers through the engine's approval API (engine.approvals). The first answer wins
wherever it was given: when the web GUI (or another client) answers, the resolution event
closes the dialog and clears the notification here.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QLabel, QPushButton,
                               QVBoxLayout, QWidget)

from desktop.notifications import Notifier

log = logging.getLogger(__name__)

APPROVED = "APPROVED"
REJECTED = "REJECTED"


def deadline_of(request: Any) -> float | None:
    """Epoch seconds when the request times out (requested_at may be epoch or ISO text)."""
    requested = getattr(request, "requested_at", None)
    timeout = getattr(request, "timeout_s", None)
    if requested is None or timeout is None:
        return None
    if isinstance(requested, str):
        try:
            requested = datetime.fromisoformat(requested.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    elif isinstance(requested, datetime):
        requested = requested.timestamp()
    try:
        return float(requested) + float(timeout)
    except (TypeError, ValueError):
        return None


def format_left(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def describe(request: Any) -> tuple[str, str]:
    workflow = getattr(request, "workflow_name", None) or "a workflow"
    node = getattr(request, "node_name", None) or getattr(request, "node_id", "?")
    return str(workflow), str(node)


def plain_label(text: str) -> QLabel:
    """A label for text a workflow chose: never rendered as markup (a workflow named
    `<b style='color:green'>Verified by Flowork</b>` must read as exactly that)."""
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    return label


class ApprovalDialog(QDialog):
    """Workflow, node, message, time left; Approve / Reject. Never modal.

    It opens without taking the keyboard focus from whatever the person is typing in
    (`WA_ShowWithoutActivating`), and inside it the focus starts on Reject: a stray Enter or
    Space can reject, never approve."""

    def __init__(self, request: Any, answer: Callable[[str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request = request
        self.approval_id = request.approval_id
        workflow, node = describe(request)
        self.setWindowTitle(f"Approval needed: {workflow}")  # Qt adds "— Flowork"
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating, True)
        self.setMinimumWidth(380)
        heading = QLabel("A workflow is waiting for your approval.")
        font = heading.font()
        font.setBold(True)
        heading.setFont(font)
        form = QFormLayout()
        form.addRow("Workflow:", plain_label(workflow))
        form.addRow("Node:", plain_label(node))
        message = plain_label(str(getattr(request, "message", "") or "(no message)"))
        message.setWordWrap(True)
        form.addRow("Message:", message)
        self.time_left = plain_label("")
        form.addRow("Time left:", self.time_left)
        buttons = QDialogButtonBox()
        self.approve_button = QPushButton("Approve")
        self.reject_button = QPushButton("Reject")
        buttons.addButton(self.approve_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.reject_button, QDialogButtonBox.ButtonRole.RejectRole)
        for button in (self.approve_button, self.reject_button):
            button.setAutoDefault(False)  # Enter must not approve by accident
            button.setDefault(False)
        # With no default, the button box would make the first accept button (Approve) the
        # default when the dialog shows; Reject is, so Enter rejects.
        self.reject_button.setDefault(True)
        self.approve_button.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # not reached by Tab either
        self.setFocusProxy(self.reject_button)
        self.approve_button.clicked.connect(lambda: answer(APPROVED))
        self.reject_button.clicked.connect(lambda: answer(REJECTED))
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self._deadline = deadline_of(request)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(1000)
        self._tick()
        self.reject_button.setFocus(Qt.FocusReason.OtherFocusReason)

    def _tick(self) -> None:
        if self._deadline is None:
            self.time_left.setText("no time limit")
        else:
            self.time_left.setText(format_left(self._deadline - time.time()))

    def reject(self) -> None:  # Escape / window close: hide, the request stays pending
        self.hide()


class ApprovalsController(QObject):
    changed = Signal()

    def __init__(self, notifier: Notifier, *, show_dialogs: bool = True) -> None:
        super().__init__()
        self.notifier = notifier
        self.show_dialogs = show_dialogs
        self._api: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self._pending: dict[str, Any] = {}
        self.dialogs: dict[str, ApprovalDialog] = {}
        self._closing: list[ApprovalDialog] = []
        self._notifications: dict[str, str] = {}

    @property
    def pending(self) -> list[Any]:
        return list(self._pending.values())

    def attach(self, engine: Any) -> None:
        """Follow a (re)started engine: its runtime and approval center are new each start."""
        self.detach()
        try:
            api = engine.approvals
            self._unsubscribe = api.subscribe(self._on_requested, self._on_resolved)
        except (RuntimeError, AttributeError) as exc:
            log.info("this engine has no approval center (%s); approvals are not shown", exc)
            return
        self._api = api
        for request in api.pending():
            self._on_requested(request)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            try:
                self._unsubscribe()
            except Exception:  # noqa: BLE001
                log.debug("unsubscribe from approvals failed", exc_info=True)
        self._unsubscribe = None
        self._api = None
        for approval_id in list(self._pending):
            self._forget(approval_id)

    def show(self, approval_id: str, *, asked: bool = True) -> None:
        """Show the request's dialog. `asked`: the person asked for it (a click on the tray
        menu or the notification), so it comes to the front with the focus; a request that
        just arrived from a workflow appears without taking the focus."""
        request = self._pending.get(approval_id)
        if request is None:
            return
        dialog = self.dialogs.get(approval_id)
        if dialog is None:
            dialog = ApprovalDialog(request, lambda d, a=approval_id: self.answer(a, d))
            self.dialogs[approval_id] = dialog
        dialog.show()
        if asked:
            dialog.raise_()
            dialog.activateWindow()
            dialog.reject_button.setFocus(Qt.FocusReason.ActiveWindowFocusReason)

    def answer(self, approval_id: str, decision: str) -> bool:
        if self._api is None:
            return False
        try:
            accepted = bool(self._api.resolve(approval_id, decision, decided_by="desktop"))
        except Exception:  # noqa: BLE001 - the engine refused: the request stays visible
            log.exception("answering approval %s failed", approval_id)
            return False
        if not accepted:
            log.info("approval %s was already answered or timed out", approval_id)
        self._forget(approval_id)  # resolved one way or the other
        return accepted

    def _on_requested(self, request: Any) -> None:
        approval_id = request.approval_id
        if approval_id in self._pending:
            return
        self._pending[approval_id] = request
        if self.show_dialogs:
            self.show(approval_id, asked=False)
        workflow, node = describe(request)
        self.notifier.notify(
            f"Approval needed: {workflow}", f"{node}: {getattr(request, 'message', '')}",
            buttons=[("Approve", lambda a=approval_id: self.answer(a, APPROVED)),
                     ("Reject", lambda a=approval_id: self.answer(a, REJECTED))],
            on_clicked=lambda a=approval_id: self.show(a),
            on_sent=lambda ident, a=approval_id: self._notifications.__setitem__(a, ident))
        self.changed.emit()

    def _on_resolved(self, resolution: Any) -> None:
        self._forget(resolution.approval_id)

    def _forget(self, approval_id: str) -> None:
        known = self._pending.pop(approval_id, None) is not None
        dialog = self.dialogs.pop(approval_id, None)
        if dialog is not None:
            dialog._timer.stop()
            dialog.hide()
            dialog.deleteLater()
            # We may be inside its own button's click: the last Python reference (which owns
            # the C++ dialog) must outlive that click, so it is dropped on the next loop pass.
            self._closing.append(dialog)
            QTimer.singleShot(0, self._closing.clear)
        identifier = self._notifications.pop(approval_id, None)
        if identifier is not None:
            self.notifier.clear(identifier)
        if known:
            self.changed.emit()
