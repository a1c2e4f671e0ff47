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
