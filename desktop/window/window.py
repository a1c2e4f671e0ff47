"""The Flowork window (menu "Open Flowork", or a click on the tray icon): Runs, Approvals,
Automations (when the engine offers them) and Engine, in tabs. Closing it hides it; Flowork
keeps running in the tray."""

from __future__ import annotations

from typing import Any, Callable, Coroutine

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import QMainWindow, QTabWidget

from desktop.icons import app_icon
from desktop.window.approvals_view import ApprovalsView
from desktop.window.automations_view import AutomationsView
from desktop.window.engine_view import EngineView
from desktop.window.runs_view import RunsView
from desktop.window.samples import StatusHistory
from desktop.window.text import plain_label

Spawn = Callable[[Coroutine[Any, Any, Any]], Any]


class FloworkWindow(QMainWindow):
    def __init__(self, spawn: Spawn, approvals: Any, history: StatusHistory,
                 log_lines: Callable[[int], list[str]], open_logs: Callable[[], None]) -> None:
        super().__init__()
        self.setWindowTitle("Flowork")
        self.setWindowIcon(app_icon())
        screen = self.screen().availableGeometry()
        self.resize(min(1000, screen.width() - 24), min(680, screen.height() - 24))
        self.tabs = QTabWidget()
        self.runs = RunsView(spawn)
        self.approvals = ApprovalsView(approvals)
        self.automations = AutomationsView(spawn)
        self.engine_view = EngineView(history, log_lines, open_logs)
        self.tabs.addTab(self.runs, "Runs")
        self.tabs.addTab(self.approvals, "Approvals")
        self.tabs.addTab(self.automations, "Automations")
        self.tabs.addTab(self.engine_view, "Engine")
        self.setCentralWidget(self.tabs)
        for keys, step in (("Ctrl+Tab", 1), ("Ctrl+Shift+Tab", -1), ("Ctrl+PgDown", 1), ("Ctrl+PgUp", -1)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)  # wherever the focus is
            shortcut.activated.connect(lambda s=step: self.next_tab(s))
        self.state = plain_label()
        self.statusBar().addWidget(self.state, 1)
        approvals.changed.connect(self._approvals_title)
        self._approvals = approvals
        self._approvals_title()
        self.set_engine(None)

    def set_engine(self, engine: Any) -> None:
        """A (re)started engine, or None while it is stopped."""
        self.runs.set_source(engine.runs if engine is not None else None)
        automations = getattr(engine, "automations", None) if engine is not None else None
        self.automations.attach(automations)
        self.tabs.setTabVisible(self.tabs.indexOf(self.automations), automations is not None)
        if engine is not None:
            config = engine.config
            self.engine_view.set_engine(engine.url, engine.version, config.data_dir,
                                        config.log_dir or "(the terminal only)")
            self.state.setText(f"Engine running at {engine.url}")
        else:
            self.state.setText("The engine is not running: start it from the tray menu.")

    def _approvals_title(self) -> None:
        count = len(self._approvals.pending)
        self.tabs.setTabText(self.tabs.indexOf(self.approvals),
                             f"Approvals ({count})" if count else "Approvals")

    def next_tab(self, step: int) -> None:
        visible = [i for i in range(self.tabs.count()) if self.tabs.isTabVisible(i)]
        at = visible.index(self.tabs.currentIndex()) if self.tabs.currentIndex() in visible else 0
        self.tabs.setCurrentIndex(visible[(at + step) % len(visible)])

    def bring_up(self) -> None:
        self.show()
        if self.isMinimized():
            self.showNormal()
        self.raise_()
        self.activateWindow()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.runs.on_runs_changed(None)  # changes were not followed while hidden

    def closeEvent(self, event: QCloseEvent) -> None:
        event.accept()  # hidden: the tray keeps Flowork running
