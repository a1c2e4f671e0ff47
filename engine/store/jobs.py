"""The write side of the run history: jobs, node runs and the payloads that crossed connections.

The runtime batches its writes (see engine/runtime/history.py) and hands them here as one
transaction; `engine/store/history.py` is the read side. Retention (age, count, bytes) and the
incremental vacuum that gives the space back also live here, next to the tables they trim.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterable

from engine.runtime.job_keys import top_key
from engine.runtime.state import ACTIVE_TEXTS
from engine.store import checkpoints
from engine.store.checkpoints import Sealer
from engine.store.db import Database

log = logging.getLogger(__name__)

ACTIVE_STATUSES = ACTIVE_TEXTS  # a job in one of these is still running (or was, at a crash)
INTERRUPTED_ERROR = ("interrupted: the engine stopped (a crash, a restart or a power cut) "
                     "while this job was running")


@dataclass(frozen=True)
class Crossing:
    """One payload crossing one connection. `text` is the full JSON, already masked."""

    job_id: str
    seq: int
    connection_id: str
    text: str
    timestamp: float


@dataclass(frozen=True)
class RetentionPolicy:
    address: str
    max_age_s: float
    max_jobs: int
    max_bytes: int


@dataclass(frozen=True)
class RetentionResult:
    jobs_deleted: int          # top-level jobs (their sub-workflow jobs go with them)
    pages_freed: int
    job_ids: frozenset[str] = frozenset()  # every job id removed, sub-workflows included


class JobsStore:
    def __init__(self, db: Database, sealer: Sealer | None = None) -> None:
        self._db = db
        self.sealer = sealer  # opens and seals checkpoints of jobs with secrets

    async def job_ids(self) -> dict[str, str]:
        """Every recorded job key with its owner (bounded by retention), so a reused id is
        refused, and a client's id mapped to its key, without a database trip per job."""
        return await self._db.run(
            lambda conn: {job_id: sys.intern(address) for job_id, address
                          in conn.execute("SELECT job_id, address FROM jobs")})

    async def write_batch(self, ops: list[tuple[Any, ...]], preview_bytes: dict[str, int]) -> None:
        """Apply queued writes in one transaction. Truncating big payloads happens here, on the
        database thread, never on the event loop.

        Durability: history commits survive a crash of the engine process (WAL), but are not
        each waited onto the disk (synchronous=NORMAL for these transactions only): a power
        cut may lose the last fraction of a second of history, never settings or presets,
        and the throughput is no longer bound by the disk's flush latency."""
        await self._db.transaction_unsynced(_apply, ops, preview_bytes, self.sealer)

    async def mark_interrupted(self, now: float | None = None) -> list[tuple[str, str, str | None, float]]:
        """Jobs left RUNNING/PAUSED by a crash that have no checkpoint to restore them from
        (checkpoints were off, or the records predate them) become FAILED ("interrupted").
        Returns (job_id, address, preset_name, start_time) of each top-level job changed."""
        return await self._db.transaction(_mark_interrupted, now or time.time())

    async def owners_with_jobs(self) -> list[str]:
        return await self._db.run(
            lambda conn: [r[0] for r in conn.execute("SELECT DISTINCT address FROM jobs")])

    async def enforce_retention(self, policies: Iterable[RetentionPolicy],
                                now: float | None = None) -> RetentionResult:
        """Remove what the policies no longer keep. The deletes go DELETE_CHUNK jobs per
        transaction: a busy engine ends thousands of jobs between two trims, and deleting them
        at once held the database thread, and with it every job start, for a second or more."""
        doomed = await self._db.run(_doomed, list(policies), now or time.time())
        top: list[str] = []
        children: list[str] = []
        for chunk in _chunks(doomed, DELETE_CHUNK):
            gone, their_children = await self._db.transaction(_delete_jobs, chunk)
            top += gone
            children += their_children
        freed = await self._db.run(_vacuum) if top else 0
        return RetentionResult(len(top), freed, frozenset(top) | frozenset(children))


# -- sql ---------------------------------------------------------------------------------------

def _stored_payload(text: str, preview_bytes: int) -> tuple[str, int, int]:
    """(stored JSON, full size in bytes, truncated flag). A large payload keeps a preview."""
    raw = text.encode("utf-8")
    size = len(raw)
    if size <= preview_bytes:
        return text, size, 0
    preview = raw[:preview_bytes].decode("utf-8", errors="ignore")
    return json.dumps({"truncated": True, "size": size, "preview": preview},
                      ensure_ascii=False), size, 1


_JOB_COLUMNS = ("job_id", "address", "preset_name", "mode", "status", "start_time", "end_time",
                "error", "result", "parent_job_id", "started_by")
_NODE_COLUMNS = ("job_id", "run_seq", "node_id", "module_id", "status", "start_time", "end_time", "error")
_CROSSING_COLUMNS = ("job_id", "seq", "connection_id", "payload", "size", "truncated", "timestamp",
                     "history_refs")
