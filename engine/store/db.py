"""The SQLite database: one file per data folder, WAL mode, all access on one worker thread.

Why one thread: sqlite3 connections are not shareable across threads, WAL gives readers and the
writer no contention worth a pool at our scale, and a single thread serializes writes so that
every acknowledged write is committed before its reply is sent.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

from engine.protocol.errors import EngineError, ErrorCode

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    address     TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS variables (
    address     TEXT NOT NULL,
    name        TEXT NOT NULL,
    is_secret   INTEGER NOT NULL,
    is_enabled  INTEGER NOT NULL,
    mode        TEXT NOT NULL,
    value       BLOB NOT NULL,          -- JSON text, or Fernet token when is_secret
    cursor      INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (address, name)
);
CREATE TABLE IF NOT EXISTS presets (
    address     TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    workflow    TEXT NOT NULL,
    signature   TEXT NOT NULL,
    created_at  REAL NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (address, name, version)
);
CREATE TABLE IF NOT EXISTS preset_shares (
    address     TEXT NOT NULL,
    name        TEXT NOT NULL,
    grantee     TEXT NOT NULL,          -- lower-case address, or '*' for everyone
    PRIMARY KEY (address, name, grantee)
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id      TEXT PRIMARY KEY,
    address     TEXT NOT NULL,
    preset_name TEXT,
    mode        TEXT NOT NULL,
    status      TEXT NOT NULL,
    start_time  REAL NOT NULL,
    end_time    REAL,
    error       TEXT,
    result      TEXT,
    parent_job_id TEXT,
    started_by  TEXT                    -- JSON {"kind", "rule_id"?}; NULL in records made before it existed
);
CREATE INDEX IF NOT EXISTS jobs_by_address ON jobs (address, start_time);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status);
-- The desktop window pages through top-level runs newest first by keyset (start_time, job_id),
-- all of them or one status at a time; partial indexes skip sub-workflow jobs.
CREATE INDEX IF NOT EXISTS runs_by_time ON jobs (start_time, job_id) WHERE parent_job_id IS NULL;
CREATE INDEX IF NOT EXISTS runs_by_status ON jobs (status, start_time, job_id) WHERE parent_job_id IS NULL;
-- One owner's runs one status at a time, the same way (request_jobs_list).
CREATE INDEX IF NOT EXISTS runs_by_owner ON jobs (address, status, start_time, job_id) WHERE parent_job_id IS NULL;
CREATE TABLE IF NOT EXISTS node_runs (
    job_id      TEXT NOT NULL,
    run_seq     INTEGER NOT NULL,
    node_id     TEXT NOT NULL,
    module_id   TEXT,
    status      TEXT NOT NULL,
    start_time  REAL NOT NULL,
    end_time    REAL,
    error       TEXT,
    PRIMARY KEY (job_id, run_seq)
);
CREATE TABLE IF NOT EXISTS connection_history (
    job_id        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    connection_id TEXT NOT NULL,
    payload       TEXT NOT NULL,        -- JSON, or a preview object when truncated
    size          INTEGER NOT NULL,     -- bytes of the full serialized payload
    truncated     INTEGER NOT NULL,
    timestamp     REAL NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX IF NOT EXISTS history_by_connection ON connection_history (job_id, connection_id, seq);
-- The engine-made history entries a job's crossings refer to (connection_history.history_refs),
-- each written once instead of once per crossing (a payload carries up to 100 of them).
CREATE TABLE IF NOT EXISTS history_entries (
    job_id    TEXT NOT NULL,
    entry_id  INTEGER NOT NULL,
    entry     TEXT NOT NULL,            -- JSON of one history entry
    PRIMARY KEY (job_id, entry_id)
);
-- Durable jobs (engine/store/checkpoints.py): one row per unfinished job (its spec, what it
-- needs to be rebuilt after a restart) and one per branch position (a token: the node it is at,
-- the payload it carries, what it waits for). Written with the history's group commit; removed
-- when the top-level job ends, except for a job that ended FAILED by interruption (resume_job).
CREATE TABLE IF NOT EXISTS job_checkpoints (
    job_id      TEXT PRIMARY KEY,
    top_job_id  TEXT NOT NULL,
    spec        BLOB NOT NULL,          -- JSON (or Fernet token when the job has secrets)
    final       BLOB,                   -- the last end node's payload, same encoding
    updated_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_by_top ON job_checkpoints (top_job_id);
CREATE TABLE IF NOT EXISTS job_tokens (
    job_id      TEXT NOT NULL,
    token_id    INTEGER NOT NULL,
    top_job_id  TEXT NOT NULL,
    node_id     TEXT NOT NULL,
    edge_id     TEXT,                   -- set while the token waits in a merge's inbox
    state       TEXT NOT NULL,          -- ready | running (a non-idempotent node started)
    iteration   INTEGER NOT NULL,
    payload     BLOB NOT NULL,          -- JSON list of the payloads it carries (merge: several)
    wait        TEXT,                   -- JSON: the durable wait of the node it runs
    moves       INTEGER NOT NULL DEFAULT 0,  -- how often it moved on (its node runs' keys)
    PRIMARY KEY (job_id, token_id)
);
CREATE INDEX IF NOT EXISTS tokens_by_top ON job_tokens (top_job_id);
-- A node run's idempotency key -> the row it appended (dataset_append): run again after a
-- crash, the same node run finds its row instead of appending a second one. Removed with the
-- top-level job's checkpoint.
CREATE TABLE IF NOT EXISTS dataset_append_keys (
    run_key     TEXT PRIMARY KEY,
    top_job_id  TEXT NOT NULL,
    row_id      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS append_keys_by_top ON dataset_append_keys (top_job_id);
CREATE TABLE IF NOT EXISTS trigger_rules (
    rule_id     TEXT PRIMARY KEY,
    address     TEXT NOT NULL,
    preset_name TEXT NOT NULL,
    preset_version INTEGER NOT NULL,
    node_id     TEXT NOT NULL,
    module_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,          -- schedule | webhook | file_watch
    config      TEXT NOT NULL,          -- the trigger node's config_values, JSON
    enabled     INTEGER NOT NULL,
    disabled_reason TEXT,               -- set when the engine disabled a broken rule
    token       BLOB,                   -- webhook token, Fernet-encrypted
    last_fire   REAL,                   -- the scheduled time of the last fire (misfires)
    last_job_id TEXT,
    last_status TEXT,
    last_at     REAL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    UNIQUE (address, preset_name, node_id)
);
CREATE TABLE IF NOT EXISTS trigger_flags (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    dataset_id  INTEGER PRIMARY KEY,
    address     TEXT NOT NULL,
    name        TEXT NOT NULL,
    row_count   INTEGER NOT NULL DEFAULT 0,
    bytes       INTEGER NOT NULL DEFAULT 0,   -- sum of its rows' sizes
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    UNIQUE (address, name)
);
CREATE TABLE IF NOT EXISTS dataset_rows (
    row_id      INTEGER PRIMARY KEY AUTOINCREMENT,  -- a row's stable id: never reused
    dataset_id  INTEGER NOT NULL REFERENCES datasets (dataset_id) ON DELETE CASCADE,
    body        TEXT NOT NULL,                      -- the row as a JSON object, without its id
    size        INTEGER NOT NULL,                   -- bytes of body
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dataset_rows_by_dataset ON dataset_rows (dataset_id, row_id);
"""

