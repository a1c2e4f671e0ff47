"""Atomic, crash-safe file writes: the one helper every small file on disk goes through."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def make_private_dir(folder: Path) -> None:
    """Create `folder` (0700 on POSIX: presets, history and logs are the user's alone)."""
    folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def restrict(path: Path, mode: int) -> bool:
    """Take group and other permissions away from an existing file or folder (POSIX only).
    True when it had any, so the caller can say so in the log."""
    if os.name != "posix":
        return False
    try:
        current = stat.S_IMODE(os.stat(path, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False
    if current & 0o077 == 0:
        return False
    os.chmod(path, mode, follow_symlinks=False)
    return True


def create_private_file(path: Path) -> None:
    """Create an empty file that only the user can read (a database SQLite then opens: it
    gives its -wal and -shm files the same permissions)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write `data` to `path` so that a crash leaves either the old or the new file whole."""
    if not path.parent.is_dir():
        make_private_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.chmod(tmp_name, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, mode: int | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
