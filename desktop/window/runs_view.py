"""The Runs tab: a filter (status and text), the table of runs (paged from the engine's store),
Stop / Pause / Resume / Run again on the selected run, and the selected run's detail below."""

from __future__ import annotations

import logging
from typing import Any, Callable, Coroutine

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLineEdit,
                               QPushButton, QSplitter, QStyle, QStyledItemDelegate,
                               QStyleOptionViewItem, QTableView, QVBoxLayout, QWidget)

from desktop.window.detail import RunDetail
from desktop.window.runs_model import (PROGRESS, PROGRESS_ROLE, STATUS_COLOURS, RunsModel)
from desktop.window.text import plain_label
from engine.protocol.errors import EngineError
from engine.runs import Run, RunFilter

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any]], Any]
STATUS_CHOICES = (("All runs", ()), ("Running or paused", ("RUNNING", "PAUSED")),
                  ("Failed", ("FAILED",)), ("Succeeded", ("SUCCEEDED",)), ("Stopped", ("STOPPED",)))
SEARCH_DELAY_MS = 300


class ProgressDelegate(QStyledItemDelegate):
    """Nodes done out of total as a bar in the run's status colour, the count written on it."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        value = index.data(PROGRESS_ROLE)
        if not value:
            return super().paint(painter, option, index)
        done, total, status = value
        rect = QRectF(option.rect.adjusted(4, 4, -4, -4))  # type: ignore[attr-defined]
        if option.state & QStyle.StateFlag.State_Selected:  # type: ignore[attr-defined]
            painter.fillRect(option.rect, option.palette.highlight())  # type: ignore[attr-defined]
        colour = QColor(STATUS_COLOURS.get(status, "#3182ce"))
        track = QColor(colour)
        track.setAlpha(45)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(track)
        painter.drawRoundedRect(rect, 3, 3)
        fraction = min(1.0, done / total) if total else (1.0 if done else 0.0)
        if fraction > 0:
            painter.setBrush(colour)
            painter.drawRoundedRect(QRectF(rect.left(), rect.top(), rect.width() * fraction, rect.height()), 3, 3)
        painter.setPen(QColor("#ffffff") if fraction >= 0.5 else option.palette.text().color())  # type: ignore[attr-defined]
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(index.data(Qt.ItemDataRole.DisplayRole) or ""))
        painter.restore()


class RunsView(QWidget):
    def __init__(self, spawn: Spawn) -> None:
        super().__init__()
        self._spawn = spawn
        self._source: Any = None
        self.model = RunsModel(spawn)
        self.status_filter = QComboBox()
        for label, _statuses in STATUS_CHOICES:
            self.status_filter.addItem(label)
        self.status_filter.currentIndexChanged.connect(self._filter_changed)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter by workflow, job id or error…")
        self.search.setClearButtonEnabled(True)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._filter_changed)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.newer = QPushButton("Newer runs: show them")
        self.newer.hide()
        self.newer.clicked.connect(self.show_newest)
        self.count = plain_label()
        bar = QHBoxLayout()
        bar.addWidget(self.status_filter)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.newer)
        bar.addWidget(self.count)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; arrows walk the runs
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column, width in ((1, 110), (2, 140), (3, 80), (4, 90), (5, 150)):
            header.resizeSection(column, width)
        self.table.setItemDelegateForColumn(PROGRESS, ProgressDelegate(self.table))
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.table.verticalScrollBar().valueChanged.connect(self._scrolled)
        self.model.newer_waiting.connect(self.newer.setVisible)
        self.model.loaded.connect(self._update_buttons)
        self.model.rowsInserted.connect(lambda *_: self._update_count())
        self.model.rowsRemoved.connect(lambda *_: self._update_count())
        self.model.modelReset.connect(self._update_count)
        self.stop_button = self._button("Stop", self.stop_selected)
        self.pause_button = self._button("Pause", self.pause_selected)
        self.resume_button = self._button("Resume", self.resume_selected)
        self.again_button = self._button("Run again", self.run_again_selected)
        self.note = plain_label(wrap=True)
        actions = QHBoxLayout()
        for button in (self.stop_button, self.pause_button, self.resume_button, self.again_button):
            actions.addWidget(button)
        actions.addWidget(self.note, 1)
        top = QWidget()
        upper = QVBoxLayout(top)
        upper.setContentsMargins(0, 0, 0, 0)
        upper.addLayout(bar)
        upper.addWidget(self.table, 1)
        upper.addLayout(actions)
        self.detail = RunDetail(spawn)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 5)
        split.setSizes([260, 330])
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._tick)
        self._ticker.start()
        self._update_buttons()

    def _button(self, text: str, slot: Callable[[], None]) -> QPushButton:
        button = QPushButton(text)
        button.setAutoDefault(False)
        button.clicked.connect(slot)
        return button

    # -- the engine --------------------------------------------------------------------------

    def set_source(self, source: Any) -> None:
        self._source = source
        self.model.set_source(source)
        self.detail.set_source(source)
        self._update_buttons()

    def on_runs_changed(self, changed: frozenset[str] | None) -> None:
        self.model.refresh(changed)
        shown = self.detail.run
        if shown is not None and (changed is None or shown.job_id in changed):
            self.detail.refresh()

    # -- filter and scrolling ----------------------------------------------------------------

    def _filter_changed(self) -> None:
        statuses = STATUS_CHOICES[self.status_filter.currentIndex()][1]
        self.model.set_filter(RunFilter(statuses=statuses, text=self.search.text().strip()))

    def _scrolled(self, value: int) -> None:
        self.model.set_following(value == 0)

    def show_newest(self) -> None:
        self.table.scrollToTop()
        self.model.reload()

    def _update_count(self) -> None:
        rows = self.model.rowCount()
        more = "+" if self.model.canFetchMore() else ""
        self.count.setText(f"{rows}{more} run{'s' if rows != 1 else ''} shown")

    def _tick(self) -> None:
        if self.isVisible():
            self.model.tick()

    # -- selection and actions ---------------------------------------------------------------

    def selected_run(self) -> Run | None:
        index = self.table.selectionModel().currentIndex()
        return self.model.run_at(index.row()) if index.isValid() else None

    def select_run(self, job_id: str) -> bool:
        row = self.model.row_of(job_id)
        if row is None:
            self.detail.show_run(job_id)
            return False
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0))
        return True

    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        run = self.model.run_at(current.row()) if current.isValid() else None
        if run is not None:
            self.detail.show_run(run.job_id)
        self._update_buttons()

    def _update_buttons(self) -> None:
        run = self.selected_run()
        engine = self._source is not None
        self.stop_button.setEnabled(engine and run is not None and run.active)
        self.pause_button.setEnabled(engine and run is not None and run.status == "RUNNING")
        self.resume_button.setEnabled(engine and run is not None and run.status == "PAUSED")
        self.again_button.setEnabled(engine and run is not None and bool(run.workflow))
        self._update_count()

    def _control(self, verb: str) -> None:
        run = self.selected_run()
        if run is None or self._source is None:
            return
        done = getattr(self._source, verb)(run.job_id)
        word = {"stop": "stopped", "pause": "paused", "resume": "resumed"}[verb]
        self.note.setText("" if done else f"The run could not be {word}: it is not running any more.")
        self.model.refresh(frozenset({run.job_id}))

    def stop_selected(self) -> None:
        self._control("stop")

    def pause_selected(self) -> None:
        self._control("pause")

    def resume_selected(self) -> None:
        self._control("resume")

    def run_again_selected(self) -> None:
        run = self.selected_run()
        if run is not None and self._source is not None:
            self._spawn(self._run_again(run))

    async def _run_again(self, run: Run) -> None:
        try:
            new_id = await self._source.run_again(run.job_id)
        except EngineError as exc:
            self.note.setText(exc.message)
            return
        self.note.setText(f"Started {run.workflow} again.")
        self.table.scrollToTop()
        self.model.set_following(True)
        self.model.refresh(frozenset({new_id}))
