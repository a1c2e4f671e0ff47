"""request_connection_history answered from storage, only for the asker's own jobs. The rows are
written straight into the database here; the workflow runtime fills them in real use."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from engine.app import DB_FILE
from engine.client import EngineClient
from tests.conftest import EngineFactory, Wallet


def insert_job(data_dir: Path, job_id: str, address: str, rows: list[tuple[int, str, object, bool]]) -> None:
    with sqlite3.connect(data_dir / DB_FILE) as db:
        db.execute("INSERT INTO jobs (job_id, address, preset_name, mode, status, start_time) "
                   "VALUES (?, ?, 'p', 'EXECUTE', 'SUCCEEDED', ?)", (job_id, address.lower(), time.time()))
        db.executemany(
            "INSERT INTO connection_history (job_id, seq, connection_id, payload, size, truncated, timestamp) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(job_id, seq, conn_id, json.dumps(payload), 10, int(truncated), 1000.0 + seq)
             for seq, conn_id, payload, truncated in rows])


async def test_history_of_ones_own_job_filtered_and_in_order(make_engine: EngineFactory, owner: Wallet,
                                                             stranger: Wallet, data_dir: Path) -> None:
    engine = await make_engine(owners=(owner.address, stranger.address))
    insert_job(data_dir, "job-1", owner.address, [
        (3, "c1", {"step": 3}, False), (1, "c1", {"step": 1, "text": "ünï"}, False),
        (2, "c2", {"other": True}, False), (4, "c1", {"preview": "abc"}, True)])
    insert_job(data_dir, "job-2", stranger.address, [(1, "c1", {"theirs": 1}, False)])
    async with await EngineClient.connect(engine.url, owner.key) as mine, \
            await EngineClient.connect(engine.url, stranger.key) as theirs:
        reply = await mine.request("request_connection_history", job_id="job-1", connection_id="c1")
        assert reply["type"] == "connection_history_response"
        assert (reply["job_id"], reply["connection_id"]) == ("job-1", "c1")
        assert [h["seq"] for h in reply["history"]] == [1, 3, 4]
        first = reply["history"][0]
        assert first == {"connection_id": "c1", "payload": {"step": 1, "text": "ünï"},
                         "timestamp": 1001.0, "seq": 1}
        assert reply["history"][2]["truncated"] is True and reply["history"][2]["size"] == 10
        empty = await mine.request("request_connection_history", job_id="job-1", connection_id="zz")
        assert empty["history"] == []
        # Someone else's job looks exactly like a job that does not exist.
        foreign = await mine.request("request_connection_history", job_id="job-2", connection_id="c1",
                                     check=False)
        absent = await mine.request("request_connection_history", job_id="job-9", connection_id="c1",
                                    check=False)
        assert foreign["code"] == absent["code"] == "not_found"
        assert foreign["error"].replace("job-2", "J") == absent["error"].replace("job-9", "J")
        assert foreign["type"] == "connection_history_response"
        own = await theirs.request("request_connection_history", job_id="job-2", connection_id="c1")
        assert [h["payload"] for h in own["history"]] == [{"theirs": 1}]
        denied = await theirs.request("request_connection_history", job_id="job-1", connection_id="c1",
                                      check=False)
        assert denied["code"] == "not_found"
