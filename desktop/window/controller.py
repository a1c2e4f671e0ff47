"""The window's side of the app: follows the engine (its events, coalesced, and its status
samples) from the engine's start, and makes the window the first time it is opened.

While the window is hidden nothing is queried: it only reloads what it shows when it is shown
again.
"""

from __future__ import annotations

from typing import Any, Callable, Coroutine

from PySide6.QtCore import QObject

from desktop.window.feed import EngineFeed
from desktop.window.samples import StatusHistory
from desktop.window.window import FloworkWindow

Spawn = Callable[[Coroutine[Any, Any, Any]], Any]


class WindowController(QObject):
    def __init__(self, spawn: Spawn, approvals: Any, log_lines: Callable[[int], list[str]],
                 open_logs: Callable[[], None]) -> None:
        super().__init__()
        self._spawn = spawn
        self._approvals = approvals
        self._log_lines = log_lines
        self._open_logs = open_logs
        self.engine: Any = None
        self.feed = EngineFeed()
        self.history = StatusHistory()
        self.window: FloworkWindow | None = None
        self.feed.runs_changed.connect(self._runs_changed)

    def attach(self, engine: Any) -> None:
        self.engine = engine
        self.feed.attach(engine)
        self.history.attach(engine.status)
        if self.window is not None:
            self.window.set_engine(engine)

    def detach(self) -> None:
        self.engine = None
        self.feed.detach()
        self.history.detach()
        if self.window is not None:
            self.window.set_engine(None)

    def open(self, job_id: str | None = None) -> FloworkWindow:
        """Show the window (made the first time), on a run's detail when `job_id` is given."""
        if self.window is None:
            self.window = FloworkWindow(self._spawn, self._approvals, self.history,
                                        self._log_lines, self._open_logs)
            self.window.set_engine(self.engine)
            self.window.runs.table.setFocus()  # the arrow keys walk the runs from the start
        self.window.bring_up()
        if job_id is not None:
            self.window.tabs.setCurrentWidget(self.window.runs)
            self.window.runs.select_run(job_id)
        return self.window

    def hide(self) -> None:
        if self.window is not None:
            self.window.hide()

    def _runs_changed(self, changed: frozenset[str] | None) -> None:
        window = self.window
        if window is not None and window.isVisible():
            window.runs.on_runs_changed(changed)
