"""What a rule does when it fires while its last run is still going: skip (the default), keep
one fire queued, or run in parallel up to a bound."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from engine.triggers.launch import RunEnd
from engine.triggers.options import Policy

log = logging.getLogger(__name__)

# launch(job_id, event) starts the run and returns the future of its end.
Launch = Callable[[str, Any], Awaitable["asyncio.Future[RunEnd]"]]


@dataclass
class Fire:
    outcome: str                              # "started", "queued" or "skipped"
    job_id: str | None = None
    ended: "asyncio.Future[RunEnd] | None" = None
    reason: str | None = None


class OverlapGate:
    def __init__(self, policy: Policy, on_end: Callable[[RunEnd], None]) -> None:
        self.policy = policy
        self.running = 0
        self._queued: tuple[str, Any, Launch, asyncio.Future[RunEnd]] | None = None
        self._on_end = on_end

    @property
    def busy(self) -> bool:
        limit = self.policy.max_parallel if self.policy.overlap == "parallel" else 1
        return self.running >= limit

    async def fire(self, job_id: str, event: Any, launch: Launch) -> Fire:
        if self.busy:
            if self.policy.overlap == "queue" and self._queued is None:
                ended: asyncio.Future[RunEnd] = asyncio.get_running_loop().create_future()
                self._queued = (job_id, event, launch, ended)
                return Fire("queued", job_id, ended)
            what = ("one fire is already queued" if self.policy.overlap == "queue" else
                    f"{self.running} runs are still going" if self.policy.overlap == "parallel"
                    else "its last run is still going")
            return Fire("skipped", reason=f"skipped: {what} (overlap policy '{self.policy.overlap}')")
        self.running += 1
        try:
            ended = await launch(job_id, event)
        except BaseException:
            self.running -= 1
            raise
        ended.add_done_callback(self._ended)
        return Fire("started", job_id, ended)

    def _ended(self, future: "asyncio.Future[RunEnd]") -> None:
        self.running -= 1
        if not future.cancelled() and future.exception() is None:
            self._on_end(future.result())
        if self._queued is not None and not self.busy:
            job_id, event, launch, waiter = self._queued
            self._queued = None
            asyncio.ensure_future(self._start_queued(job_id, event, launch, waiter))

    async def _start_queued(self, job_id: str, event: Any, launch: Launch,
                            waiter: "asyncio.Future[RunEnd]") -> None:
        try:
            fire = await self.fire(job_id, event, launch)
        except Exception as exc:  # noqa: BLE001 - the queued run could not start: say so
            log.warning("a queued automation run could not start: %s", exc)
            if not waiter.done():
                waiter.set_exception(exc)
            return
        if fire.ended is None:
            if not waiter.done():
                waiter.set_exception(RuntimeError(fire.reason or "skipped"))
            return
        fire.ended.add_done_callback(lambda f: _relay(f, waiter))

    def drop_queued(self) -> None:
        if self._queued is not None:
            waiter = self._queued[3]
            self._queued = None
            if not waiter.done():
                waiter.cancel()


def _relay(source: "asyncio.Future[RunEnd]", target: "asyncio.Future[RunEnd]") -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())  # type: ignore[arg-type]
    else:
        target.set_result(source.result())
