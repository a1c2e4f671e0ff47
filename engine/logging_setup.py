"""Logs go to a rotating file in the user's log folder (and to stderr for a headless engine)."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

from engine.storage_files import PRIVATE_DIR, PRIVATE_FILE, make_private_dir, restrict

LOG_FILE = "flowork-engine.log"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# `log.error(..., extra=FILE_ONLY)`: for the log file only, when the terminal already got the
# same news as a plain sentence (a failed start), so it is not said twice.
FILE_ONLY = {"flowork_file_only": True}


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, "flowork_file_only", False)


def set_level(level: int | str | None) -> bool:
    """Change the engine log's level while it runs (the `log_level` setting); False if `level`
    is not one of DEBUG, INFO, WARNING, ERROR."""
    if isinstance(level, str) and level.strip().upper() in ("DEBUG", "INFO", "WARNING", "ERROR"):
        logging.getLogger().setLevel(level.strip().upper())
        return True
    if isinstance(level, int) and not isinstance(level, bool):
        logging.getLogger().setLevel(level)
        return True
    return False


def setup_logging(log_dir: Path, *, level: int | str = logging.INFO, to_stderr: bool = True,
                  file_name: str = LOG_FILE) -> Path | None:
    """Configure the root logger once; returns the log file path (None if it cannot be written)."""
    root = logging.getLogger()
    root.setLevel(level)
    for existing in list(root.handlers):
        if getattr(existing, "_flowork", False):
            root.removeHandler(existing)
            existing.close()
    formatter = logging.Formatter(FORMAT)
    limiter = RepeatLimiter()
    log_path: Path | None = log_dir / file_name
    fixed: list[str] = []
    try:
        make_private_dir(log_dir)
        fixed = [str(p) for p in [log_dir] if restrict(p, PRIVATE_DIR)]
        fixed += [str(p) for p in sorted(log_dir.glob(file_name + "*")) if restrict(p, PRIVATE_FILE)]
        file_handler = PrivateRotatingFileHandler(
            log_path, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8")
        file_handler.setFormatter(formatter)
        file_handler.addFilter(limiter)
        file_handler._flowork = True  # type: ignore[attr-defined]
        root.addHandler(file_handler)
    except OSError as exc:
        log_path = None
        print(f"flowork: cannot write logs to {log_dir} ({exc.strerror}); logging to the terminal only.",
              file=sys.stderr)
    if to_stderr and sys.stderr is not None:  # a windowed build has no stderr
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(formatter)
        stream.addFilter(_not_file_only)
        stream.addFilter(limiter)
        stream._flowork = True  # type: ignore[attr-defined]
        root.addHandler(stream)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    if log_path is not None and fixed:
        logging.getLogger(__name__).warning(
            "other users of this computer could read %s; restricted to the owner only "
            "(folders 0700, files 0600)", ", ".join(fixed))
    return log_path


class RepeatLimiter(logging.Filter):
    """At most BURST records of one kind (logger, level, message template, source line) per
    WINDOW seconds; the first one after a quiet spell says how many were left out. So an attack
    that makes the engine log the same error thousands of times (file descriptors exhausted)
    cannot rotate the real log lines away. One instance is shared by the handlers; each record
    is decided once."""

    BURST = 10
    WINDOW = 10.0
    MAX_KINDS = 2048

    def __init__(self, clock=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        import threading
        import time
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._kinds: dict[tuple[object, ...], list[float]] = {}  # kind -> [start, count, left out]

    def filter(self, record: logging.LogRecord) -> bool:
        decided = getattr(record, "_flowork_repeat", None)
        if decided is not None:
            return decided
        # The first line of the template: asyncio's handler joins details (the socket, its fd)
        # into the message itself, so whole messages of one kind still differ.
        template = record.msg.split("\n", 1)[0] if isinstance(record.msg, str) else type(record.msg)
        key = (record.name, record.levelno, template, record.pathname, record.lineno)
        now = self._clock()
        with self._lock:
            kind = self._kinds.get(key)
            if kind is None or now - kind[0] >= self.WINDOW:
                if len(self._kinds) >= self.MAX_KINDS:
                    self._kinds = {k: v for k, v in self._kinds.items() if now - v[0] < self.WINDOW}
                left_out = int(kind[2]) if kind is not None else 0
                self._kinds[key] = [now, 1, 0]
                if left_out:
                    record.msg = (f"{record.getMessage()} [{left_out} more like this in the last "
                                  f"{self.WINDOW:.0f} s were not logged]")
                    record.args = None
                allowed = True
            else:
                kind[1] += 1
                allowed = kind[1] <= self.BURST
                if not allowed:
                    kind[2] += 1
        record._flowork_repeat = allowed  # type: ignore[attr-defined]
        return allowed


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Log files only the user can read (0600 on POSIX): they tell what workflows did."""

    def _open(self):  # type: ignore[no-untyped-def]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                     PRIVATE_FILE)
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)
