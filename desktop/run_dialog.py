"""One run's details, from the Recent runs menu or a failure notice: workflow, status, times,
what started it, the node that failed and its error (selectable, to paste into a report)."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from desktop.runs import Run


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


class RunDialog(QMessageBox):
    def __init__(self, run: Run, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run = run
        self.setWindowTitle(f"Run of {run.workflow}")
        self.setIcon(QMessageBox.Icon.Warning if run.status == "FAILED" else QMessageBox.Icon.Information)
        self.setText(f"“{run.workflow}” {run.status.lower()}"
                     + (f": {run.failure()}" if run.status == "FAILED" else "."))
        rows = [("Started", _when(run.started_at))]
        if run.ended_at is not None:
            rows.append(("Ended", f"{_when(run.ended_at)} (after {run.ended_at - run.started_at:.1f} s)"))
        if run.started_by:
            rows.append(("Started by", run.started_by))
        if run.failed_node:
            rows.append(("Failed node", run.failed_node))
        if run.error and run.status != "FAILED":
            rows.append(("Error", run.error))
        rows.append(("Job ID", run.job_id))
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setInformativeText("\n".join(f"{k}: {v}" for k, v in rows))
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if run.error and run.status == "FAILED" and run.error not in self.text():
            self.setDetailedText(run.error)
        self.open_gui_button = self.addButton("Open &web GUI", QMessageBox.ButtonRole.ActionRole)
        self.addButton(QMessageBox.StandardButton.Close)
        self.setModal(False)