_ENTRY_COLUMNS = ("job_id", "entry_id", "entry")
DELETE_CHUNK = 500  # top-level jobs deleted per transaction by retention (tens of ms each)
_MAX_PARAMS = 30_000  # below SQLite's default limit of 32,766 bound parameters per statement


def _apply(conn: sqlite3.Connection, ops: list[tuple[Any, ...]], preview_bytes: dict[str, int],
           sealer: Sealer | None = None) -> None:
    """Fold the queued writes into a few multi-row statements. A job or node run that starts
    and ends within one batch becomes one row; few statements also mean few hand-overs of the
    interpreter lock between this thread and the event loop."""
    jobs: dict[str, list[Any]] = {}
    job_updates: dict[str, tuple[Any, ...]] = {}
    nodes: dict[tuple[str, int], list[Any]] = {}
    node_updates: dict[tuple[str, int], tuple[Any, ...]] = {}
    crossings: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    saves: list[Any] = []
    # Jobs whose record is not kept (engine/runtime/job.py KEEP_UNSUCCESSFUL): their rows are
    # never built, and what an earlier batch wrote of them is deleted.
    discarded = {op[1] for op in ops if op[0] == "job_discard"}
    born_discarded: set[str] = set()
    for op in ops:
        kind = op[0]
        if kind == "ckpt":
            saves.append(op[1])
            continue
        if discarded and top_key(op[1].job_id if kind == "crossing" else op[1]) in discarded:
            if kind == "job_create":
                born_discarded.add(op[1])
            continue
        if kind == "job_create":
            _, job_id, address, preset_name, mode, start, parent, started_by = op
            jobs[job_id] = [job_id, address, preset_name, mode, "RUNNING", start, None, None, None,
                            parent, json.dumps(started_by) if started_by else None]
        elif kind == "job_status":
            _, job_id, status, end, error, result_text = op
            if result_text is not None:
                result_text = _stored_payload(result_text, preview_bytes.get(job_id, 64 * 1024))[0]
            if job_id in jobs:
                row = jobs[job_id]
                row[4], row[6], row[7], row[8] = status, end, error, result_text
            else:
                job_updates[job_id] = (status, end, error, result_text)
        elif kind == "node_start":
            _, job_id, run_seq, node_id, module_id, start = op
            nodes[(job_id, run_seq)] = [job_id, run_seq, node_id, module_id, "RUNNING", start, None, None]
        elif kind == "node_end":
            _, job_id, run_seq, status, end, error = op
            row = nodes.get((job_id, run_seq))
            if row is not None:
                row[4], row[6], row[7] = status, end, error
            else:
                node_updates[(job_id, run_seq)] = (status, end, error)
        elif kind == "crossing":
            c: Crossing = op[1]  # or the runtime's CrossingRecord (engine/runtime/history.py)
            limit = preview_bytes.get(c.job_id, 64 * 1024)
            if getattr(c, "by_reference", False) and c.size <= limit:
                # The history as entry numbers; each entry written once per job.
                payload, refs, new = c.split()
                crossings.append((c.job_id, c.seq, c.connection_id, payload, c.size, 0, c.timestamp, refs))
                entries.extend((c.job_id, entry_id, text) for entry_id, text in new)
                continue
            stored, size, truncated = _stored_payload(c.text, limit)
            crossings.append((c.job_id, c.seq, c.connection_id, stored, size, truncated, c.timestamp, None))
            if getattr(c, "by_reference", False):
                entries.extend((c.job_id, e.entry_id, e.encoded.decode("utf-8", "surrogatepass"))
                               for e in c.new_entries)
        else:  # a programming error: fail loudly, the transaction rolls back
            raise ValueError(f"unknown history write {kind!r}")
    _insert_many(conn, "jobs", _JOB_COLUMNS, list(jobs.values()))
    if job_updates:
        conn.executemany("UPDATE jobs SET status = ?, end_time = ?, error = ?, result = ? WHERE job_id = ?",
                         [(*values, job_id) for job_id, values in job_updates.items()])
    _insert_many(conn, "node_runs", _NODE_COLUMNS, list(nodes.values()))
    if node_updates:
        conn.executemany("UPDATE node_runs SET status = ?, end_time = ?, error = ? "
                         "WHERE job_id = ? AND run_seq = ?",
                         [(*values, *key) for key, values in node_updates.items()])
    _insert_many(conn, "connection_history", _CROSSING_COLUMNS, crossings)
    _insert_many(conn, "history_entries", _ENTRY_COLUMNS, entries)
    if saves:  # never dropped: a discarded job's checkpoint still has to go
        checkpoints.apply(conn, saves, sealer)
    recorded_earlier = discarded - born_discarded
    if recorded_earlier:
        _delete_trees(conn, sorted(recorded_earlier))


def _insert_many(conn: sqlite3.Connection, table: str, columns: tuple[str, ...],
                 rows: list[Any]) -> None:
    """INSERT OR REPLACE of many rows in as few statements as the parameter limit allows."""
    if not rows:
        return
    width = len(columns)
    per_statement = max(1, _MAX_PARAMS // width)
    head = f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES "
    one = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(rows), per_statement):
        chunk = rows[start:start + per_statement]
        conn.execute(head + ", ".join([one] * len(chunk)), [v for row in chunk for v in row])


