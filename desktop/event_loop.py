"""The desktop app's event loop: qasync's loop, with asyncio's ready queue for `call_soon`.

qasync runs every `call_soon` callback as a Qt timer of its own: a timer registered, a timer
event delivered into Python, a timer killed, for each of the tens of callbacks a single
workflow run makes. In the tray app, where the engine shares the Qt loop, that made the engine
about four times slower than headless and every pass of Qt's loop long (the window's stalls).
Here `call_soon` queues the handle, as asyncio's own loops do, and one zero-interval Qt timer
runs the callbacks that were ready when it fired, in order, for at most SLICE_S, then gives Qt
its turn (paints, input, sockets, timers) before it goes on: a busy engine has always more ready
than that, and the window must not wait for all of it. Delayed callbacks, sockets and threads
stay qasync's.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections import deque
from typing import Any, Callable, Iterator

import qasync
import shiboken6
from PySide6.QtCore import QTimer


SLICE_S = 0.008  # callbacks run back to back before Qt gets a turn (a callback runs whole)


class DesktopEventLoop(qasync.QEventLoop):
    def __init__(self, app: Any = None) -> None:
        super().__init__(app)
        self._soon: deque[asyncio.Handle] = deque()
        self._soon_timer = QTimer()
        self._soon_timer.setSingleShot(True)
        self._soon_timer.setInterval(0)
        self._soon_timer.timeout.connect(self._run_soon)

    def call_soon(self, callback: Callable[..., Any], *args: Any,
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        if asyncio.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with call_soon")
        if not callable(callback):
            raise TypeError(f"callback must be callable: {type(callback).__name__}")
        handle = asyncio.Handle(callback, args, self, context=context)
        if not self.is_closed():  # as qasync: after close() a callback never runs
            self._soon.append(handle)
            if len(self._soon) == 1:
                self._soon_timer.start()
        return handle

    def _run_soon(self) -> None:
        """Run the callbacks that were ready when the timer fired, for at most SLICE_S (not
        those they schedule: those wait for the next turn, after Qt's own events)."""
        if self.is_closed():
            return
        deadline = time.perf_counter() + SLICE_S
        # Taken out of the queue first: what the callbacks schedule starts a new queue with its
        # own timer, so that it runs even inside a nested Qt loop (a modal dialog's exec()).
        batch, self._soon = self._soon, deque()
        try:
            with self.as_running():
                while batch:
                    handle = batch.popleft()
                    if not handle._cancelled:
                        handle._run()
                        if time.perf_counter() > deadline:
                            break
        finally:
            if batch:  # the slice ran out: the rest goes first, before what was scheduled since
                batch.extend(self._soon)
                self._soon = batch
            if self._soon:
                self._soon_timer.start()

    @contextlib.contextmanager
    def as_running(self) -> Iterator[None]:
        """This loop as the running one meanwhile, if none is: Qt may deliver a timer outside
        run_forever (qasync processes events once more after run_until_complete; pytest-qt
        between test phases), and a callback must still find its loop."""
        if asyncio.events._get_running_loop() is not None:
            yield
            return
        asyncio.events._set_running_loop(self)
        try:
            yield
        finally:
            asyncio.events._set_running_loop(None)

    def close(self) -> None:
        """Delete the loop's timer objects (the ready queue's and qasync's) here, on the Qt
        thread: left to Python's cyclic collector they may be freed on a worker thread, where
        Qt cannot unregister their timers, and a later timer event would reach a dead object."""
        if self.is_closed():
            return
        qasync_timer = self._timer
        super().close()
        self._soon.clear()
        for timer in (self._soon_timer, qasync_timer):
            if shiboken6.isValid(timer):
                shiboken6.delete(timer)
