"""The runs table's model: pages of runs from `engine.runs`, fetched as the view scrolls.

Qt asks `canFetchMore`/`fetchMore` when the last row comes into view; the next page is read by
keyset (older than the last row) on the database thread and inserted when it arrives. Live
changes come coalesced from the EngineFeed: rows already shown are re-read by id, and while the
view follows the newest runs (scrolled to the top), newer runs are inserted on top and the
oldest rows beyond MAX_FOLLOWING_ROWS dropped, so a busy engine never grows the table. Scrolled
down, new runs are only counted ("N newer runs") until the person goes back up.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Callable, Coroutine

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QColor

from desktop.window.table import ColumnsModel, Index
from desktop.window.text import tooltip
from engine.runs import Run, RunFilter

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any]], Any]


PAGE = 100
MAX_FOLLOWING_ROWS = 500
COLUMNS = ("Workflow", "How it started", "Started", "Duration", "Status", "Progress")
WORKFLOW, HOW, STARTED, DURATION, STATUS, PROGRESS = range(len(COLUMNS))
RUN_ROLE = Qt.ItemDataRole.UserRole + 1
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 2

STATUS_COLOURS = {"RUNNING": "#1e73be", "PAUSED": "#b7791f", "SUCCEEDED": "#2f855a",
                  "FAILED": "#c53030", "STOPPED": "#6b7280"}
STATUS_WORDS = {"RUNNING": "Running", "PAUSED": "Paused", "SUCCEEDED": "Succeeded",
                "FAILED": "Failed", "STOPPED": "Stopped"}
STARTED_BY_WORDS = {"gui": "GUI", "schedule": "Schedule", "webhook": "Webhook",
              "file_watch": "Folder watch", "error_workflow": "Error workflow"}


def started_by_label(started_by: dict[str, Any]) -> str:
    kind = str(started_by.get("kind") or "gui")
    return STARTED_BY_WORDS.get(kind, kind.replace("_", " ").capitalize())


def when(epoch: float, now: float | None = None) -> str:
    moment = datetime.fromtimestamp(epoch)
    today = datetime.fromtimestamp(now if now is not None else time.time()).date()
    return moment.strftime("%H:%M:%S") if moment.date() == today else moment.strftime("%Y-%m-%d %H:%M")


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_text(run: Run) -> str:
    if run.nodes_total:
        return f"{min(run.nodes_done, run.nodes_total)} of {run.nodes_total} nodes"
    return f"{run.nodes_done} node{'s' if run.nodes_done != 1 else ''}"


class RunsModel(ColumnsModel):
    columns = COLUMNS

    newer_waiting = Signal(bool)   # new runs exist above what is shown (while scrolled down)
    loaded = Signal()              # a page or a refresh arrived

    def __init__(self, spawn: Spawn) -> None:
        super().__init__()
        self._spawn = spawn
        self._source: Any = None          # engine.runs (RunQueries)
        self._rows: list[Run] = []
        self._index: dict[str, int] = {}
        self._filter = RunFilter()
        self._more = False
        self._fetching = False
        self._refreshing = False
        self._pending: set[str] | None = set()  # changes that arrived during a refresh
        self._pending_any = False
        self._generation = 0
        self.following = True
        self.has_newer = False

    # -- the source and the filter -----------------------------------------------------------

    def set_source(self, source: Any) -> None:
        self._source = source
        self.reload()

    def set_filter(self, where: RunFilter) -> None:
        if where != self._filter:
            self._filter = where
            self.reload()

    @property
    def filter(self) -> RunFilter:
        return self._filter

    def reload(self) -> None:
        """Start again from the newest runs (a filter change, a new engine, "show newer")."""
        self._generation += 1
        self.beginResetModel()
        self._rows, self._index = [], {}
        self._more = False
        self.endResetModel()
        self._set_newer(False)
        if self._source is not None:
            self._fetching = True
            self._spawn(self._load_first(self._generation))

    async def _load_first(self, generation: int) -> None:
        try:
            page = await self._source.page(self._filter, limit=PAGE)
        finally:
            if generation == self._generation:
                self._fetching = False
        if generation != self._generation:
            return
        self._insert(0, page)
        self._more = len(page) == PAGE
        self.loaded.emit()
        if self._pending or self._pending_any:
            self.refresh(frozenset())

    # -- paging ------------------------------------------------------------------------------

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:
        return not parent.isValid() and self._more and not self._fetching and self._source is not None

    def fetchMore(self, parent: Index = QModelIndex()) -> None:
        if not self.canFetchMore(parent) or not self._rows:
            return
        self._fetching = True
        self._spawn(self._load_older(self._generation, self._rows[-1].cursor))

    async def _load_older(self, generation: int, before: tuple[float, str]) -> None:
        try:
            page = await self._source.page(self._filter, before=before, limit=PAGE)
        finally:
            if generation == self._generation:
                self._fetching = False
        if generation != self._generation:
            return
        page = [run for run in page if run.job_id not in self._index]
        self._insert(len(self._rows), page)
        self._more = len(page) > 0
        self.loaded.emit()

    # -- live changes ------------------------------------------------------------------------

    def set_following(self, following: bool) -> None:
        """The view is scrolled to the top (new runs go in) or not (they are only counted)."""
        if following == self.following:
            return
        self.following = following
        if following and self.has_newer:
            self.refresh(None)

    def refresh(self, changed: frozenset[str] | None) -> None:
        """Runs changed (None: too many to name). One refresh at a time; changes arriving
        meanwhile are merged into the next."""
        if self._source is None:
            return
        if changed is None:
            self._pending_any = True
        elif self._pending is not None:
            self._pending |= changed
        if self._refreshing or self._fetching:
            return
        self._refreshing = True
        changed_now = None if self._pending_any else frozenset(self._pending or ())
        self._pending, self._pending_any = set(), False
        self._spawn(self._refresh(self._generation, changed_now))

    async def _refresh(self, generation: int, changed: frozenset[str] | None) -> None:
        try:
            await self._refresh_now(generation, changed)
        finally:
            self._refreshing = False
        if generation == self._generation and (self._pending or self._pending_any):
            self.refresh(frozenset())

    async def _refresh_now(self, generation: int, changed: frozenset[str] | None) -> None:
        source = self._source
        top = self._rows[0].cursor if self._rows else None
        if self.following:
            newer = await source.page(self._filter, after=top, limit=PAGE + 1) if top else \
                await source.page(self._filter, limit=PAGE + 1)
            if generation != self._generation:
                return
            if len(newer) > PAGE and top is not None:
                self.reload()  # more arrived than a page: start from the newest
                return
            if not self._rows:
                self._more = len(newer) > PAGE
                newer = newer[:PAGE]
            fresh = [run for run in newer if run.job_id not in self._index]
            self._insert(0, fresh)
            self._trim()
            if changed is not None:  # just read: no need to read them again below
                changed = changed - {run.job_id for run in fresh}
        elif top is not None:
            newer = await source.page(self._filter, after=top, limit=1)
            if generation != self._generation:
                return
            self._set_newer(bool(newer))
        ids = list(self._index) if changed is None else [j for j in changed if j in self._index]
        ids += [run.job_id for run in self._rows if run.active and run.job_id not in ids]
        if ids:
            fresh = await source.get(ids[:1000])
            if generation != self._generation:
                return
            self._update(fresh)
        self.loaded.emit()

    def _update(self, fresh: list[Run]) -> None:
        statuses = self._filter.statuses
        gone = []
        for run in fresh:
            row = self._index.get(run.job_id)
            if row is None:
                continue
            if run != self._rows[row]:
                self._rows[row] = run
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
            if statuses and run.status not in statuses:
                gone.append(row)
        for row in sorted(gone, reverse=True):  # no longer matches the filter (a run ended)
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._rows[row]
            self.endRemoveRows()
        if gone:
            self._reindex()

    def _insert(self, at: int, runs: list[Run]) -> None:
        if not runs:
            return
        self.beginInsertRows(QModelIndex(), at, at + len(runs) - 1)
        self._rows[at:at] = runs
        self._reindex()
        self.endInsertRows()

    def _trim(self) -> None:
        if len(self._rows) <= MAX_FOLLOWING_ROWS:
            return
        self.beginRemoveRows(QModelIndex(), MAX_FOLLOWING_ROWS, len(self._rows) - 1)
        del self._rows[MAX_FOLLOWING_ROWS:]
        self._reindex()
        self.endRemoveRows()
        self._more = True

    def _reindex(self) -> None:
        self._index = {run.job_id: row for row, run in enumerate(self._rows)}

    def _set_newer(self, waiting: bool) -> None:
        if waiting != self.has_newer:
            self.has_newer = waiting
            self.newer_waiting.emit(waiting)

    def tick(self) -> None:
        """Once a second: running runs' durations move on."""
        for row, run in enumerate(self._rows):
            if run.active:
                index = self.index(row, DURATION)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole])

    # -- reading -----------------------------------------------------------------------------

    def run_at(self, row: int) -> Run | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, job_id: str) -> int | None:
        return self._index.get(job_id)

    @property
    def runs(self) -> list[Run]:
        return list(self._rows)

    def row_count(self) -> int:
        return len(self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        run = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == WORKFLOW:
                return run.workflow or "(unsaved workflow)"
            if column == HOW:
                return started_by_label(run.started_by)
            if column == STARTED:
                return when(run.started_at)
            if column == DURATION:
                end = run.ended_at if run.ended_at is not None else time.time()
                return duration(max(0.0, end - run.started_at))
            if column == STATUS:
                return STATUS_WORDS.get(run.status, run.status.capitalize())
            if column == PROGRESS:
                return progress_text(run)
        elif role == Qt.ItemDataRole.ForegroundRole and column == STATUS:
            return QColor(STATUS_COLOURS.get(run.status, "#444444"))
        elif role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(run.error or run.wire_id)
        elif role == RUN_ROLE:
            return run
        elif role == PROGRESS_ROLE:
            return (run.nodes_done, run.nodes_total, run.status)
        return None
