"""Recent runs, read from the engine's events (Engine.subscribe): the last few workflow runs
with their status for the tray's Recent runs menu, and a rate-limited notice for each failure
naming the workflow and the node that failed.

Only the event frames the web GUI also gets are read: `workflow_status_update` (status,
`preset_name`, `status_data.error`, `started_by` where the engine records it) and
`NODE_EXECUTION_METRIC` with status ERROR (`node_name`, `error_message`; `error` from engines
before that field).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

ACTIVE = ("RUNNING", "PAUSED", "QUEUED", "PENDING")
FINISHED = ("SUCCEEDED", "FAILED", "STOPPED")
KEEP = 8                  # runs in the menu
TRACKED = 500             # runs followed at once (the oldest unfinished are forgotten first)
FAILURE_NOTICE_WORKFLOW_S = 60.0   # at most one failure notice per workflow per minute
FAILURE_NOTICE_ANY_S = 10.0        # and one in ten seconds overall; the rest are counted

STARTED_BY = {"schedule": "a schedule", "webhook": "a webhook", "file_watch": "a folder watch",
              "error_workflow": "the error workflow", "gui": "the web GUI"}
GLYPHS = {"SUCCEEDED": "✓", "FAILED": "✗", "STOPPED": "■", "RUNNING": "▶", "PAUSED": "‖"}


@dataclass(frozen=True)
class Run:
    job_id: str
    workflow: str
    status: str
    started_at: float
    ended_at: float | None = None
    error: str | None = None
    failed_node: str | None = None
    node_error: str | None = None
    started_by: str | None = None     # "a schedule", ...; None when a client started it

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def label(self) -> str:
        """One menu line: '✗ Nightly import — failed at 14:03 (a schedule)'."""
        when = datetime.fromtimestamp(self.ended_at or self.started_at).strftime("%H:%M")
        status = {"RUNNING": "running since", "PAUSED": "paused, since"}.get(
            self.status, f"{self.status.lower()} at")
        text = f"{GLYPHS.get(self.status, '•')} {self.workflow} — {status} {when}"
        return text + (f" ({self.started_by})" if self.started_by else "")

    def failure(self) -> str:
        """What failed, for the notice: 'Node “Fetch”: HTTP 500 from …'."""
        if self.failed_node:
            return f"Node “{self.failed_node}”: {self.node_error or self.error or 'failed'}"
        return self.error or "The run failed."


def _started_by(data: dict[str, Any]) -> str | None:
    origin = data.get("started_by")
    kind = origin.get("kind") if isinstance(origin, dict) else None
    if not isinstance(kind, str) or kind == "gui":
        return None
    return STARTED_BY.get(kind, kind.replace("_", " "))


class RecentRuns(QObject):
    changed = Signal()
    failed = Signal(object)  # Run, once per failed run

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock
        self._runs: OrderedDict[str, Run] = OrderedDict()   # oldest first
        self._node_failures: dict[str, tuple[str, str | None]] = {}
        self.unseen_failure: Run | None = None  # the tray shows it until the menu is opened

    @property
    def runs(self) -> list[Run]:
        """The last few, newest first."""
        return list(reversed(self._runs.values()))[:KEEP]

    def get(self, job_id: str) -> Run | None:
        return self._runs.get(job_id)

    def seen(self) -> None:
        if self.unseen_failure is not None:
            self.unseen_failure = None
            self.changed.emit()

    def on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "NODE_EXECUTION_METRIC" and frame.get("status") == "ERROR":
            job_id = frame.get("job_id") or frame.get("workflow_context_id")
            if isinstance(job_id, str):
                text = frame.get("error_message") or frame.get("error")
                self._node_failures[job_id] = (str(frame.get("node_name") or frame.get("node_id") or "?"),
                                               str(text) if text else None)
                while len(self._node_failures) > TRACKED:
                    self._node_failures.pop(next(iter(self._node_failures)))
        elif kind == "workflow_status_update":
            self._status(frame)

    def _status(self, frame: dict[str, Any]) -> None:
        job_id = frame.get("job_id")
        data = frame.get("status_data")
        if not isinstance(job_id, str) or not isinstance(data, dict):
            return
        status = str(data.get("status") or "")
        known = self._runs.get(job_id)
        if known is not None and known.finished:
            return  # a late repeat of the last status
        now = self._clock()
        run = known or Run(job_id=job_id, workflow=str(data.get("preset_name") or "Unsaved workflow"),
                           status=status, started_at=_number(data.get("start_time")) or now,
                           started_by=_started_by(data))
        run = replace(run, status=status)
        if status in FINISHED:
            node, node_error = self._node_failures.pop(job_id, (None, None))
            error = data.get("error")
            run = replace(run, ended_at=_number(data.get("end_time")) or now,
                          error=str(error) if error else None,
                          failed_node=node if status == "FAILED" else None,
                          node_error=node_error if status == "FAILED" else None)
        self._runs[job_id] = run
        self._runs.move_to_end(job_id)
        self._trim()
        if status == "FAILED":
            self.unseen_failure = run
            self.failed.emit(run)
        elif status == "SUCCEEDED" and self.unseen_failure is not None \
                and self.unseen_failure.workflow == run.workflow:
            self.unseen_failure = None  # the same workflow worked since: nothing left to see
        self.changed.emit()

    def _trim(self) -> None:
        finished = [k for k, r in self._runs.items() if r.finished]
        for job_id in finished[:-KEEP]:
            del self._runs[job_id]
        while len(self._runs) > TRACKED:
            self._runs.popitem(last=False)

    def clear(self) -> None:
        """A new engine: its runs start afresh (the web GUI keeps the history)."""
        self._node_failures.clear()
        unfinished = [k for k, r in self._runs.items() if not r.finished]
        for job_id in unfinished:  # they ended with the engine
            del self._runs[job_id]
        self.changed.emit()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class FailureNotices:
    """Decides which failures become a notification: one per workflow a minute, one in ten
    seconds overall; the ones held back are counted into the next notice, never lost from the
    Recent runs menu."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_any = float("-inf")
        self._last_by_workflow: dict[str, float] = {}
        self.held_back = 0

    def admit(self, run: Run) -> int | None:
        """None: hold this one back; else the number held back before it (now reset)."""
        now = self._clock()
        if now - self._last_any < FAILURE_NOTICE_ANY_S or \
                now - self._last_by_workflow.get(run.workflow, float("-inf")) < FAILURE_NOTICE_WORKFLOW_S:
            self.held_back += 1
            return None
        self._last_any = now
        self._last_by_workflow[run.workflow] = now
        if len(self._last_by_workflow) > 200:
            oldest = min(self._last_by_workflow, key=self._last_by_workflow.__getitem__)
            del self._last_by_workflow[oldest]
        held, self.held_back = self.held_back, 0
        return held
