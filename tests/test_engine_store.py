"""The SQLite store: one file per data folder in WAL mode with incremental auto-vacuum, all
access on one thread that is not the event loop's, transactions all or nothing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from engine.protocol.errors import EngineError
from engine.store.db import SCHEMA_VERSION, Database


async def test_a_new_database_is_wal_with_incremental_vacuum(tmp_path: Path) -> None:
    db = Database(tmp_path / "e.sqlite3")
    await db.open()
    await db.close()
    db = Database(tmp_path / "e.sqlite3")  # opening again changes nothing
    await db.open()
    await db.close()
    with sqlite3.connect(tmp_path / "e.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_work_runs_on_one_thread_that_is_not_the_loop(tmp_path: Path) -> None:
    db = Database(tmp_path / "e.sqlite3")
    await db.open()
    try:
        seen = {await db.run(lambda conn: threading.get_ident()) for _ in range(5)}
        assert len(seen) == 1 and threading.get_ident() not in seen
    finally:
        await db.close()


async def test_a_failed_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    db = Database(tmp_path / "e.sqlite3")
    await db.open()

    def write_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO settings (address, body, updated_at) VALUES ('a', '{}', 0)")
        raise ValueError("half-way")

    try:
        with pytest.raises(ValueError):
            await db.transaction(write_then_fail)
        assert await db.run(lambda c: c.execute("SELECT count(*) FROM settings").fetchone()[0]) == 0
        with pytest.raises(EngineError) as info:
            await db.run(lambda c: c.execute("SELECT * FROM no_such_table").fetchall())
        assert info.value.code == "storage_error" and "no_such_table" in info.value.message
    finally:
        await db.close()


async def test_retention_trims_thousands_of_jobs_in_chunks_and_keeps_running_ones(tmp_path: Path) -> None:
    """A busy engine ends thousands of jobs between two trims: they go DELETE_CHUNK per
    transaction (other writes get the database between chunks), with their sub-workflow jobs
    and rows; the newest max_jobs stay, and a job running again is never deleted."""
    import time

    from engine.store import jobs as store_jobs
    db = Database(tmp_path / "engine.sqlite3")
    await db.open()
    count = store_jobs.DELETE_CHUNK * 2 + 137
    now = time.time()

    def fill(conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO jobs (job_id, address, mode, status, start_time, end_time, parent_job_id) "
            "VALUES (?, 'a', 'EXECUTE', ?, ?, ?, ?)",
            [(f"j{i:05d}", "RUNNING" if i == 3 else "SUCCEEDED", now - count + i, now - count + i + 0.5, None)
             for i in range(count)] + [("child-of-j00001", "SUCCEEDED", now - count + 1, now, "j00001")])
        conn.executemany("INSERT INTO node_runs (job_id, run_seq, node_id, status, start_time) "
                         "VALUES (?, 1, 'n', 'SUCCESS', 0)", [(f"j{i:05d}",) for i in range(count)]
                         + [("child-of-j00001",)])
        conn.executemany("INSERT INTO connection_history (job_id, seq, connection_id, payload, size, truncated, "
                         "timestamp) VALUES (?, 1, 'c', '{}', 2, 0, 0)", [(f"j{i:05d}",) for i in range(count)])
    await db.transaction(fill)
    transactions = []
    store = store_jobs.JobsStore(db)
    real = db.transaction

    async def counted(fn, *args):
        transactions.append(fn.__name__)
        return await real(fn, *args)
    db.transaction = counted  # type: ignore[method-assign]  # counts, then does the real thing
    result = await store.enforce_retention([store_jobs.RetentionPolicy("a", 365 * 86400.0, 100, 10**9)])
    await db.close()

    assert result.jobs_deleted == count - 100 - 1  # all but the newest 100 finished, and the running one
    assert "child-of-j00001" in result.job_ids and "j00003" not in result.job_ids
    assert transactions.count("_delete_jobs") == -(-(count - 100) // store_jobs.DELETE_CHUNK)
    conn = sqlite3.connect(tmp_path / "engine.sqlite3")
    kept = [r[0] for r in conn.execute("SELECT job_id FROM jobs ORDER BY job_id")]
    assert kept == ["j00003"] + [f"j{i:05d}" for i in range(count - 100, count)]
    for table in ("node_runs", "connection_history"):
        assert {r[0] for r in conn.execute(f"SELECT DISTINCT job_id FROM {table}")} == set(kept)
    # chosen while finished, running again (resume_job) by the time its chunk is deleted: kept
    assert store_jobs._delete_jobs(conn, ["j00003"]) == ([], [])
    assert conn.execute("SELECT count(*) FROM jobs WHERE job_id = 'j00003'").fetchone() == (1,)
    conn.close()
