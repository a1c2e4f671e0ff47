"""The engine's resource report for `engine_status_update` and the tray: CPU, memory, load."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import psutil


@dataclass(frozen=True)
class EngineStatus:
    engine_id: str
    is_busy: bool
    cpu_percent: float
    memory_percent: float
    running_jobs: int
    clients: int
    engine_memory_bytes: int
    engine_cpu_percent: float
    version: str
    url: str
    uptime_s: float

    def frame(self) -> dict[str, Any]:
        return {"type": "engine_status_update", "engineId": self.engine_id,
                "isBusy": self.is_busy, "cpuPercent": self.cpu_percent,
                "memoryPercent": self.memory_percent, "runningJobs": self.running_jobs,
                "connectedClients": self.clients, "engineMemoryBytes": self.engine_memory_bytes,
                "engineCpuPercent": self.engine_cpu_percent, "version": self.version,
                "uptimeSeconds": round(self.uptime_s, 1)}


class ResourceSampler:
    """psutil sampling that never blocks: cpu_percent(interval=None) compares with the last call.

    CPU figures are only recomputed once at least `min_window_s` has passed since the last
    measurement: a window of a few milliseconds (the tray and new clients ask for status at
    any moment) gives meaningless readings such as 100 % right after start-up.
    """

    def __init__(self, min_window_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._process = psutil.Process(os.getpid())
        self._clock = clock
        self._started = clock()
        self._min_window_s = min_window_s
        psutil.cpu_percent(interval=None)
        self._process.cpu_percent(interval=None)
        self._cpu_measured_at = self._started
        self._cpu = (0.0, 0.0)

    def _cpu_percents(self) -> tuple[float, float]:
        now = self._clock()
        if now - self._cpu_measured_at >= self._min_window_s:
            self._cpu = (psutil.cpu_percent(interval=None), self._process.cpu_percent(interval=None))
            self._cpu_measured_at = now
        return self._cpu

    def sample(self) -> tuple[float, float, int, float, float]:
        """(system cpu %, system memory %, engine rss bytes, engine cpu %, uptime s)."""
        system_cpu, engine_cpu = self._cpu_percents()
        return (system_cpu, psutil.virtual_memory().percent, self._process.memory_info().rss,
                engine_cpu, self._clock() - self._started)
