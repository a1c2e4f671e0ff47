"""D6: every run records what started it, in the job record and in status_data; old databases
get the new column in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.store.db import Database
from tests.runtime_support import collect, final, node, start, workflow


async def test_a_database_without_the_column_gets_it_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE jobs (job_id TEXT PRIMARY KEY, address TEXT NOT NULL, preset_name TEXT, "
                 "mode TEXT NOT NULL, status TEXT NOT NULL, start_time REAL NOT NULL, end_time REAL, "
                 "error TEXT, result TEXT, parent_job_id TEXT)")
    conn.execute("INSERT INTO jobs VALUES ('old', '0xabc', 'p', 'EXECUTE', 'SUCCEEDED', 1, 2, NULL, NULL, NULL)")
    conn.commit()
    conn.close()
    for _ in range(2):  # opening twice must not try to add it twice
        db = Database(path)
        await db.open()
        columns = await db.run(lambda c: [r[1] for r in c.execute("PRAGMA table_info(jobs)")])
        rows = await db.run(lambda c: c.execute("SELECT job_id, started_by FROM jobs").fetchall())
        await db.close()
        assert "started_by" in columns
        assert rows == [("old", None)]


async def test_a_client_run_says_gui_in_its_status_and_record(engine, client) -> None:
    job_id = await start(client, workflow([node("a", "set_data", data={"x": 1})], []))
    events = await collect(client, job_id)
    assert final(events)["started_by"] == {"kind": "gui"}
    assert all(e["status_data"]["started_by"] == {"kind": "gui"}
               for e in events if e["type"] == "workflow_status_update")
    reply = await client.request("request_job_status", job_id=job_id)
    assert reply["status_data"]["started_by"] == {"kind": "gui"}
