"""Where sync modules run: daemon threads, at most `limit` at a time.

Why not a ThreadPoolExecutor: its threads are joined when the interpreter exits, so one module
stuck in a blocking call (a socket without a timeout) would keep the engine, or the whole
desktop app, from quitting. A stopped job only asks its modules to stop (`ctx.cancelled`);
a module that ignores it keeps its thread, and its slot, until it returns.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from typing import Any, Callable, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModuleThreads:
    def __init__(self, limit: int = 32) -> None:
        self.limit = limit
        self._slots: asyncio.Semaphore | None = None
        self._ids = itertools.count(1)
        self.busy = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in a daemon thread and await its result (cancellable: the thread
        then finishes on its own)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        slots = self._slots
        await slots.acquire()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self.busy += 1

        def settle(ok: bool, value: Any) -> None:
            self.busy -= 1
            slots.release()
            if future.done():
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        def target() -> None:
            try:
                outcome: tuple[bool, Any] = (True, fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                outcome = (False, exc)
            try:
                loop.call_soon_threadsafe(settle, *outcome)
            except RuntimeError:  # the loop is gone: the engine stopped meanwhile
                pass

        try:
            threading.Thread(target=target, name=f"flowork-module-{next(self._ids)}", daemon=True).start()
        except BaseException:
            self.busy -= 1
            slots.release()
            raise
        return await future
