"""Runs the in-process engine: start, stop, restart, and restart after a crash.

An engine that breaks while running (the Engine says so through `wait_failed` when one of its
essential tasks ends) is restarted with back-off, at most 3 times in 10 minutes; after that the
supervisor gives up and reports ERROR with the last log lines, and only the user's Start/Restart
tries again. A start that fails is not retried: the same start fails the same way (a data folder
that cannot be written, an address that cannot be listened on), so it is reported at once
(ERROR, with `error_reason` saying which) for the user to fix. A port already in use is its own
state (PORT_IN_USE). The app turns `error_reason` into its own sentences and buttons
(desktop/errors.py); `error` keeps the engine's text for the details.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from enum import Enum
from typing import Callable

from PySide6.QtCore import QObject, Signal

from engine.app import Engine, EngineStartError
from desktop.log_tail import LogTail

log = logging.getLogger(__name__)


class State(Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    RESTARTING = "restarting"    # waiting out the back-off after a crash
    PORT_IN_USE = "port in use"
    ERROR = "error"              # gave up, or the user must act


class RestartPolicy:
    """At most `max_restarts` automatic restarts within `window_s`, with doubling delays."""

    def __init__(self, *, max_restarts: int = 3, window_s: float = 600.0, base_delay_s: float = 1.0,
                 max_delay_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._clock = clock
        self._restarts: list[float] = []

    def next_delay(self) -> float | None:
        """The wait before the next restart, or None: give up."""
        now = self._clock()
        self._restarts = [t for t in self._restarts if now - t < self.window_s]
        if len(self._restarts) >= self.max_restarts:
            return None
        self._restarts.append(now)
        return min(self.base_delay_s * 2 ** (len(self._restarts) - 1), self.max_delay_s)

    def reset(self) -> None:
        self._restarts.clear()


class EngineSupervisor(QObject):
    state_changed = Signal(object)      # State
    engine_started = Signal(object)     # the new Engine (its runtime is new: re-subscribe)
    engine_stopping = Signal(object)    # the Engine about to go away

    def __init__(self, make_engine: Callable[[], Engine], *, policy: RestartPolicy | None = None,
                 log_tail: LogTail | None = None) -> None:
        super().__init__()
        self._make_engine = make_engine
        self.policy = policy or RestartPolicy()
        self.log_tail = log_tail
        self.state = State.STOPPED
        self.engine: Engine | None = None
        self.error: str = ""
        # "port_in_use", "data_dir", "other" (EngineStartError.reason), "start_failed" (an
        # unexpected exception), "crashed" (restarting), "gave_up"
        self.error_reason: str = ""
        self.error_log: list[str] = []
        self.crashes = 0
        self._lock = asyncio.Lock()
        self._watch_task: asyncio.Task[None] | None = None
        self._restart_task: asyncio.Task[None] | None = None

    # -- what the user asks for --------------------------------------------------------------

    async def start(self) -> None:
        async with self._lock:
            self._cancel_restart()
            self.policy.reset()
            if self.state is not State.RUNNING:
                await self._start_once()

    async def stop(self, *, suspend: bool = True) -> None:
        """Stop the engine. `suspend`: its running workflows are kept and continue at its next
        start (the engine's graceful stop); False: they are stopped."""
        async with self._lock:
            self._cancel_restart()
            await self._stop_engine(suspend=suspend)
            self._set(State.STOPPED)

    async def restart(self, *, suspend: bool = True) -> None:
        async with self._lock:
            self._cancel_restart()
            self.policy.reset()
            await self._stop_engine(suspend=suspend)
            await self._start_once()

    # -- internals ---------------------------------------------------------------------------

    def _set(self, state: State) -> None:
        if state in (State.RUNNING, State.STOPPED):
            self.error = self.error_reason = ""
        self.state = state
        self.state_changed.emit(state)

    async def _start_once(self) -> None:
        self._set(State.STARTING)
        engine = self._make_engine()
        try:
            await engine.start()
        except EngineStartError as exc:
            log.error("%s", exc)
            self._start_failed(str(exc), exc.reason)
            return
        except Exception as exc:  # noqa: BLE001 - any failure is reported, never a crash of the app
            log.exception("the engine failed to start")
            self._start_failed(f"The engine failed to start: {exc}", "start_failed")
            return
        self.engine = engine
        self._set(State.RUNNING)
        self.engine_started.emit(engine)
        self._watch_task = asyncio.ensure_future(self._watch(engine))

    async def _stop_engine(self, *, suspend: bool = True) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
            self._watch_task = None
        engine = self.engine
        if engine is None:
            return
        self._set(State.STOPPING)
        self.engine_stopping.emit(engine)
        try:
            await engine.stop(suspend=suspend)
        except Exception:  # noqa: BLE001 - a failed stop must not keep the app from going on
            log.exception("the engine did not stop cleanly")
        self.engine = None

    async def _watch(self, engine: Engine) -> None:
        """Restart an engine that breaks (an essential task of it ended) as soon as it says so.
        Cancelled whenever the engine is stopped or restarted as asked."""
        reason = await engine.wait_failed()
        if reason is None:
            return  # stopped as asked
        async with self._lock:
            if self.engine is not engine:
                return
            self._watch_task = None  # this task: _stop_engine must not wait for itself
            log.error("the engine stopped unexpectedly: %s", reason)
            await self._stop_engine()  # what still runs of it (its port, its database) is freed
            self._crashed(f"The engine stopped unexpectedly: {reason}.")

    def _start_failed(self, message: str, reason: str) -> None:
        """Reported at once, never retried: nothing changes between two identical starts."""
        self.error, self.error_reason = message, reason
        self.error_log = self.log_tail.lines(20) if self.log_tail else []
        self._set(State.PORT_IN_USE if reason == "port_in_use" else State.ERROR)

    def _crashed(self, message: str) -> None:
        self.crashes += 1
        delay = self.policy.next_delay()
        self.error_reason = "crashed" if delay is not None else "gave_up"
        if delay is None:
            self.error = (f"{message} It stopped {self.policy.max_restarts + 1} times within "
                          f"{int(self.policy.window_s // 60)} minutes, so Flowork gave up "
                          f"restarting it. Fix the cause, then choose Restart.")
            self.error_log = self.log_tail.lines(20) if self.log_tail else []
            log.error("giving up restarting the engine: %s", message)
            self._set(State.ERROR)
            return
        self.error = message
        log.warning("restarting the engine in %.1f s", delay)
        self._set(State.RESTARTING)
        self._restart_task = asyncio.ensure_future(self._restart_later(delay))

    async def _restart_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        async with self._lock:
            self._restart_task = None
            if self.state is State.RESTARTING:
                await self._start_once()

    def _cancel_restart(self) -> None:
        if self._restart_task is not None:
            self._restart_task.cancel()
            self._restart_task = None

