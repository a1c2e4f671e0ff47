"""Engine events, coalesced for the window: however fast the engine runs, the window hears
"these runs changed" at most once per interval (a few times a second).

The listener runs on the loop for every engine event, so it only adds a job id to a set; past
MAX_IDS changed runs it stops collecting and says "many" (the window then reloads what it shows),
so a burst of 1,000 runs a second costs neither time nor memory here.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal

INTERVAL_MS = 250
MAX_IDS = 2000
RUN_EVENTS = frozenset({"workflow_status_update", "NODE_EXECUTION_METRIC", "log"})


class EngineFeed(QObject):
    # A frozenset of job ids, or None for "too many to name: reload".
    runs_changed = Signal(object)
    approvals_or_status = Signal()

    def __init__(self, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__()
        self._changed: set[str] | None = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._flush)
        self._unsubscribe: Callable[[], None] | None = None
        self._engine: Any = None

    def attach(self, engine: Any) -> None:
        self.detach()
        self._engine = engine
        self._unsubscribe = engine.subscribe(self.on_event)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._timer.stop()
        self._changed = set()

    def on_event(self, event: Any) -> None:
        frame = event.frame
        if frame.get("type") not in RUN_EVENTS:
            return
        runs = getattr(self._engine, "runs", None)  # the run a frame names (RunQueries.run_key)
        job_id = runs.run_key(event) if runs is not None else None
        if self._changed is not None and job_id:
            self._changed.add(job_id)
            if len(self._changed) > MAX_IDS:
                self._changed = None
        if not self._timer.isActive():
            self._timer.start()

    def _flush(self) -> None:
        changed, self._changed = self._changed, set()
        self.runs_changed.emit(frozenset(changed) if changed is not None else None)