# Columns added after the first release: (table, column, declaration). Added in place when
# missing, so databases made by earlier versions open (see Database._open_sync).
_ADDED_COLUMNS = (
    ("jobs", "started_by", "TEXT"),
    ("connection_history", "history_refs", "TEXT"),  # the crossing's history as entry numbers
    ("job_tokens", "moves", "INTEGER NOT NULL DEFAULT 0"),
)


class Database:
    """Owns the SQLite file and the thread that touches it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowork-db")
        self._conn: sqlite3.Connection | None = None
        self._thread_ident: int | None = None

    async def open(self) -> None:
        await self.run(self._open_sync)

    def _open_sync(self, _conn: None = None) -> None:
        self._thread_ident = threading.get_ident()
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        if _is_new(conn):
            # Only possible before the first table exists and before the switch to WAL (which
            # writes the file header): history retention can then give space back with
            # `PRAGMA incremental_vacuum` instead of rewriting the whole file.
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged write survives a power cut, not only a process crash.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(_SCHEMA)
        _add_missing_columns(conn)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._conn = conn

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(connection, *args)` on the database thread and await its result."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._call, fn, args)
        except sqlite3.OperationalError as exc:
            log.error("database error: %s", exc)
            folder = self.path.parent
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise EngineError(ErrorCode.STORAGE,
                                  f"The engine's data folder {folder} is read-only; nothing was saved. "
                                  "Make the folder writable and try again.") from None
            full = disk_full_message(folder)
            if ("disk" in str(exc) and "full" in str(exc)) or (
                    full and getattr(exc, "sqlite_errorname", "").startswith("SQLITE_IOERR")):
                raise EngineError(ErrorCode.STORAGE, (full or f"The disk holding {folder} is full.")
                                  + " Nothing was saved. Free some space and try again.") from None
            if getattr(exc, "sqlite_errorname", "").startswith("SQLITE_IOERR"):
                # A write the operating system refused (a folder made read-only or immutable
                # under the running engine, a failing disk): the transaction was rolled back.
                raise EngineError(ErrorCode.STORAGE,
                                  f"The engine could not write to its data folder {folder} ({exc}); "
                                  "nothing was saved. Check that the folder is writable and the "
                                  "disk is healthy, then try again.") from None
            raise EngineError(ErrorCode.STORAGE, f"The engine could not access its database: {exc}.") from None
        except sqlite3.DatabaseError as exc:
            log.error("database error: %s", exc)
            raise EngineError(ErrorCode.STORAGE, f"The engine's database reported an error: {exc}.") from None

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        return fn(self._conn, *args)

    async def transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(connection, *args)` inside BEGIN IMMEDIATE ... COMMIT (all or nothing)."""
        return await self.run(_in_transaction, fn, *args)

    async def transaction_unsynced(self, fn: Callable[..., T], *args: Any) -> T:
        """Like `transaction`, but the commit does not wait for the disk to flush
        (synchronous=NORMAL for this transaction only): it survives a crash of the engine
        process (WAL), a power cut may lose the last such commits (never corrupting the file),
        and frequent writes are no longer bound by the disk's flush latency. For what
        workflows write at a high rate (history, dataset rows), never for settings or presets."""
        return await self.run(_unsynced, fn, *args)

    async def close(self) -> None:
        def _close(conn: sqlite3.Connection | None) -> None:
            if conn is not None:
                try:
                    conn.execute("PRAGMA optimize")
                except sqlite3.Error:
                    pass
                conn.close()
        if self._conn is not None:
            await self.run(_close)
            self._conn = None
        self._executor.shutdown(wait=True)


