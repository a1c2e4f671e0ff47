"""Where the engine's blocking work runs: small thread pools owned by the Engine.

Why not `asyncio.to_thread`: its default pool has up to 32 threads, and several threads running
Python code at once take the GIL from the event loop far more often than one does (the loop
waits a switch interval, 5 ms, for each hand-over). A lag probe showed 200-300 ms stalls with
six concurrent directory listings on the default pool, and under 50 ms with one worker. So
CPU-heavy work (decoding big frames, canonical JSON, signature checks of presets, listings of
big folders) queues on one thread; SQLite has its own thread (store/db.py).
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class Workers:
    def __init__(self) -> None:
        self._cpu: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._cpu is None:  # made on first use, so a stopped engine can start again
            self._cpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowork-cpu")
        return self._cpu

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` on the worker thread and await its result."""
        call = functools.partial(fn, *args, **kwargs) if kwargs else fn
        return await asyncio.get_running_loop().run_in_executor(
            self._pool(), call, *(() if kwargs else args))

    def shutdown(self) -> None:
        """Let queued work finish on its own; no new work is accepted until the next use."""
        if self._cpu is not None:
            self._cpu.shutdown(wait=False, cancel_futures=True)
            self._cpu = None
