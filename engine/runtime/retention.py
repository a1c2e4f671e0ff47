"""History retention: by age, job count and stored bytes, per owner, from their settings.

Enforced at start, then every INTERVAL_S, and after jobs end (at most once per
`min_interval_s`). Freed pages are returned with an incremental vacuum, so the file shrinks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from engine.store.jobs import JobsStore, RetentionPolicy, RetentionResult

if TYPE_CHECKING:
    from engine.store.settings import SettingsStore

log = logging.getLogger(__name__)

INTERVAL_S = 3600.0


def policy_for(address: str, settings: Mapping[str, Any]) -> RetentionPolicy:
    """From the owner's typed settings view (engine/store/settings.py): values in range."""
    return RetentionPolicy(address, settings["history_retention_days"] * 86400.0,
                           settings["history_max_jobs"], settings["history_max_bytes"])


class Retention:
    def __init__(self, store: JobsStore, settings: "SettingsStore",
                 on_deleted: Callable[[frozenset[str]], None] | None = None) -> None:
        self._store = store
        self._on_deleted = on_deleted
        self._settings = settings
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._last_run = 0.0
        self._scheduled: asyncio.Task[Any] | None = None
        self.min_interval_s = 30.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="history-retention")

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The periodic task; it runs until stop()."""
        return self._task

    async def stop(self) -> None:
        for task in (self._task, self._scheduled):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001
                    pass
        self._task = self._scheduled = None

    def poke(self) -> None:
        """A job ended: trim soon, unless trimmed very recently."""
        if time.monotonic() - self._last_run < self.min_interval_s:
            return
        if self._scheduled is None or self._scheduled.done():
            self._scheduled = asyncio.create_task(self.enforce_now(), name="history-retention-poke")

    async def _forever(self) -> None:
        while True:
            await self.enforce_now()
            await asyncio.sleep(INTERVAL_S)

    async def enforce_now(self) -> RetentionResult:
        async with self._lock:
            self._last_run = time.monotonic()
            try:
                policies = [policy_for(a, await self._settings.get(a))
                            for a in await self._store.owners_with_jobs()]
                result = await self._store.enforce_retention(policies)
            except Exception:  # noqa: BLE001 - retry at the next turn
                log.exception("history retention failed")
                return RetentionResult(0, 0)
            if result.job_ids and self._on_deleted is not None:
                self._on_deleted(result.job_ids)
            if result.jobs_deleted:
                log.info("history retention removed %d old jobs and freed %d pages",
                         result.jobs_deleted, result.pages_freed)
            return result
