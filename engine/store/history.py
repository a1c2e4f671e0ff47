"""Jobs, node runs and the payloads that crossed each connection: the engine's run history.

The runtime writes through engine/store/jobs.py (batched, off the loop); this module is the read
side: `request_connection_history` and the run queries the desktop window pages through
(engine/runs.py). Paging is by keyset, (start_time, job_id) of the last row seen, on the
`runs_by_time` / `runs_by_status` indexes, so page 1,000 costs what page 1 costs.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from engine.runtime.state import STATUS_TEXTS
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


Cursor = tuple[float, str]  # (start_time, job_id) of a run: where a page starts or ends


@dataclass(frozen=True)
class RunRow:
    """One top-level run as stored, with how far it got."""

    job_id: str
    address: str
    preset_name: str | None
    mode: str
    status: str
    start_time: float
    end_time: float | None
    error: str | None
    started_by: dict[str, Any] | None
    nodes_done: int        # distinct nodes with a finished run
    node_runs: int         # node runs recorded (a loop runs a node more than once)
    checkpointed: bool = False  # a durable-jobs checkpoint row is kept (resume_job may continue it)

    @property
    def cursor(self) -> Cursor:
        return (self.start_time, self.job_id)


@dataclass(frozen=True)
class NodeRunRow:
    run_seq: int
    node_id: str
    module_id: str | None
    status: str
    start_time: float
    end_time: float | None
    error: str | None


@dataclass(frozen=True)
class ConnectionRow:
    """What crossed one connection during a run, in short."""

    connection_id: str
    count: int
    first_time: float
    last_time: float
    size: int              # bytes of all the payloads, full size


@dataclass(frozen=True)
class RunFilter:
    """Which runs a page holds: any of `statuses` (all when empty) of `owner` (everyone's when
    None; lower-case, as stored) whose workflow name, job id or error contains `text`
    (case-insensitive)."""

    statuses: tuple[str, ...] = ()
    text: str = ""
    owner: str | None = None


class HistoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def runs_page(self, where: RunFilter, *, before: Cursor | None = None,
                        after: Cursor | None = None, limit: int = 100) -> list[RunRow]:
        """Up to `limit` top-level runs, newest first: older than `before`, or newer than
        `after` (the newest `limit` of those), or the newest of all.

        A text filter cannot use an index: it is searched in slices of SEARCH_SLICE runs, one
        database call each, so the database thread (which also writes the history of running
        jobs) is never held for the whole table."""
        limit = max(1, min(int(limit), 1000))
        needle = where.text.strip().casefold()
        if not needle:
            return await self._db.run(_runs_page, where.statuses, where.owner, before, after, limit)
        found: list[RunRow] = []
        while len(found) < limit:
            rows, before, exhausted = await self._db.run(
                _search_slice, where.statuses, where.owner, needle, before, after, limit - len(found))
            found += rows
            if exhausted:
                break
        return found

    async def runs_by_id(self, job_ids: Iterable[str]) -> list[RunRow]:
        return await self._db.run(_runs_by_id, list(job_ids)[:1000])

    async def count_runs(self, statuses: Sequence[str] = ()) -> int:
        """How many top-level runs have one of `statuses` (all runs when empty); indexed."""
        return await self._db.run(_count_runs, tuple(statuses))

    async def node_runs(self, job_id: str) -> list[NodeRunRow]:
        return await self._db.run(_node_runs, job_id)

    async def connections(self, job_id: str) -> list[ConnectionRow]:
        return await self._db.run(_connections, job_id)

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


def _entries(conn: sqlite3.Connection, job_id: str, ref_lists: list[list[Any]]) -> dict[int, Any]:
    """The history entries (by number) that these crossings of `job_id` refer to."""
    wanted = sorted({ref for refs in ref_lists for ref in refs if isinstance(ref, int)})
    found: dict[int, Any] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for entry_id, text in conn.execute(f"SELECT entry_id, entry FROM history_entries WHERE job_id = ? "
                                           f"AND entry_id IN ({marks})", (job_id, *chunk)):
            found[entry_id] = json.loads(text)
    return found


def _connection_history(conn: sqlite3.Connection, job_id: str, connection_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT connection_id, payload, timestamp, seq, size, truncated, history_refs "
                        "FROM connection_history WHERE job_id = ? AND connection_id = ? "
                        "ORDER BY seq", (job_id, connection_id)).fetchall()
    entries = _entries(conn, job_id, [json.loads(r[6]) for r in rows if r[6] is not None])
    history = []
    for conn_id, payload, timestamp, seq, size, truncated, refs in rows:
        body = json.loads(payload)
        if refs is not None and isinstance(body, dict):
            # Entries a failed batch never wrote are left out rather than invented.
            body["history"] = [entries[ref] if isinstance(ref, int) else ref
                               for ref in json.loads(refs) if not isinstance(ref, int) or ref in entries]
        item: dict[str, Any] = {"connection_id": conn_id, "payload": body,
                                "timestamp": timestamp, "seq": seq}
        if truncated:
            item["truncated"] = True
            item["size"] = size
        history.append(item)
    return history


# -- run queries ---------------------------------------------------------------------------------

_RUN_COLUMNS = ("j.job_id, j.address, j.preset_name, j.mode, j.status, j.start_time, j.end_time, "
                "j.error, {started_by}, "
                "(SELECT count(DISTINCT n.node_id) FROM node_runs n WHERE n.job_id = j.job_id "
                "AND n.status != 'RUNNING'), "
                "(SELECT count(*) FROM node_runs n WHERE n.job_id = j.job_id), {checkpointed}")


def _has_started_by(conn: sqlite3.Connection) -> bool:
    """`jobs.started_by` (D6) exists once the automations change has migrated the database."""
    return any(row[1] == "started_by" for row in conn.execute("PRAGMA table_info(jobs)"))


def _columns(conn: sqlite3.Connection) -> str:
    # job_checkpoints is created with the schema whenever the database opens (engine/store/db.py).
    return _RUN_COLUMNS.format(started_by="j.started_by" if _has_started_by(conn) else "NULL",
                               checkpointed="EXISTS (SELECT 1 FROM job_checkpoints c WHERE c.job_id = j.job_id)")


def _run_row(row: Sequence[Any]) -> RunRow:
    *head, started_by, done, runs, checkpointed = row
    parsed: dict[str, Any] | None = None
    if started_by:
        try:
            value = json.loads(started_by)
            parsed = value if isinstance(value, dict) else None
        except ValueError:
            parsed = None
    return RunRow(*head, started_by=parsed, nodes_done=int(done), node_runs=int(runs),
                  checkpointed=bool(checkpointed))


SEARCH_SLICE = 4000  # runs a text search reads per database call (about 10 ms)


def _keyset(before: Cursor | None, after: Cursor | None) -> tuple[str, list[Any]]:
    sql, args = "", []
    if before is not None:
        sql, args = " AND (j.start_time, j.job_id) < (?, ?)", [before[0], before[1]]
    if after is not None:
        sql, args = sql + " AND (j.start_time, j.job_id) > (?, ?)", [*args, after[0], after[1]]
    return sql, args


def _owner_filter(owner: str | None) -> tuple[str, list[Any]]:
    return (" AND j.address = ?", [owner]) if owner is not None else ("", [])


def _runs_page(conn: sqlite3.Connection, statuses: Sequence[str], owner: str | None,
               before: Cursor | None, after: Cursor | None, limit: int) -> list[RunRow]:
    columns = _columns(conn)
    keyset_sql, keyset_args = _keyset(before, after)
    owner_sql, owner_args = _owner_filter(owner)
    # One indexed walk per status (runs_by_status; runs_by_owner for one owner's, every status
    # in turn when none is asked for), merged here: an IN list would make SQLite sort every
    # matching run before it could stop at `limit`.
    if owner is not None and not statuses:
        statuses = STATUS_TEXTS
    rows: list[RunRow] = []
    for status in statuses or (None,):
        status_sql, status_args = (" AND j.status = ?", [status]) if status is not None else ("", [])
        sql = (f"SELECT {columns} FROM jobs j WHERE j.parent_job_id IS NULL{owner_sql}{status_sql}"
               f"{keyset_sql} ORDER BY j.start_time DESC, j.job_id DESC LIMIT ?")
        rows += [_run_row(r) for r in conn.execute(sql, [*owner_args, *status_args, *keyset_args, limit])]
    if len(statuses) > 1:
        rows.sort(key=lambda r: r.cursor, reverse=True)
    return rows[:limit]


def _search_slice(conn: sqlite3.Connection, statuses: Sequence[str], owner: str | None,
                  needle: str, before: Cursor | None, after: Cursor | None,
                  want: int) -> tuple[list[RunRow], Cursor | None, bool]:
    """(matching runs, where the next slice starts, whether the range is exhausted) for the
    next SEARCH_SLICE runs older than `before`. `needle` is casefolded."""
    keyset_sql, keyset_args = _keyset(before, after)
    owner_sql, owner_args = _owner_filter(owner)
    candidates = conn.execute(
        f"SELECT j.job_id, j.start_time, j.status, j.preset_name, j.error FROM jobs j "
        f"INDEXED BY runs_by_time WHERE j.parent_job_id IS NULL{owner_sql}{keyset_sql} "
        f"ORDER BY j.start_time DESC, j.job_id DESC LIMIT ?",
        [*owner_args, *keyset_args, SEARCH_SLICE]).fetchall()
    matches: list[tuple[str, float]] = []
    for job_id, start, status, preset, error in candidates:
        if statuses and status not in statuses:
            continue
        if needle in job_id.casefold() or needle in (preset or "").casefold() \
                or needle in (error or "").casefold():
            matches.append((job_id, start))
            if len(matches) == want:
                rows = _sorted(_runs_by_id(conn, [m[0] for m in matches]))
                return rows, (start, job_id), False
    rows = _sorted(_runs_by_id(conn, [m[0] for m in matches]))
    last = (candidates[-1][1], candidates[-1][0]) if candidates else before
    return rows, last, len(candidates) < SEARCH_SLICE


def _sorted(rows: list[RunRow]) -> list[RunRow]:
    return sorted(rows, key=lambda r: r.cursor, reverse=True)


def _runs_by_id(conn: sqlite3.Connection, job_ids: list[str]) -> list[RunRow]:
    if not job_ids:
        return []
    marks = ",".join("?" * len(job_ids))
    return [_run_row(r) for r in conn.execute(
        f"SELECT {_columns(conn)} FROM jobs j WHERE j.job_id IN ({marks})", job_ids)]


def _count_runs(conn: sqlite3.Connection, statuses: Sequence[str]) -> int:
    total = 0
    for status in statuses or (None,):
        status_sql, status_args = (" AND status = ?", [status]) if status is not None else ("", [])
        total += conn.execute(f"SELECT count(*) FROM jobs WHERE parent_job_id IS NULL{status_sql}",
                              status_args).fetchone()[0]
    return int(total)


def _node_runs(conn: sqlite3.Connection, job_id: str) -> list[NodeRunRow]:
    return [NodeRunRow(*r) for r in conn.execute(
        "SELECT run_seq, node_id, module_id, status, start_time, end_time, error FROM node_runs "
        "WHERE job_id = ? ORDER BY run_seq", (job_id,))]


def _connections(conn: sqlite3.Connection, job_id: str) -> list[ConnectionRow]:
    return [ConnectionRow(*r) for r in conn.execute(
        "SELECT connection_id, count(*), min(timestamp), max(timestamp), sum(size) "
        "FROM connection_history WHERE job_id = ? GROUP BY connection_id ORDER BY min(seq)",
        (job_id,))]
