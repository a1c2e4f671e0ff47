"""Recording what runs: jobs, node runs and connection crossings, batched and written off the loop.

Everything is queued and written in one transaction every FLUSH_INTERVAL (or sooner when many
are waiting); a job's final status is flushed before it is announced, so that
`request_connection_history` sees the whole job once its terminal status is out, and many jobs
share one commit (one fsync) instead of paying one each. A database
failure is logged and never fails a job. The queue is bounded: past MAX_QUEUED, crossings are
dropped (and the log says so) rather than letting memory grow.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from engine.protocol.errors import EngineError
from engine.store.jobs import Crossing, JobsStore

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.2
BATCH_SIZE = 500
MAX_QUEUED = 50_000


class HistoryRecorder:
    """Queues history writes; one writer task commits them in batches (group commit)."""

    def __init__(self, store: JobsStore) -> None:
        self.store = store
        self._ops: list[tuple[Any, ...]] = []
        self._preview: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._dropped = 0
        self._added = 0      # ops queued since start
        self._written = 0    # ops committed (or given up on) since start
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="history-recorder")

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The writer task; it runs until close()."""
        return self._task

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._write_pending()

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

    def job_create(self, job_id: str, address: str, preset_name: str | None, mode: str,
                   start_time: float, parent_job_id: str | None,
                   started_by: dict[str, Any] | None = None) -> None:
        self._add(("job_create", job_id, address, preset_name, mode, start_time, parent_job_id,
                   started_by))

    def node_start(self, job_id: str, run_seq: int, node_id: str, module_id: str, start: float) -> None:
        self._add(("node_start", job_id, run_seq, node_id, module_id, start))

    def node_end(self, job_id: str, run_seq: int, status: str, end: float, error: str | None) -> None:
        self._add(("node_end", job_id, run_seq, status, end, error))

    def job_status(self, job_id: str, status: str, end: float | None, error: str | None,
                   result_text: str | None) -> None:
        self._add(("job_status", job_id, status, end, error, result_text))

    def _add(self, op: tuple[Any, ...]) -> None:
        self._ops.append(op)
        self._added += 1
        if len(self._ops) >= BATCH_SIZE:
            self._wake.set()

    # -- writing -----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Return once everything queued before this call is committed. Many callers share
        one commit: the writer takes all that is queued each time it writes."""
        target = self._added
        if self._written >= target:
            return
        if self._task is None or self._task.done():
            future = asyncio.get_running_loop().create_future()
            self._waiters.append((target, future))
            await self._write_pending()
            await future
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        self._wake.set()
        await future

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL)
            except TimeoutError:
                pass
            self._wake.clear()
            await self._write_pending()

    async def _write_pending(self) -> None:
        ops, self._ops = self._ops, []
        failure: BaseException | None = None
        try:
            for start in range(0, len(ops), BATCH_SIZE * 4):
                await self.store.write_batch(ops[start:start + BATCH_SIZE * 4], dict(self._preview))
        except EngineError as exc:  # a storage error (disk full, read-only): said once per batch
            failure = exc
            log.error("could not record %d history entries: %s", len(ops), exc.message)
        except Exception as exc:  # noqa: BLE001 - history is best effort; the job goes on
            failure = exc
            log.exception("could not record %d history entries", len(ops))
        finally:
            first = self._written
            self._written += len(ops)
            still = []
            for target, future in self._waiters:
                if target <= self._written:
                    if future.done():
                        continue
                    # Whoever waited for something in this batch hears that it was not written
                    # (a job start is then refused, not acknowledged).
                    if failure is not None and target > first:
                        future.set_exception(failure)
                    else:
                        future.set_result(None)
                else:
                    still.append((target, future))
            self._waiters = still
