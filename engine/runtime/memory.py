"""Giving freed memory back to the system after jobs were released from memory.

A job released while it waits frees tens of kilobytes, but the C allocator keeps freed pages
for reuse, so the process does not shrink and thousands of waiting jobs look like they still
cost what running ones do. On glibc (Linux), `malloc_trim(0)` returns the free pages of every
allocator arena to the system; elsewhere this does nothing (the allocators of macOS and
Windows give pages back by themselves).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from typing import Callable

log = logging.getLogger(__name__)


def _load_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl and other C libraries have no malloc_trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _load_trim()


def give_back_free_memory() -> None:
    """Blocking (a few milliseconds with a large heap): call it in a worker thread."""
    if _TRIM is not None:
        _TRIM(0)
