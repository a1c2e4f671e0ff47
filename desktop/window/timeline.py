"""A run's timeline: one lane per node, one bar per node run from its start to its end, coloured
by status. A node that ran more than once (a loop, an iteration) has several bars in its lane;
failed attempts that were retried are ticks inside the bar, with "×N" after it.

Painted with QPainter from a list of bars: a timeline of a few hundred node runs is one paint,
no widget per bar.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.window.runs_model import duration
from desktop.window.text import tooltip

BAR_COLOURS = {"SUCCESS": "#38a169", "ERROR": "#e53e3e", "RUNNING": "#3182ce",
               "STOPPED": "#a0aec0"}
ROW_H = 24
AXIS_H = 22
LABEL_W = 150
RETRY_PREFIX = "Attempt "   # the runtime's log line for a failed attempt that is retried


@dataclass(frozen=True)
class Bar:
    run_seq: int
    node_id: str
    start: float
    end: float | None          # None while it runs
    status: str
    error: str | None = None
    retries: tuple[float, ...] = ()   # when each retried attempt failed


def bars_from(node_runs: Iterable[object], log_lines: Sequence[object] | None = None) -> list[Bar]:
    """Bars from engine.runs.node_runs() rows, retries from the run's log lines when kept."""
    rows = list(node_runs)
    retry_times: dict[str, list[float]] = {}
    for line in log_lines or ():
        node_id = getattr(line, "node_id", None)
        if node_id and str(getattr(line, "message", "")).startswith(RETRY_PREFIX):
            retry_times.setdefault(node_id, []).append(float(getattr(line, "timestamp")))
    bars = []
    for row in rows:
        start, end = float(row.start_time), row.end_time  # type: ignore[attr-defined]
        node_id = row.node_id  # type: ignore[attr-defined]
        marks = tuple(t for t in retry_times.get(node_id, ())
                      if start <= t <= (end if end is not None else float("inf")))
        bars.append(Bar(row.run_seq, node_id, start, end, row.status, row.error, marks))  # type: ignore[attr-defined]
    return bars


def tick_label(offset: float, span: float) -> str:
    """"+1.5 ms", "+2 s", "+1:05": precise enough that ticks a quarter of the span apart differ."""
    if offset <= 0:
        return "0"
    step = span / 4
    if span < 2:
        ms = offset * 1000
        return f"+{ms:.{2 if step < 0.001 else 1 if step < 0.01 else 0}f} ms"
    if span < 120:
        return f"+{offset:.{1 if step < 1 else 0}f} s"
    return f"+{duration(offset)}"


