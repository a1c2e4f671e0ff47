"""The dialog for a problem the user must resolve (desktop/errors.py): the app's sentences,
one button per fix, the engine's own text and the last log lines under Show Details."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMessageBox, QPushButton, QWidget

from desktop.errors import LABELS, OTHER_PORT, Problem


class ProblemDialog(QMessageBox):
    action_chosen = Signal(str)  # one of desktop.errors' action names

    def __init__(self, problem: Problem, *, free_port: int | None = None,
                 log_lines: list[str] = (), parent: QWidget | None = None) -> None:  # type: ignore[assignment]
        super().__init__(parent)
        self.problem = problem
        self.setWindowTitle(problem.title)
        self.setIcon(QMessageBox.Icon.Warning)
        self.setText(problem.text)
        self.setInformativeText(problem.advice)
        details = [problem.detail] if problem.detail else []
        if log_lines:
            details += ["", "Last log lines:", *log_lines]
        if details:
            self.setDetailedText("\n".join(details))
        self.buttons: dict[str, QPushButton] = {}
        for index, action in enumerate(problem.actions):
            label = (f"Use &port {free_port}" if free_port else "Use another &port") \
                if action == OTHER_PORT else LABELS[action]
            role = QMessageBox.ButtonRole.AcceptRole if index == 0 else QMessageBox.ButtonRole.ActionRole
            button = self.addButton(label, role)
            button.clicked.connect(lambda _c=False, a=action: self.action_chosen.emit(a))
            self.buttons[action] = button
        self.addButton(QMessageBox.StandardButton.Close)
        self.setModal(False)