# What the database needs to open and write a little: its WAL index (-shm, 32 KiB), room to
# checkpoint the WAL into the file, and a margin for the next transactions.
OPEN_MARGIN_BYTES = 1024 * 1024


def space_needed(folder: Path) -> int:
    wal = folder / "engine.sqlite3-wal"
    try:
        wal_size = wal.stat().st_size
    except OSError:
        wal_size = 0
    return wal_size + 32 * 1024 + OPEN_MARGIN_BYTES


def disk_full_message(folder: Path) -> str | None:
    """'The disk holding ... is full: N free, the engine needs at least M.' when it is."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    needed = space_needed(folder)
    if free >= needed:
        return None
    return (f"The disk holding the engine's data folder {folder} is full: {_size(free)} free, and the "
            f"engine needs at least {_size(needed)} to open and write its database.")


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Idempotent: adds each column of _ADDED_COLUMNS that its table lacks."""
    for table, column, declaration in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def _is_new(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0


def _in_transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
    except BaseException:
        if conn.in_transaction:  # after an I/O error SQLite has already rolled back
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _unsynced(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    previous = conn.execute("PRAGMA synchronous").fetchone()[0]
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        return _in_transaction(conn, fn, *args)
    finally:
        conn.execute(f"PRAGMA synchronous={int(previous)}")
