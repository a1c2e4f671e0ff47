"""The engine's resource report for `engine_status_update` and the tray: CPU, memory, load."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

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
    """psutil sampling that never blocks: cpu_percent(interval=None) compares with the last call."""

    def __init__(self) -> None:
        self._process = psutil.Process(os.getpid())
        self._started = time.monotonic()
        psutil.cpu_percent(interval=None)
        self._process.cpu_percent(interval=None)

    def sample(self) -> tuple[float, float, int, float, float]:
        """(system cpu %, system memory %, engine rss bytes, engine cpu %, uptime s)."""
        return (psutil.cpu_percent(interval=None), psutil.virtual_memory().percent,
                self._process.memory_info().rss, self._process.cpu_percent(interval=None),
                time.monotonic() - self._started)