_NOT_RESTORABLE = "NOT EXISTS (SELECT 1 FROM job_checkpoints c WHERE c.job_id = jobs.job_id)"


def _mark_interrupted(conn: sqlite3.Connection, now: float) -> list[tuple[str, str, str | None, float]]:
    placeholders = ",".join("?" * len(ACTIVE_STATUSES))
    where = f"status IN ({placeholders}) AND {_NOT_RESTORABLE}"
    rows = conn.execute(f"SELECT job_id, address, preset_name, start_time, parent_job_id FROM jobs "
                        f"WHERE {where}", ACTIVE_STATUSES).fetchall()
    # Node runs cut short by the crash are over either way (a restored job runs them anew).
    conn.execute("UPDATE node_runs SET status = 'ERROR', error = 'interrupted', end_time = ? "
                 "WHERE status = 'RUNNING'", (now,))
    if not rows:
        return []
    conn.execute(f"UPDATE jobs SET status = 'FAILED', error = ?, end_time = coalesce(("
                 f"SELECT max(coalesce(n.end_time, n.start_time)) FROM node_runs n "
                 f"WHERE n.job_id = jobs.job_id), start_time) WHERE {where}",
                 (INTERRUPTED_ERROR, *ACTIVE_STATUSES))
    return [(job_id, address, preset, start) for job_id, address, preset, start, parent in rows
            if parent is None]


def _doomed(conn: sqlite3.Connection, policies: list[RetentionPolicy], now: float) -> list[str]:
    """The top-level jobs the policies remove (read only: the deletes go in chunks)."""
    doomed: set[str] = set()
    placeholders = ",".join("?" * len(ACTIVE_STATUSES))
    for policy in policies:
        # Newest first; running jobs are never trimmed. Sub-workflow jobs follow their parent.
        finished = (f"FROM jobs j WHERE j.address = ? AND j.parent_job_id IS NULL "
                    f"AND j.status NOT IN ({placeholders}) ORDER BY j.start_time DESC, j.job_id DESC")
        args = (policy.address, *ACTIVE_STATUSES)
        # Past the newest max_jobs, a job goes whatever its age and size: it is not measured.
        doomed.update(r[0] for r in conn.execute(
            f"SELECT j.job_id {finished} LIMIT -1 OFFSET ?", (*args, policy.max_jobs)))
        rows = conn.execute(
            f"SELECT j.job_id, coalesce(j.end_time, j.start_time), "
            f"coalesce(length(j.result), 0) + (SELECT coalesce(sum(length(h.payload)) "
            f"+ sum(coalesce(length(h.history_refs), 0)), 0) FROM connection_history h WHERE h.job_id = j.job_id) "
            f"+ (SELECT coalesce(sum(length(e.entry)), 0) FROM history_entries e WHERE e.job_id = j.job_id) "
            f"{finished} LIMIT ?", (*args, policy.max_jobs)).fetchall()
        total = 0
        for job_id, ended, size in rows:
            total += size
            if now - ended > policy.max_age_s or total > policy.max_bytes:
                doomed.add(job_id)
    return sorted(doomed)


def _delete_jobs(conn: sqlite3.Connection, job_ids: list[str]) -> tuple[list[str], list[str]]:
    """Delete these top-level jobs, with their sub-workflow jobs and every row they own, if
    they are still finished (a job resumed since it was chosen stays); (top, children)."""
    marks = ",".join("?" * len(job_ids))
    active = ",".join("?" * len(ACTIVE_STATUSES))
    top = [r[0] for r in conn.execute(
        f"SELECT job_id FROM jobs WHERE job_id IN ({marks}) AND status NOT IN ({active})",
        (*job_ids, *ACTIVE_STATUSES))]
    return top, _delete_trees(conn, top) if top else []


def _delete_trees(conn: sqlite3.Connection, top: list[str]) -> list[str]:
    """Delete these top-level jobs, their sub-workflow jobs and every row they own; returns
    the sub-workflow jobs deleted."""
    children: list[str] = []
    for chunk in _chunks(top, 500):
        marks = ",".join("?" * len(chunk))
        children += [r[0] for r in conn.execute(
            f"SELECT job_id FROM jobs WHERE parent_job_id IN ({marks})", chunk)]
    for chunk in _chunks(top + children, 500):
        marks = ",".join("?" * len(chunk))
        for table in ("connection_history", "history_entries", "node_runs", "job_tokens",
                      "job_checkpoints", "jobs"):
            conn.execute(f"DELETE FROM {table} WHERE job_id IN ({marks})", chunk)
    return children


def _vacuum(conn: sqlite3.Connection) -> int:
    """Give freed pages back to the file system, so the file shrinks again."""
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    mode = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
    if mode == 2:  # INCREMENTAL
        # executescript steps the pragma to completion; execute() would free a single page.
        conn.executescript("PRAGMA incremental_vacuum;")
    elif free > 0:
        # A database made before auto_vacuum was on: a full VACUUM once converts it.
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return int(free)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
