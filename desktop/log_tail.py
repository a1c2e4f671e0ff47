"""The last log lines in memory, for the error the tray shows when the engine gives up."""

from __future__ import annotations

import logging
from collections import deque

from engine.logging_setup import FORMAT


class LogTail(logging.Handler):
    def __init__(self, size: int = 200) -> None:
        super().__init__(logging.INFO)
        self._lines: deque[str] = deque(maxlen=size)
        self.setFormatter(logging.Formatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)

    def lines(self, count: int = 20) -> list[str]:
        return list(self._lines)[-count:]
