"""Logs go to a rotating file in the user's log folder (and to stderr for a headless engine)."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

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
    log_path: Path | None = log_dir / file_name
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log_path, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8")
        file_handler.setFormatter(formatter)
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
        stream._flowork = True  # type: ignore[attr-defined]
        root.addHandler(stream)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    return log_path
