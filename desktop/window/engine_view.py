"""The Engine tab: CPU and memory (Flowork's own and the machine's) and running jobs over the
last hour, drawn with pyqtgraph; the engine's address, clients, version, folders; the tail of
the log.

pyqtgraph (and numpy under it) is imported the first time the tab is shown, not when the app
starts or the window opens: the tray's start-up and the window's first paint do not pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import shiboken6
from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import (QFormLayout, QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout,
                               QWidget)

from desktop.window.samples import StatusHistory
from desktop.window.text import plain_label

LOG_LINES = 200
FLOWORK, MACHINE, JOBS = "#3182ce", "#a0aec0", "#38a169"
CURVES = (("cpu", "engine_cpu", FLOWORK), ("cpu", "machine_cpu", MACHINE),   # (plot, field, colour)
          ("memory", "engine_memory", FLOWORK), ("memory", "machine_memory", MACHINE),
          ("jobs", "running_jobs", JOBS))
KEY = (f"<span style='color:{FLOWORK}'>Flowork</span> · "
       f"<span style='color:#718096'>this computer</span>")
PLOTS = (("cpu", f"CPU % ({KEY})"), ("memory", f"Memory % ({KEY})"),
         ("jobs", f"<span style='color:{JOBS}'>Running jobs</span>"))


class EngineView(QWidget):
    def __init__(self, history: StatusHistory, log_lines: Callable[[int], list[str]],
                 open_logs: Callable[[], None]) -> None:
        super().__init__()
        self.history = history
        self._log_lines = log_lines
        self.charts: Any = None   # pyqtgraph's GraphicsLayoutWidget, once shown
        self.curves: dict[str, Any] = {}
        self.url = plain_label(selectable=True)
        self.clients = plain_label()
        self.version = plain_label()
        self.uptime = plain_label()
        self.usage = plain_label()
        self.data_dir = plain_label(selectable=True)
        self.log_dir = plain_label(selectable=True)
        form = QFormLayout()
        form.addRow("Address:", self.url)
        form.addRow("Web GUIs connected:", self.clients)
        form.addRow("Version:", self.version)
        form.addRow("Running for:", self.uptime)
        form.addRow("Now:", self.usage)
        form.addRow("Data folder:", self.data_dir)
        form.addRow("Log folder:", self.log_dir)
        logs_button = QPushButton("Open logs folder")
        logs_button.setAutoDefault(False)
        logs_button.clicked.connect(open_logs)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setMaximumBlockCount(LOG_LINES)
        info = QVBoxLayout()
        info.addLayout(form)
        info.addWidget(logs_button)
        info.addStretch(1)
        tail = QVBoxLayout()
        tail.addWidget(plain_label("The end of the log:"))
        tail.addWidget(self.log, 1)
        below = QHBoxLayout()
        below.addLayout(info, 2)
        below.addLayout(tail, 3)
        self.chart_box = QVBoxLayout()
        column = QVBoxLayout(self)
        column.addLayout(self.chart_box, 3)
        column.addLayout(below, 2)
        history.sampled.connect(self.update_view)

    def set_engine(self, url: str, version: str, data_dir: Path | str, log_dir: Path | str) -> None:
        self.url.setText(url)
        self.version.setText(version)
        self.data_dir.setText(str(data_dir))
        self.log_dir.setText(str(log_dir))
        self.update_view()

    def showEvent(self, event: Any) -> None:
        if self.charts is None:
            self._build_charts()
        self.update_view()
        super().showEvent(event)

    def _build_charts(self) -> None:
        import pyqtgraph as pg  # the first time the tab is shown (see the module's docstring)

        pg.setConfigOptions(antialias=True, background="w", foreground="#333333")
        self.charts = pg.GraphicsLayoutWidget()
        plots: dict[str, Any] = {}
        for col, (key, title) in enumerate(PLOTS):
            plot = self.charts.addPlot(row=0, col=col, title=title,
                                       axisItems={"bottom": pg.DateAxisItem()})
            plot.setMouseEnabled(x=False, y=False)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.showGrid(x=True, y=True, alpha=0.2)
            if key == "jobs":
                plot.enableAutoRange(axis="y")
            else:
                plot.setYRange(0, 100)
            plots[key] = plot
        for plot_key, field, colour in CURVES:
            filled = field == "running_jobs"
            self.curves[field] = plots[plot_key].plot(
                pen=pg.mkPen(colour, width=2), fillLevel=0 if filled else None,
                brush=pg.mkBrush(colour + "40") if filled else None)
        self.chart_box.addWidget(self.charts)

    def _show_newest(self) -> None:
        if shiboken6.isValid(self.log):
            self.log.moveCursor(QTextCursor.MoveOperation.End)
            self.log.ensureCursorVisible()

    def update_view(self) -> None:
        status = self.history.latest
        if status:
            self.clients.setText(str(status.get("connectedClients", 0)))
            self.uptime.setText(_uptime(float(status.get("uptimeSeconds") or 0)))
            rss = float(status.get("engineMemoryBytes") or 0)
            self.usage.setText(f"Flowork: CPU {float(status.get('engineCpuPercent') or 0):.0f} %, "
                               f"memory {rss / 1e6:.0f} MB · this computer: CPU "
                               f"{float(status.get('cpuPercent') or 0):.0f} %, memory "
                               f"{float(status.get('memoryPercent') or 0):.0f} % used · "
                               f"{int(status.get('runningJobs') or 0)} running job(s)")
        if not self.isVisible():
            return
        lines = self._log_lines(LOG_LINES)
        text = "\n".join(lines)
        if text != self.log.toPlainText():
            self.log.setPlainText(text)
            # Once laid out (at the next turn): wrapped lines are laid out lazily, so the scroll
            # range read now is short of the last line.
            QTimer.singleShot(0, self._show_newest)
        if self.charts is not None:
            samples = list(self.history.samples)
            xs = [s.at for s in samples]
            for field, curve in self.curves.items():
                curve.setData(xs, [getattr(s, field) for s in samples])


def _uptime(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else "less than a minute"