class Timeline(QWidget):
    bar_clicked = Signal(int)  # run_seq

    def __init__(self) -> None:
        super().__init__()
        self.bars: list[Bar] = []
        self.lanes: list[tuple[str, str]] = []  # (node id, label)
        self.selected: int | None = None
        self._t0 = 0.0
        self._t1 = 1.0
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.setMinimumHeight(AXIS_H + ROW_H)

    def set_bars(self, bars: list[Bar], names: dict[str, str], *, now: float | None = None) -> None:
        self.bars = sorted(bars, key=lambda b: b.run_seq)
        order: dict[str, None] = {}
        for bar in self.bars:
            order.setdefault(bar.node_id, None)
        self.lanes = [(node_id, names.get(node_id) or node_id) for node_id in order]
        now = now if now is not None else time.time()
        self._t0 = min((b.start for b in self.bars), default=now)
        self._t1 = max((b.end if b.end is not None else now for b in self.bars), default=now)
        if self._t1 - self._t0 < 1e-3:
            self._t1 = self._t0 + 1e-3
        if self.selected is not None and all(b.run_seq != self.selected for b in self.bars):
            self.selected = None
        self.setMinimumHeight(AXIS_H + ROW_H * max(1, len(self.lanes)) + 4)
        self.updateGeometry()
        self.update()

    def select(self, run_seq: int | None) -> None:
        self.selected = run_seq
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(640, AXIS_H + ROW_H * max(1, len(self.lanes)) + 4)

    # -- geometry ----------------------------------------------------------------------------

    def _x(self, t: float) -> float:
        width = max(10.0, self.width() - LABEL_W - 60.0)
        return LABEL_W + (t - self._t0) / (self._t1 - self._t0) * width

    def bar_rect(self, bar: Bar) -> QRectF:
        lane = next(i for i, (node_id, _) in enumerate(self.lanes) if node_id == bar.node_id)
        end = bar.end if bar.end is not None else self._t1
        left, right = self._x(bar.start), self._x(end)
        return QRectF(left, AXIS_H + lane * ROW_H + 4, max(3.0, right - left), ROW_H - 8)

    def bar_at(self, x: float, y: float) -> Bar | None:
        for bar in reversed(self.bars):
            if self.bar_rect(bar).adjusted(-2, -2, 2, 2).contains(QPointF(x, y)):
                return bar
        return None

    # -- painting ----------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.base())
        text = palette.text().color()
        grid = QColor(text)
        grid.setAlpha(40)
        if not self.bars:
            painter.setPen(text)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No node has run yet.")
            return
        # time axis: five ticks from the first start to the last end
        painter.setPen(text)
        span = self._t1 - self._t0
        for i in range(5):
            t = self._t0 + span * i / 4
            x = self._x(t)
            painter.setPen(grid)
            painter.drawLine(QPointF(x, AXIS_H - 4), QPointF(x, self.height()))
            painter.setPen(text)
            painter.drawText(QRectF(x - 40, 2, 80, AXIS_H - 6), Qt.AlignmentFlag.AlignCenter,
                             tick_label(t - self._t0, span))
        for lane, (_node_id, label) in enumerate(self.lanes):
            top = AXIS_H + lane * ROW_H
            if lane % 2:
                shade = QColor(text)
                shade.setAlpha(12)
                painter.fillRect(QRectF(0, top, self.width(), ROW_H), shade)
            painter.setPen(text)
            painter.drawText(QRectF(6, top, LABEL_W - 12, ROW_H),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             painter.fontMetrics().elidedText(label, Qt.TextElideMode.ElideRight, LABEL_W - 12))
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, small.pointSizeF() * 0.85))
        for bar in self.bars:
            rect = self.bar_rect(bar)
            colour = QColor(BAR_COLOURS.get(bar.status, "#718096"))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            painter.drawRoundedRect(rect, 3, 3)
            if bar.retries:
                painter.setPen(QPen(QColor("#ffffff"), 2))
                for t in bar.retries:
                    x = self._x(t)
                    painter.drawLine(QPointF(x, rect.top() + 2), QPointF(x, rect.bottom() - 2))
                painter.setPen(text)
                painter.setFont(small)
                painter.drawText(QRectF(rect.right() + 4, rect.top() - 2, 50, rect.height() + 4),
                                 Qt.AlignmentFlag.AlignVCenter, f"×{len(bar.retries) + 1}")
                painter.setFont(self.font())
            if bar.run_seq == self.selected:
                painter.setPen(QPen(text, 2))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRoundedRect(rect.adjusted(-2, -2, 2, 2), 4, 4)
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        bar = self.bar_at(event.position().x(), event.position().y())
        if bar is not None:
            self.select(bar.run_seq)
            self.bar_clicked.emit(bar.run_seq)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        bar = self.bar_at(event.position().x(), event.position().y())
        if bar is None:
            self.setToolTip("")
            return
        took = (bar.end if bar.end is not None else time.time()) - bar.start
        tip = f"{dict(self.lanes).get(bar.node_id, bar.node_id)} · run {bar.run_seq} · {bar.status} · {duration(took)}"
        if bar.retries:
            tip += f" · {len(bar.retries)} failed attempt(s) retried"
        if bar.error:
            tip += f"\n{bar.error}"
        self.setToolTip(tooltip(tip))
