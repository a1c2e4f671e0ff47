"""Jobs, node runs and the payloads that crossed each connection: the engine's run history.

The runtime writes here (batched, off the loop); `request_connection_history` reads here. This
module is the only one that touches those tables.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from engine.store.db import Database


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    address: str
    preset_name: str | None
    mode: str
    status: str
    start_time: float
    end_time: float | None
    error: str | None
    result: Any
    started_by: dict[str, Any] | None = None

    def status_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status, "start_time": self.start_time,
                                "end_time": self.end_time, "preset_name": self.preset_name}
        if self.started_by is not None:
            data["started_by"] = self.started_by
        if self.error is not None:
            data["error"] = self.error
        if self.result is not None:
            data["result"] = self.result
        return data


class HistoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def job(self, job_id: str) -> JobRecord | None:
        return await self._db.run(_job, job_id)

    async def connection_history(self, job_id: str, connection_id: str) -> list[dict[str, Any]]:
        return await self._db.run(_connection_history, job_id, connection_id)


def _job(conn: sqlite3.Connection, job_id: str) -> JobRecord | None:
    row = conn.execute("SELECT job_id, address, preset_name, mode, status, start_time, end_time, "
                       "error, result, started_by FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    if row is None:
        return None
    *head, result, started_by = row
    return JobRecord(*head, result=json.loads(result) if result else None,
                     started_by=json.loads(started_by) if started_by else None)


def _connection_history(conn: sqlite3.Connection, job_id: str, connection_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT connection_id, payload, timestamp, seq, size, truncated "
                        "FROM connection_history WHERE job_id = ? AND connection_id = ? "
                        "ORDER BY seq", (job_id, connection_id)).fetchall()
    history = []
    for conn_id, payload, timestamp, seq, size, truncated in rows:
        item: dict[str, Any] = {"connection_id": conn_id, "payload": json.loads(payload),
                                "timestamp": timestamp, "seq": seq}
        if truncated:
            item["truncated"] = True
            item["size"] = size
        history.append(item)
    return history
