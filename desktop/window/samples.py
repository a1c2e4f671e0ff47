"""The engine's load over the last hour, sampled from its status (Engine.status()) for the
window's charts. Kept from the engine's start, whether or not the window is open, in a ring of
fixed size: plain Python numbers, so nothing heavy is imported before the charts are shown."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import psutil
from PySide6.QtCore import QObject, QTimer, Signal

SAMPLE_S = 2.0
WINDOW_S = 3600.0


@dataclass(frozen=True)
class Sample:
    at: float                    # epoch seconds
    engine_cpu: float            # percent of one core, Flowork's own process
    engine_memory_mb: float      # resident memory of Flowork's process
    engine_memory: float         # the same, in percent of the machine's memory
    machine_cpu: float           # percent, the whole machine
    machine_memory: float        # percent used, the whole machine
    running_jobs: int


def sample_of(frame: dict[str, Any], total_memory: int, at: float | None = None) -> Sample:
    """One sample from an `engine_status_update` frame (the engine's own figures)."""
    rss = float(frame.get("engineMemoryBytes") or 0)
    return Sample(at=at if at is not None else time.time(),
                  engine_cpu=float(frame.get("engineCpuPercent") or 0.0),
                  engine_memory_mb=rss / 1e6, engine_memory=100.0 * rss / max(1, total_memory),
                  machine_cpu=float(frame.get("cpuPercent") or 0.0),
                  machine_memory=float(frame.get("memoryPercent") or 0.0),
                  running_jobs=int(frame.get("runningJobs") or 0))


class StatusHistory(QObject):
    sampled = Signal()

    def __init__(self, *, interval_s: float = SAMPLE_S, window_s: float = WINDOW_S) -> None:
        super().__init__()
        self.samples: deque[Sample] = deque(maxlen=int(window_s / interval_s) + 1)
        self.latest: dict[str, Any] = {}
        self._status: Callable[[], Any] | None = None
        self._total_memory = psutil.virtual_memory().total
        self._timer = QTimer(self)
        self._timer.setInterval(int(interval_s * 1000))
        self._timer.timeout.connect(self.sample)

    def attach(self, status: Callable[[], Any]) -> None:
        """`status()` returns an EngineStatus (Engine.status: cheap psutil reads)."""
        self._status = status
        self.sample()
        self._timer.start()

    def detach(self) -> None:
        self._timer.stop()
        self._status = None

    def sample(self) -> None:
        if self._status is None:
            return
        frame = self._status().frame()
        self.latest = frame
        self.samples.append(sample_of(frame, self._total_memory))
        self.sampled.emit()
