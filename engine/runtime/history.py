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
from engine.runtime.payload import Snapshot
from engine.runtime.templating import Masker
from engine.store.jobs import JobsStore

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.2
LINGER_S = 0.001
BATCH_SIZE = 500
MAX_QUEUED = 50_000
HIGH_WATER = BATCH_SIZE * 4  # queued writes past which a new job waits for a commit


class HistoryWriteError(Exception):
    """The batch holding a job's start could not be written (a full disk, a read-only folder)."""

    def __init__(self, cause: BaseException | None) -> None:
        super().__init__(str(cause) if cause else "the history could not be written")
        self.cause = cause


class CrossingRecord:
    """One payload crossing one connection, as the store writes it (engine/store/jobs.py reads
    `text`). The text is joined from the snapshot's bytes and masked when the store asks, on
    the database thread, in the batch: never on the event loop."""

    __slots__ = ("job_id", "seq", "connection_id", "timestamp", "size", "new_entries",
                 "_snapshot", "_masker")

    def __init__(self, job_id: str, seq: int, connection_id: str, snapshot: Snapshot,
                 masker: Masker, timestamp: float) -> None:
        self.job_id = job_id
        self.seq = seq
        self.connection_id = connection_id
        self.timestamp = timestamp
        self.size = snapshot.size
        self.new_entries = snapshot.new_entries(job_id)
        self._snapshot = snapshot
        self._masker = masker

    @property
    def by_reference(self) -> bool:
        """Stored as payload + entry numbers (no secrets to mask: sizes are exact then)."""
        return not self._masker

    @property
    def text(self) -> str:
        """The full payload JSON, masked."""
        return self._masker.json_text(self._snapshot.text())

    def split(self) -> tuple[str, str, list[tuple[int, str]]]:
        """(payload without its history, the history's entry numbers, the entries to write
        for this job), masked: what the store writes when the payload is not truncated."""
        mask = self._masker.json_text
        payload, refs = self._snapshot.split()
        entries = [(e.entry_id, mask(e.encoded.decode("utf-8", "surrogatepass"))) for e in self.new_entries]
        return mask(payload), mask(refs), entries


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
        self._taken = 0      # ops handed to the writer since start (committed or on their way)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._failures: list[tuple[int, int]] = []  # (first, last] op counts of failed batches
        self.last_error: BaseException | None = None

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

    def crossing(self, job_id: str, seq: int, connection_id: str, snapshot: Snapshot,
                 masker: Masker, timestamp: float) -> None:
        if len(self._ops) >= MAX_QUEUED:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning("history writes are falling behind: %d connection payloads were not "
                            "recorded", self._dropped)
            return
        self._add(("crossing", CrossingRecord(job_id, seq, connection_id, snapshot, masker, timestamp)))

    def job_create(self, job_id: str, address: str, preset_name: str | None, mode: str,
                   start_time: float, parent_job_id: str | None,
                   started_by: dict[str, Any] | None = None) -> int:
        """Queue the job's record; returns its write number (for `committed`)."""
        return self._add(("job_create", job_id, address, preset_name, mode, start_time, parent_job_id,
                          started_by))

    def node_start(self, job_id: str, run_seq: int, node_id: str, module_id: str, start: float) -> None:
        self._add(("node_start", job_id, run_seq, node_id, module_id, start))

    def node_end(self, job_id: str, run_seq: int, status: str, end: float, error: str | None) -> None:
        self._add(("node_end", job_id, run_seq, status, end, error))

    def job_status(self, job_id: str, status: str, end: float | None, error: str | None,
                   result_text: str | None) -> None:
        self._add(("job_status", job_id, status, end, error, result_text))

    def job_discard(self, job_id: str) -> None:
        """Queue the removal of a finished top-level job's record, its sub-workflows' too
        (engine/store/jobs.py: dropped from the batch when it was born in it, else deleted)."""
        self._add(("job_discard", job_id))

    def queued(self, op: int) -> bool:
        """The write numbered `op`, and every one after it, is still in the queue: none has
        reached the writer, so a crash now would lose them all together."""
        return op > self._taken

    def checkpoint(self, write: Any) -> int:
        """Queue a checkpoint write (engine/runtime/checkpoint.py); returns its write number.
        Never dropped, unlike crossings: a restart depends on it."""
        return self._add(("ckpt", write))

    def _add(self, op: tuple[Any, ...]) -> int:
        self._ops.append(op)
        self._added += 1
        if len(self._ops) >= BATCH_SIZE and not self._wake.is_set():
            self._wake.set()
        return self._added

    # -- writing -----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Return once everything queued before this call is committed. Many callers share
        one commit: the writer takes all that is queued each time it writes. History is best
        effort: a failed write is logged and the job goes on (see `committed` for the one
        write that must not be lost silently)."""
        target = self._added
        if self._written < target:
            if self._task is None or self._task.done():
                await self._write_pending()
            else:
                await self._waiter(target)

    def flushed(self) -> "asyncio.Future[None]":
        """`flush()` as a future, without a task of its own: every job waits for the commit
        of its final status, and a task (with `asyncio.shield` around it) per job cost more
        than the wait. Cancelling the returned future cancels only this caller's wait."""
        target = self._added
        if self._written < target and (self._task is None or self._task.done()):
            return asyncio.shield(asyncio.ensure_future(self.flush()))  # no writer: write now
        return self._waiter(target)

    def _waiter(self, target: int) -> "asyncio.Future[None]":
        """A future the writer resolves once `target` writes are committed (or given up on)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._written >= target:
            future.set_result(None)
        else:
            self._waiters.append((target, future))
            self._wake.set()
        return future

    async def room(self) -> None:
        """Return once fewer than HIGH_WATER writes are queued. New jobs wait here, so that
        starts slow down to what the disk takes: a caller that does not wait for the record
        (a webhook's, say) could otherwise queue history faster than it is written."""
        while len(self._ops) >= HIGH_WATER and self._task is not None and not self._task.done():
            await self.flush()

    async def committed(self, op: int) -> None:
        """Wait until the write numbered `op` (what `job_create` returned) is committed;
        HistoryWriteError if its batch could not be written (a full disk, a read-only folder):
        a job start is acknowledged only once it is on disk."""
        if self._written < op:
            await self.flush()
        if any(first < op <= last for first, last in self._failures):
            raise HistoryWriteError(self.last_error)

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(FLUSH_INTERVAL):
                    await self._wake.wait()
            except TimeoutError:
                pass
            if self._wake.is_set() and len(self._ops) < BATCH_SIZE:
                # Woken by a waiter: linger a moment so that the starts and ends arriving
                # meanwhile share this commit (one database hop, one fsync, for many jobs).
                await asyncio.sleep(LINGER_S)
            self._wake.clear()
            await self._write_pending()

    async def _write_pending(self) -> None:
        ops, self._ops = self._ops, []
        self._taken += len(ops)
        first = self._written
        try:
            for start in range(0, len(ops), BATCH_SIZE * 4):
                await self.store.write_batch(ops[start:start + BATCH_SIZE * 4], dict(self._preview))
        except EngineError as exc:  # a storage error (disk full, read-only): said once per batch
            log.error("could not record %d history entries: %s", len(ops), exc.message)
            self.last_error = exc
            self._failures = (self._failures + [(first, first + len(ops))])[-64:]
        except Exception as exc:  # noqa: BLE001 - history is best effort; the job goes on
            log.exception("could not record %d history entries", len(ops))
            self.last_error = exc
            self._failures = (self._failures + [(first, first + len(ops))])[-64:]
        finally:
            self._written += len(ops)
            still = []
            for target, future in self._waiters:
                if target <= self._written:
                    if not future.done():
                        future.set_result(None)
                else:
                    still.append((target, future))
            self._waiters = still
