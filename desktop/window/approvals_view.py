"""The Approvals tab: every pending approval (workflow, node, message, time left) with Approve
and Reject, answered through the same ApprovalsController the dialogs and notifications use, so
the first answer wins wherever it is given.

Keyboard safety, as in the approval dialog: workflow-fed texts are plain text; no button is a
default button, so Enter approves nothing (neither in the table nor on a focused button); the
view never takes the focus or changes the selection when a request arrives, and a row keeps its
approval when others come and go (rows are inserted and removed, never reset).
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer
from PySide6.QtWidgets import (QAbstractItemView, QFormLayout, QHBoxLayout, QHeaderView,
                               QPushButton, QTableView, QVBoxLayout, QWidget)

from desktop.approvals import APPROVED, REJECTED, deadline_of, describe, format_left
from desktop.window.table import ColumnsModel, Index
from desktop.window.text import plain_label, tooltip


COLUMNS = ("Workflow", "Node", "Message", "Time left")


def time_left(request: Any, now: float | None = None) -> str:
    deadline = deadline_of(request)
    if deadline is None:
        return "no time limit"
    return format_left(deadline - (now if now is not None else time.time()))


class ApprovalsModel(ColumnsModel):
    columns = COLUMNS

    def __init__(self) -> None:
        super().__init__()
        self._requests: list[Any] = []

    def sync(self, pending: list[Any]) -> None:
        """Follow the controller's pending list with row inserts and removals."""
        wanted = {r.approval_id for r in pending}
        for row in range(len(self._requests) - 1, -1, -1):
            if self._requests[row].approval_id not in wanted:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._requests[row]
                self.endRemoveRows()
        have = {r.approval_id for r in self._requests}
        new = [r for r in pending if r.approval_id not in have]
        if new:
            at = len(self._requests)
            self.beginInsertRows(QModelIndex(), at, at + len(new) - 1)
            self._requests += new
            self.endInsertRows()

    def request_at(self, row: int) -> Any:
        return self._requests[row] if 0 <= row < len(self._requests) else None

    def tick(self) -> None:
        if self._requests:
            self.dataChanged.emit(self.index(0, 3), self.index(len(self._requests) - 1, 3))

    def row_count(self) -> int:
        return len(self._requests)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        request = self.request_at(index.row()) if index.isValid() else None
        if request is None:
            return None
        workflow, node = describe(request)
        message = str(getattr(request, "message", "") or "")
        if role == Qt.ItemDataRole.DisplayRole:
            return (workflow, node, message.replace("\n", " "), time_left(request))[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(message or "(no message)")
        return None


class ApprovalsView(QWidget):
    def __init__(self, controller: Any) -> None:
        super().__init__()
        self.controller = controller
        self.model = ApprovalsModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(0, 180)
        header.resizeSection(1, 160)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._show_selected())
        self.empty = plain_label("Nothing is waiting for your approval.")
        self.workflow = plain_label(selectable=True)
        self.node = plain_label(selectable=True)
        self.message = plain_label(wrap=True, selectable=True)
        self.left = plain_label()
        form = QFormLayout()
        form.addRow("Workflow:", self.workflow)
        form.addRow("Node:", self.node)
        form.addRow("Message:", self.message)
        form.addRow("Time left:", self.left)
        self.approve_button = QPushButton("Approve")
        self.reject_button = QPushButton("Reject")
        buttons = QHBoxLayout()
        for button in (self.approve_button, self.reject_button):
            button.setAutoDefault(False)  # Enter must not approve by accident
            button.setDefault(False)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.approve_button.clicked.connect(lambda: self.answer(APPROVED))
        self.reject_button.clicked.connect(lambda: self.answer(REJECTED))
        self.note = plain_label(wrap=True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 2)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.note)
        layout.addStretch(1)
        controller.changed.connect(self.sync)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self.sync()

    def sync(self) -> None:
        self.model.sync(self.controller.pending)
        # the text changes, not the layout: the table does not jump when the last request goes
        self.empty.setText("" if self.model.rowCount() else "Nothing is waiting for your approval.")
        self._show_selected()

    def selected(self) -> Any:
        index = self.table.selectionModel().currentIndex()
        if not index.isValid() or not self.table.selectionModel().isRowSelected(index.row(), QModelIndex()):
            return None
        return self.model.request_at(index.row())

    def _show_selected(self) -> None:
        request = self.selected()
        for button in (self.approve_button, self.reject_button):
            button.setEnabled(request is not None)
        if request is None:
            for label in (self.workflow, self.node, self.message, self.left):
                label.setText("")
            return
        workflow, node = describe(request)
        self.workflow.setText(workflow)
        self.node.setText(node)
        self.message.setText(str(getattr(request, "message", "") or "(no message)"))
        self.left.setText(time_left(request))

    def _tick(self) -> None:
        self.model.tick()
        request = self.selected()
        if request is not None:
            self.left.setText(time_left(request))

    def answer(self, decision: str) -> None:
        request = self.selected()
        if request is None:
            return
        accepted = self.controller.answer(request.approval_id, decision)
        self.note.setText("" if accepted else "That approval was already answered (or timed out).")
        self.sync()
