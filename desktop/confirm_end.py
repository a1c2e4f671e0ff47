"""Before Stop engine, Restart engine or Quit ends running workflows: ask, naming how many.

Issue #13 (durable jobs) adds "Suspend them" here: `suspend`, when given, is offered as a
third choice that keeps the jobs to continue at the next start instead of stopping them.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMessageBox, QWidget


def question(running: int, approvals: int) -> tuple[str, str]:
    """('1 workflow is running — stop it anyway?', what stopping does)."""
    it = "it" if running == 1 else "them"
    text = (f"1 workflow is running — stop {it} anyway?" if running == 1 else
            f"{running} workflows are running — stop {it} anyway?")
    waits = ("" if not approvals else
             " 1 of them is waiting for your approval." if approvals == 1 else
             f" {approvals} of them are waiting for your approval.")
    return text, (f"Stopping ends {it} now; {it} will be recorded as stopped.{waits}")


class ConfirmEndDialog(QMessageBox):
    confirmed = Signal()

    def __init__(self, verb: str, running: int, approvals: int, *,
                 suspend: Callable[[], None] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        text, info = question(running, approvals)
        self.setWindowTitle(f"{verb.replace('&', '')}?")
        self.setIcon(QMessageBox.Icon.Warning)
        self.setText(text)
        self.setInformativeText(info)
        self.end_button = self.addButton(verb, QMessageBox.ButtonRole.DestructiveRole)
        self.suspend_button = None
        if suspend is not None:  # durable jobs (#13)
            self.suspend_button = self.addButton("&Suspend them", QMessageBox.ButtonRole.AcceptRole)
            self.suspend_button.clicked.connect(suspend)
        self.cancel_button = self.addButton(QMessageBox.StandardButton.Cancel)
        self.setDefaultButton(self.cancel_button)  # Enter must not end someone's work
        self.setEscapeButton(self.cancel_button)
        self.end_button.clicked.connect(self.confirmed.emit)
        self.setModal(False)
