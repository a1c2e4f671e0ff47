"""Recording what runs: jobs, node runs and connection crossings, batched and written off the loop.

Node runs and crossings are queued and written in one transaction every FLUSH_INTERVAL (or
sooner when many are waiting); a job's creation and its final status are flushed right away, so
that `request_connection_history` sees the whole job once its terminal status is out. A database
failure is logged and never fails a job. The queue is bounded: past MAX_QUEUED, crossings are
dropped (and the log says so) rather than letting memory grow.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from engine.store.jobs import Crossing, JobsStore

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.2
BATCH_SIZE = 500
MAX_QUEUED = 50_000


class HistoryRecorder:
    def __init__(self, store: JobsStore) -> None:
        self.store = store
        self._ops: list[tuple[Any, ...]] = []
        self._preview: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._dropped = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="history-recorder")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()

    # -- queueing (sync, on the loop) --------------------------------------------------------

    def set_preview_bytes(self, job_id: str, preview_bytes: int) -> None:
        self._preview[job_id] = preview_bytes

    def forget(self, job_id: str) -> None:
        self._preview.pop(job_id, None)

    def crossing(self, job_id: str, seq: int, connection_id: str, text: str, timestamp: float) -> None:
        if len(self._ops) >= MAX_QUEUED:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning("history writes are falling behind: %d connection payloads were not "
                            "recorded", self._dropped)
            return
        self._add(("crossing", Crossing(job_id, seq, connection_id, text, timestamp)))

    def node_start(self, job_id: str, run_seq: int, node_id: str, module_id: str, start: float) -> None:
        self._add(("node_start", job_id, run_seq, node_id, module_id, start))

    def node_end(self, job_id: str, run_seq: int, status: str, end: float, error: str | None) -> None:
        self._add(("node_end", job_id, run_seq, status, end, error))

    def job_status(self, job_id: str, status: str, end: float | None, error: str | None,
                   result_text: str | None) -> None:
        self._add(("job_status", job_id, status, end, error, result_text))

    def _add(self, op: tuple[Any, ...]) -> None:
        self._ops.append(op)
        if len(self._ops) >= BATCH_SIZE:
            self._wake.set()

    # -- writing -----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write everything queued so far; returns once it is committed."""
        async with self._lock:
            while self._ops:
                ops, self._ops = self._ops[:BATCH_SIZE * 4], self._ops[BATCH_SIZE * 4:]
                try:
                    await self.store.write_batch(ops, dict(self._preview))
                except Exception:  # noqa: BLE001 - history is best effort; the job goes on
                    log.exception("could not record %d history entries", len(ops))
