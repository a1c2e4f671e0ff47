"""One run in detail: what it is, its timeline, its log lines, and the data that crossed its
connections. A click on a node's bar shows that node run (its error, the payload it received and
the payloads it sent on); a click on a connection shows every payload that crossed it. A failed
run opens on its failing node with the error.

Payloads are shown as the engine recorded them: masked by the runtime before they were stored
(secret variables never reach the history), pretty-printed; a large one is the stored preview.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Coroutine

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPlainTextEdit,
                               QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget)

from desktop.window.runs_model import STATUS_COLOURS, STATUS_WORDS, duration, started_by_label, when
from desktop.window.text import plain_label, pretty
from desktop.window.timeline import Bar, Timeline, bars_from
from engine.runs import Run, RunGraph

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any]], Any]
NO_LOG = ("No log lines are kept for this run: the engine keeps the log lines of its recent runs "
          "in memory since it started. The timeline and the errors above come from the stored "
          "history.")


class RunDetail(QWidget):
    def __init__(self, spawn: Spawn) -> None:
        super().__init__()
        self._spawn = spawn
        self._source: Any = None
        self.run: Run | None = None
        self.graph = RunGraph()
        self.bars: list[Bar] = []
        self.connections: list[Any] = []
        self._generation = 0
        self._loading = False
        self._again = False
        self.title = plain_label("Select a run to see its timeline, log and data.", wrap=True)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.facts = plain_label(wrap=True, selectable=True)
        self.error = plain_label(wrap=True, selectable=True)
        self.error.setStyleSheet(f"color: {STATUS_COLOURS['FAILED']};")
        self.error.hide()
        self.timeline = Timeline()
        self.timeline.bar_clicked.connect(self.show_node_run)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.timeline)
        self.connection_list = QListWidget()
        self.connection_list.itemClicked.connect(self._connection_clicked)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.data = QPlainTextEdit()
        self.data.setReadOnly(True)
        self.data.setFont(mono)
        self.data.setPlaceholderText("Click a node's bar or a connection to see the data that passed.")
        self.data_title = plain_label("Data")
        right = QWidget()
        side = QVBoxLayout(right)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(QLabel("Connections"))
        side.addWidget(self.connection_list, 1)
        side.addWidget(self.data_title)
        side.addWidget(self.data, 3)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setFont(mono)
        self.log.setMaximumBlockCount(5000)
        self.tabs = QTabWidget()
        self.tabs.addTab(split, "Timeline")
        self.tabs.addTab(self.log, "Log")
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.facts)
        layout.addWidget(self.error)
        layout.addWidget(self.tabs, 1)

    def set_source(self, source: Any) -> None:
        self._source = source
        if source is None:
            self.clear()

    def clear(self) -> None:
        self._generation += 1
        self.run = None
        self.title.setText("Select a run to see its timeline, log and data.")
        self.facts.setText("")
        self.error.hide()
        self.timeline.set_bars([], {})
        self.connection_list.clear()
        self.data.clear()
        self.log.clear()

    # -- loading -----------------------------------------------------------------------------

    def show_run(self, job_id: str) -> None:
        """Open this run (a different run: its failing node, if any, is selected)."""
        if self.run is not None and self.run.job_id == job_id:
            return self.refresh()
        self._generation += 1
        self.run = None
        self.timeline.select(None)
        self.data.clear()
        self.data_title.setText("Data")
        self._loading = True
        self._spawn(self._load(self._generation, job_id, first=True))

    def refresh(self) -> None:
        """The shown run changed (it is running): load it again, keeping the selection."""
        if self.run is None or self._source is None:
            return
        if self._loading:
            self._again = True
            return
        self._loading = True
        self._spawn(self._load(self._generation, self.run.job_id, first=False))

    async def _load(self, generation: int, job_id: str, *, first: bool) -> None:
        try:
            source = self._source
            run = await source.run(job_id)
            node_runs = await source.node_runs(job_id)
            connections = await source.connections(job_id)
            graph = await source.graph(job_id) if first or not self.graph.nodes else self.graph
            lines = source.log_lines(job_id)
        finally:
            if generation == self._generation:
                self._loading = False
        if generation != self._generation:
            return
        if run is None:
            self.title.setText("This run is no longer in the history (retention removed it).")
            return
        self.run, self.graph, self.connections = run, graph, connections
        self.bars = bars_from(node_runs, lines)
        self._show_facts(run)
        self.timeline.set_bars(self.bars, graph.nodes)
        self._show_connections(connections)
        self._show_log(lines)
        if first and run.status == "FAILED":
            failing = [b for b in self.bars if b.status == "ERROR"]
            if failing:
                self.timeline.select(failing[-1].run_seq)
                self.show_node_run(failing[-1].run_seq)
        if self._again:
            self._again = False
            self.refresh()

    def _show_facts(self, run: Run) -> None:
        status = STATUS_WORDS.get(run.status, run.status)
        self.title.setText(f"{run.workflow or '(unsaved workflow)'}: {status}")
        self.title.setStyleSheet(f"color: {STATUS_COLOURS.get(run.status, '#444444')};")
        end = run.ended_at if run.ended_at is not None else time.time()
        facts = [f"Started {when(run.started_at)} by {started_by_label(run.started_by)}",
                 f"{'ran' if run.ended_at is not None else 'running for'} {duration(end - run.started_at)}",
                 f"{run.node_runs} node run{'s' if run.node_runs != 1 else ''}",
                 f"job {run.wire_id}"]
        if run.mode != "EXECUTE":
            facts.insert(1, run.mode.lower())
        self.facts.setText(" · ".join(facts))
        self.error.setVisible(bool(run.error))
        self.error.setText(run.error or "")

    def _show_connections(self, connections: list[Any]) -> None:
        selected = self.connection_list.currentItem()
        keep = selected.data(Qt.ItemDataRole.UserRole) if selected is not None else None
        self.connection_list.clear()
        for row in connections:
            item = QListWidgetItem(self._connection_label(row.connection_id, row.count))
            item.setData(Qt.ItemDataRole.UserRole, row.connection_id)
            self.connection_list.addItem(item)
            if row.connection_id == keep:
                self.connection_list.setCurrentItem(item)

    def _connection_label(self, connection_id: str, count: int) -> str:
        ends = self.graph.edges.get(connection_id)
        names = self.graph.nodes
        where = f"{names.get(ends[0], ends[0])} → {names.get(ends[1], ends[1])}" if ends else connection_id
        return f"{where} · {count}×"

    def _show_log(self, lines: list[Any] | None) -> None:
        if lines is None:
            self.log.setPlainText(NO_LOG)
            return
        names = self.graph.nodes
        text = "\n".join(f"{time.strftime('%H:%M:%S', time.localtime(line.timestamp))}"
                         f".{int(line.timestamp * 1000) % 1000:03d} {line.level:<5} "
                         f"[{names.get(line.node_id, line.source) if line.node_id else line.source}] "
                         f"{line.message}" for line in lines)
        if text != self.log.toPlainText():
            self.log.setPlainText(text)
            self.log.verticalScrollBar().setValue(self.log.verticalScrollBar().maximum())

    # -- clicks ------------------------------------------------------------------------------

    def show_node_run(self, run_seq: int) -> None:
        bar = next((b for b in self.bars if b.run_seq == run_seq), None)
        if bar is None or self.run is None:
            return
        self._spawn(self._node_data(self._generation, self.run.job_id, bar))

    async def _node_data(self, generation: int, job_id: str, bar: Bar) -> None:
        name = self.graph.nodes.get(bar.node_id, bar.node_id)
        end = bar.end if bar.end is not None else time.time()
        parts = [f"{name} (node {bar.node_id}), run {bar.run_seq}: {bar.status}, {duration(end - bar.start)}"]
        if bar.retries:
            parts.append(f"{len(bar.retries)} failed attempt(s) were retried before this result.")
        if bar.error:
            parts.append(f"Error: {bar.error}")
        incoming = [e for e, ends in self.graph.edges.items() if ends[1] == bar.node_id]
        outgoing = [e for e, ends in self.graph.edges.items() if ends[0] == bar.node_id]
        known = {c.connection_id for c in self.connections}
        for label, edges, pick in (("Received", incoming, "before"), ("Sent on", outgoing, "after")):
            for edge_id in edges:
                if edge_id not in known:
                    continue
                history = await self._source.connection_history(job_id, edge_id)
                if generation != self._generation:
                    return
                item = _closest(history, bar.start if pick == "before" else end, pick)
                if item is not None:
                    parts.append(f"{label} {self._connection_label(edge_id, len(history))}:\n"
                                 f"{_payload_text(item)}")
        if not self.graph.edges:
            parts.append("This run's workflow is not known (not running, and not saved as a "
                         "preset), so its connections are listed by id: click one to see its data.")
        self.data_title.setText(f"Data: {name}")
        self.data.setPlainText("\n\n".join(parts))

    def _connection_clicked(self, item: QListWidgetItem) -> None:
        if self.run is not None:
            self._spawn(self._connection_data(self._generation, self.run.job_id,
                                              str(item.data(Qt.ItemDataRole.UserRole))))

    async def _connection_data(self, generation: int, job_id: str, connection_id: str) -> None:
        history = await self._source.connection_history(job_id, connection_id)
        if generation != self._generation:
            return
        label = self._connection_label(connection_id, len(history))
        blocks = [f"#{i + 1} at {time.strftime('%H:%M:%S', time.localtime(item['timestamp']))}:\n"
                  f"{_payload_text(item)}" for i, item in enumerate(history)]
        self.data_title.setText(f"Data: {label}")
        self.data.setPlainText("\n\n".join(blocks) or "Nothing crossed this connection.")


def _closest(history: list[dict[str, Any]], moment: float, side: str) -> dict[str, Any] | None:
    """The crossing just before (what a node received) or just after (what it sent) `moment`."""
    if side == "before":
        earlier = [h for h in history if h["timestamp"] <= moment + 1e-6]
        return earlier[-1] if earlier else None
    later = [h for h in history if h["timestamp"] >= moment - 1e-6]
    return later[0] if later else None


def _payload_text(item: dict[str, Any]) -> str:
    payload = item.get("payload")
    if item.get("truncated") and isinstance(payload, dict):
        return (f"(a preview: the payload was {item.get('size')} bytes)\n"
                f"{payload.get('preview', '')}")
    return pretty(payload)

