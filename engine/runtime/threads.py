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
        await self._slots.acquire()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self.busy += 1
        try:
            threading.Thread(target=self._target, args=(loop, future, fn, args),
                             name=f"flowork-module-{next(self._ids)}", daemon=True).start()
        except BaseException:
            self._settle(future, True, None)
            raise
        try:
            return await future
        finally:
            # A failure raised here holds this frame in its traceback, the frame holds the
            # future and the future the failure: a reference cycle, unless the frame lets go.
            del future

    def _target(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any],
                fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """The thread: the outcome goes back to the loop. A failure's traceback keeps this
        frame alive as its caller's (f_back): it lets go of the future (which holds the
        failure) and of the outcome, or the failure would be a reference cycle."""
        ok, value = _outcome(fn, args)
        self._hand_over(loop, future, ok, value)
        del future, value, fn, args

    def _hand_over(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], ok: bool,
                   value: Any) -> None:
        try:
            loop.call_soon_threadsafe(self._settle, future, ok, value)
        except RuntimeError:  # the loop is gone: the engine stopped meanwhile
            pass

    def _settle(self, future: asyncio.Future[Any], ok: bool, value: Any) -> None:
        """On the loop: the slot is free again; the outcome, unless the caller gave up."""
        self.busy -= 1
        assert self._slots is not None
        self._slots.release()
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _outcome(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    """(True, result) or (False, the exception), caught in a frame of its own that holds
    neither the future nor the outcome (the exception's traceback holds this frame)."""
    try:
        return True, fn(*args)
    except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
        return False, exc
