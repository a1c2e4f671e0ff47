"""The Automations tab: rules (schedules, webhooks, folder watches) with their next and last
run, a check box to enable each, and Pause all. Shown only when the engine offers automations
(`engine.automations`, from the automations issue); it uses only the small interface below."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Coroutine, Protocol

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QHBoxLayout, QHeaderView, QTableView,
                               QVBoxLayout, QWidget)

from desktop.window.runs_model import STATUS_WORDS
from desktop.window.table import ColumnsModel, Index
from desktop.window.text import plain_label, tooltip


Spawn = Callable[[Coroutine[Any, Any, Any]], Any]
COLUMNS = ("On", "Workflow", "Trigger", "Next run", "Last run")
KINDS = {"schedule": "Schedule", "webhook": "Webhook", "file_watch": "Folder watch"}


class Automations(Protocol):
    """What the tab needs of `engine.automations`."""

    paused: bool

    def listing(self, owner: str | None = None) -> list[dict[str, Any]]: ...
    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]: ...
    async def set_enabled(self, owner: str | None, rule_id: str, enabled: bool) -> Any: ...
    async def set_paused(self, paused: bool) -> None: ...


def local_time(iso: str | None) -> str:
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(str(iso).replace("Z", "+00:00")).astimezone()
    except ValueError:
        return str(iso)
    today = datetime.now().astimezone().date()
    return moment.strftime("%H:%M:%S") if moment.date() == today else moment.strftime("%Y-%m-%d %H:%M")


class AutomationsModel(ColumnsModel):
    columns = COLUMNS

    def __init__(self, spawn: Spawn) -> None:
        super().__init__()
        self._spawn = spawn
        self.source: Automations | None = None
        self.items: list[dict[str, Any]] = []

    def set_items(self, items: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.items = list(items)
        self.endResetModel()

    def row_count(self) -> int:
        return len(self.items)

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsUserCheckable if index.column() == 0 else base

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        item = self.items[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.CheckStateRole and column == 0:
            return Qt.CheckState.Checked if item.get("enabled") else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 1:
                return str(item.get("preset_name") or "")
            if column == 2:
                kind = KINDS.get(str(item.get("kind")), str(item.get("kind") or ""))
                node = item.get("node_name") or item.get("node_id") or ""
                return f"{kind}: {item.get('summary') or ''} ({node})"
            if column == 3:
                if item.get("disabled_reason"):
                    return f"disabled: {item['disabled_reason']}"
                return local_time(item.get("next_run")) or "—"
            if column == 4:
                last = item.get("last_run") or {}
                if not last:
                    return "never"
                status = STATUS_WORDS.get(str(last.get("status")), str(last.get("status") or ""))
                return f"{status} {local_time(last.get('at'))}".strip()
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(str(item.get("disabled_reason") or item.get("webhook_url") or item.get("rule_id")))
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole or index.column() != 0 or self.source is None:
            return False
        item = self.items[index.row()]
        enabled = Qt.CheckState(value) == Qt.CheckState.Checked
        self._spawn(self.source.set_enabled(None, str(item["rule_id"]), enabled))
        return True


class AutomationsView(QWidget):
    def __init__(self, spawn: Spawn) -> None:
        super().__init__()
        self._spawn = spawn
        self.model = AutomationsModel(spawn)
        self._unsubscribe: Callable[[], None] | None = None
        self.pause_all = QCheckBox("Pause all automations")
        self.pause_all.clicked.connect(self._pause_clicked)
        self.empty = plain_label("No automations yet: save a preset with a trigger node "
                                 "(schedule, webhook or folder watch).", wrap=True)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        top = QHBoxLayout()
        top.addWidget(self.pause_all)
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)

    def attach(self, automations: Automations | None) -> None:
        self.detach()
        self.model.source = automations
        if automations is not None:
            self._unsubscribe = automations.subscribe(self.refresh)
        self.refresh()

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.model.source = None

    def refresh(self) -> None:
        source = self.model.source
        items = source.listing() if source is not None else []
        self.model.set_items(items)
        self.empty.setVisible(not items)
        self.pause_all.setEnabled(source is not None)
        self.pause_all.setChecked(bool(source is not None and source.paused))

    def _pause_clicked(self, checked: bool) -> None:
        if self.model.source is not None:
            self._spawn(self.model.source.set_paused(bool(checked)))
