"""Per-user datasets: named tables of JSON rows that the Datasets page edits and workflows write
and read. The only module that touches the `datasets` and `dataset_rows` tables.

Every dataset has one owner (an address), and every query names it, so owners never see each
other's. A row is a JSON object stored without its `id`; the id is the row's own, never reused.
Limits (a row's size, rows per dataset, all of an owner's bytes) come from the owner's settings
as a `DatasetLimits`; a refused change changes nothing.

Appends from workflows are group-committed: appends that arrive while a batch is being written
share the next transaction, and each append returns only once its row is committed, so a node
that succeeded has stored its row. Like history, these commits do not wait for the disk to
flush (Database.transaction_unsynced): they survive a crash of the engine, a power cut may lose
the last moments. Changes from clients are one fully synced transaction each. All of it runs
on the database thread (store/db.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Mapping

from engine.protocol.errors import EngineError, ErrorCode
from engine.protocol.frames import RawJSON
from engine.protocol.schema import Name
from engine.store.dataset_conditions import Condition, where_sql
from engine.store.db import Database

log = logging.getLogger(__name__)

MAX_DATASETS = 1000            # per owner
PAGE_DEFAULT = 500
PAGE_MAX = 1000
PAGE_MAX_BYTES = 4 * 1024 * 1024  # a page stops early rather than grow past this
QUERY_MAX = 1000
UPDATE_MAX = 10_000
BATCH_MAX = 2000               # appends per transaction
DATASET_NAME = Name()          # the same rules as preset names




@dataclass(frozen=True)
class DatasetLimits:
    max_row_bytes: int = 64 * 1024
    max_rows: int = 100_000
    max_total_bytes: int = 256 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "DatasetLimits":
        """The owner's limits from the typed settings view (engine/store/settings.py), which
        has already checked each against its range."""
        return cls(settings["dataset_max_row_bytes"], settings["dataset_max_rows"],
                   settings["dataset_max_total_bytes"])


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    count: int
    size_bytes: int
    created_at: float
    updated_at: float

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "size_bytes": self.size_bytes,
                "created_at": self.created_at, "updated_at": self.updated_at}


@dataclass(frozen=True)
class RowsPage:
    """Rows `offset` .. `offset + count` (oldest first) of `total`, as one JSON array text."""

    name: str
    rows: RawJSON
    offset: int
    limit: int
    count: int
    total: int

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "data": self.rows, "offset": self.offset, "limit": self.limit,
                "total": self.total, "has_more": self.offset + self.count < self.total}


def check_name(name: Any, field: str = "name") -> str:
    """A dataset name as strictly checked as a preset name (EngineError otherwise)."""
    return DATASET_NAME.validate(field, name)


def not_found(name: str) -> EngineError:
    return EngineError(ErrorCode.NOT_FOUND, f"The dataset '{name}' was not found.", name=name)


def row_not_found(name: str, row_id: int) -> EngineError:
    return EngineError(ErrorCode.NOT_FOUND, f"Row {row_id} of the dataset '{name}' was not found; "
                       f"it may have been deleted.", name=name, row_id=row_id)


def encode_row(row: Any, limits: DatasetLimits, what: str = "row") -> tuple[str, int]:
    """(JSON text without the id, its size in bytes); EngineError when it cannot be a row."""
    if not isinstance(row, dict):
        raise EngineError.invalid(what, "must be an object")
    body = {key: value for key, value in row.items() if key != "id"} if "id" in row else row
    try:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                          default=str)
    except (TypeError, ValueError, RecursionError) as exc:
        raise EngineError.invalid(what, f"cannot be stored as JSON ({exc})") from None
    size = len(text.encode("utf-8"))
    if size > limits.max_row_bytes:
        raise EngineError(ErrorCode.TOO_LARGE, f"The {what} is {size:,} bytes as JSON; a row may hold "
                          f"at most {limits.max_row_bytes:,} (setting dataset_max_row_bytes). "
                          f"Nothing was stored.", field=what)
    return text, size


def with_id(row_id: int, body: str) -> str:
    """The row's JSON text with its id first (spliced, not decoded)."""
    return f'{{"id":{row_id}}}' if body == "{}" else f'{{"id":{row_id},{body[1:]}'


@dataclass
class _Append:
    owner: str
    name: str
    row: Any
    limits: DatasetLimits
    create: bool
    future: "asyncio.Future[int]"
    run_key: str | None = None   # the node run's idempotency key (engine/components/api.py)


class DatasetsStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[_Append] = []
        self._writer: asyncio.Task[None] | None = None

    # -- reads -------------------------------------------------------------------------------

    async def list(self, owner: str) -> list[DatasetSummary]:
        return await self._db.run(_list, owner)

    async def exists(self, owner: str, name: str) -> bool:
        return await self._db.run(lambda conn: _find(conn, owner, name) is not None)

    async def page(self, owner: str, name: str, offset: int = 0, limit: int = PAGE_DEFAULT) -> RowsPage:
        return await self._db.run(_page, owner, name, offset, min(max(limit, 1), PAGE_MAX))

    async def query(self, owner: str, name: str, conditions: list[Condition], limit: int, *,
                    newest_first: bool = True) -> list[dict[str, Any]]:
        """Rows matching every condition, newest first (or oldest first), at most `limit`."""
        return await self._db.run(_query, owner, name, conditions, min(max(limit, 1), QUERY_MAX),
                                  newest_first)

    # -- changes from clients (one transaction each) ----------------------------------------

    async def create(self, owner: str, name: str) -> None:
        await self._db.transaction(_create, owner, name)

    async def delete(self, owner: str, name: str) -> bool:
        return await self._db.transaction(_delete, owner, name)

    async def add_rows(self, owner: str, name: str, rows: list[Any], limits: DatasetLimits) -> list[int]:
        """All rows or none; returns their ids."""
        return await self._db.transaction(_add_rows, owner, name, rows, limits)

    async def update_row(self, owner: str, name: str, row_id: int, fields: dict[str, Any],
                         limits: DatasetLimits) -> None:
        """Set the given fields of one row (the others stay)."""
        await self._db.transaction(_update_row, owner, name, row_id, fields, limits)

    async def delete_row(self, owner: str, name: str, row_id: int) -> None:
        await self._db.transaction(_delete_row, owner, name, row_id)

    async def update_where(self, owner: str, name: str, conditions: list[Condition],
                           changes: list[tuple[tuple[str, ...], Any]], limits: DatasetLimits,
                           limit: int, *, dry_run: bool = False) -> list[int]:
        """Set `changes` (field path, value) on the rows matching every condition, oldest first,
        at most `limit`; all or none. With dry_run nothing is written. Returns the row ids."""
        limit = min(max(limit, 1), UPDATE_MAX)
        if dry_run:
            return await self._db.run(_update_where, owner, name, conditions, changes, limits, limit, True)
        return await self._db.transaction(_update_where, owner, name, conditions, changes, limits,
                                          limit, False)

    # -- appends from workflows (group commit) -----------------------------------------------

    async def append(self, owner: str, name: str, row: Any, limits: DatasetLimits, *,
                     create: bool = False, run_key: str | None = None) -> int:
        """Add one row; returns its id once it is committed. With create, a missing dataset
        is created first. With run_key, an append already committed under that key returns
        that row's id and adds nothing."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append(_Append(owner, name, row, limits, create, future, run_key))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_pending())
        return await future

    async def check_append(self, owner: str, name: str, row: Any, limits: DatasetLimits, *,
                           create: bool = False) -> int:
        """What `append` would refuse, without writing (SIMULATE); returns the row's size."""
        return await self._db.run(_check_append, owner, name, row, limits, create)

    async def _write_pending(self) -> None:
        while self._pending:
            batch = [item for item in self._pending[:BATCH_MAX] if not item.future.done()]
            del self._pending[:BATCH_MAX]
            if not batch:
                continue
            try:
                results: list[Any] = await self._db.transaction_unsynced(_write_appends, batch)
            except Exception as exc:  # noqa: BLE001 - every waiting append hears why
                error = exc if isinstance(exc, EngineError) else EngineError(
                    ErrorCode.STORAGE, f"The rows could not be stored ({exc}).")
                results = [error] * len(batch)
            for item, result in zip(batch, results):
                if item.future.done():
                    continue
                if isinstance(result, BaseException):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)

    async def close(self) -> None:
        """Wait until every queued append is written (before the database closes)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)


# -- on the database thread ------------------------------------------------------------------

def _find(conn: sqlite3.Connection, owner: str, name: str) -> tuple[int, int] | None:
    """(dataset_id, row_count) of the owner's dataset, None if there is none."""
    return conn.execute("SELECT dataset_id, row_count FROM datasets WHERE address = ? AND name = ?",
                        (owner, name)).fetchone()


def _get(conn: sqlite3.Connection, owner: str, name: str) -> tuple[int, int]:
    found = _find(conn, owner, name)
    if found is None:
        raise not_found(name)
    return found


def _owner_bytes(conn: sqlite3.Connection, owner: str) -> int:
    return conn.execute("SELECT ifnull(sum(bytes), 0) FROM datasets WHERE address = ?",
                        (owner,)).fetchone()[0]


def _check_room(name: str, rows: int, adding_rows: int, owner_bytes: int, adding_bytes: int,
                limits: DatasetLimits) -> None:
    if rows + adding_rows > limits.max_rows:
        raise EngineError(ErrorCode.TOO_LARGE, f"The dataset '{name}' holds {rows:,} rows; adding "
                          f"{adding_rows:,} would pass the limit of {limits.max_rows:,} (setting "
                          f"dataset_max_rows). Nothing was added; delete rows or raise the setting.",
                          name=name)
    if owner_bytes + adding_bytes > limits.max_total_bytes:
        raise EngineError(ErrorCode.TOO_LARGE, f"Your datasets hold {owner_bytes:,} bytes; adding "
                          f"{adding_bytes:,} would pass the limit of {limits.max_total_bytes:,} "
                          f"(setting dataset_max_total_bytes). Nothing was added; delete rows or "
                          f"datasets, or raise the setting.", name=name)


def _list(conn: sqlite3.Connection, owner: str) -> list[DatasetSummary]:
    rows = conn.execute("SELECT name, row_count, bytes, created_at, updated_at FROM datasets "
                        "WHERE address = ? ORDER BY name COLLATE NOCASE, name", (owner,)).fetchall()
    return [DatasetSummary(*row) for row in rows]


def _page(conn: sqlite3.Connection, owner: str, name: str, offset: int, limit: int) -> RowsPage:
    dataset_id, total = _get(conn, owner, name)
    parts, used = [], 0
    for row_id, body, size in conn.execute(
            "SELECT row_id, body, size FROM dataset_rows WHERE dataset_id = ? ORDER BY row_id "
            "LIMIT ? OFFSET ?", (dataset_id, limit, offset)):
        if parts and used + size > PAGE_MAX_BYTES:
            break
        parts.append(with_id(row_id, body))
        used += size
    return RowsPage(name, RawJSON("[" + ",".join(parts) + "]"), offset, limit, len(parts), total)


def _query(conn: sqlite3.Connection, owner: str, name: str, conditions: list[Condition], limit: int,
           newest_first: bool) -> list[dict[str, Any]]:
    dataset_id, _ = _get(conn, owner, name)
    where, params = where_sql(conditions)
    order = "DESC" if newest_first else "ASC"
    sql = (f"SELECT row_id, body FROM dataset_rows WHERE dataset_id = ?{' AND ' + where if where else ''} "
           f"ORDER BY row_id {order} LIMIT ?")
    return [{"id": row_id, **json.loads(body)}
            for row_id, body in conn.execute(sql, (dataset_id, *params, limit))]


def _create(conn: sqlite3.Connection, owner: str, name: str) -> None:
    if _find(conn, owner, name) is not None:
        raise EngineError(ErrorCode.CONFLICT, f"A dataset named '{name}' already exists.", name=name)
    _insert_dataset(conn, owner, name)


def _check_can_create(conn: sqlite3.Connection, owner: str, name: str) -> None:
    count = conn.execute("SELECT count(*) FROM datasets WHERE address = ?", (owner,)).fetchone()[0]
    if count >= MAX_DATASETS:
        raise EngineError(ErrorCode.TOO_LARGE, f"You have {count:,} datasets, the most allowed; "
                          f"delete one before creating '{name}'.", name=name)


def _insert_dataset(conn: sqlite3.Connection, owner: str, name: str) -> tuple[int, int]:
    _check_can_create(conn, owner, name)
    now = time.time()
    cursor = conn.execute("INSERT INTO datasets (address, name, created_at, updated_at) "
                          "VALUES (?, ?, ?, ?)", (owner, name, now, now))
    return cursor.lastrowid or 0, 0


def _delete(conn: sqlite3.Connection, owner: str, name: str) -> bool:
    # The rows go with it (ON DELETE CASCADE).
    return conn.execute("DELETE FROM datasets WHERE address = ? AND name = ?",
                        (owner, name)).rowcount > 0


def _touch(conn: sqlite3.Connection, dataset_id: int, rows: int, size: int, now: float) -> None:
    conn.execute("UPDATE datasets SET row_count = row_count + ?, bytes = bytes + ?, updated_at = ? "
                 "WHERE dataset_id = ?", (rows, size, now, dataset_id))


def _insert_row(conn: sqlite3.Connection, dataset_id: int, text: str, size: int, now: float) -> int:
    cursor = conn.execute("INSERT INTO dataset_rows (dataset_id, body, size, created_at, updated_at) "
                          "VALUES (?, ?, ?, ?, ?)", (dataset_id, text, size, now, now))
    return cursor.lastrowid or 0


def _add_rows(conn: sqlite3.Connection, owner: str, name: str, rows: list[Any],
              limits: DatasetLimits) -> list[int]:
    dataset_id, count = _get(conn, owner, name)
    encoded = [encode_row(row, limits, f"data[{i}]") for i, row in enumerate(rows)]
    _check_room(name, count, len(encoded), _owner_bytes(conn, owner), sum(s for _, s in encoded), limits)
    now = time.time()
    ids = [_insert_row(conn, dataset_id, text, size, now) for text, size in encoded]
    _touch(conn, dataset_id, len(ids), sum(s for _, s in encoded), now)
    return ids


def _row(conn: sqlite3.Connection, dataset_id: int, name: str, row_id: int) -> tuple[str, int]:
    found = conn.execute("SELECT body, size FROM dataset_rows WHERE row_id = ? AND dataset_id = ?",
                         (row_id, dataset_id)).fetchone()
    if found is None:
        raise row_not_found(name, row_id)
    return found


def _update_row(conn: sqlite3.Connection, owner: str, name: str, row_id: int,
                fields: dict[str, Any], limits: DatasetLimits) -> None:
    dataset_id, _ = _get(conn, owner, name)
    body, old_size = _row(conn, dataset_id, name, row_id)
    text, size = encode_row({**json.loads(body), **fields}, limits, "row_data")
    _check_room(name, 0, 0, _owner_bytes(conn, owner), size - old_size, limits)
    now = time.time()
    conn.execute("UPDATE dataset_rows SET body = ?, size = ?, updated_at = ? WHERE row_id = ?",
                 (text, size, now, row_id))
    _touch(conn, dataset_id, 0, size - old_size, now)


def _delete_row(conn: sqlite3.Connection, owner: str, name: str, row_id: int) -> None:
    dataset_id, _ = _get(conn, owner, name)
    _, size = _row(conn, dataset_id, name, row_id)
    conn.execute("DELETE FROM dataset_rows WHERE row_id = ?", (row_id,))
    _touch(conn, dataset_id, -1, -size, time.time())


def set_path(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """body[a][b]... = value, making (or replacing with) objects on the way."""
    target = body
    for part in path[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[path[-1]] = value


def _update_where(conn: sqlite3.Connection, owner: str, name: str, conditions: list[Condition],
                  changes: list[tuple[tuple[str, ...], Any]], limits: DatasetLimits, limit: int,
                  dry_run: bool) -> list[int]:
    dataset_id, _ = _get(conn, owner, name)
    where, params = where_sql(conditions)
    matched = conn.execute(
        f"SELECT row_id, body, size FROM dataset_rows WHERE dataset_id = ?"
        f"{' AND ' + where if where else ''} ORDER BY row_id LIMIT ?",
        (dataset_id, *params, limit)).fetchall()
    updates, delta = [], 0
    for row_id, body, old_size in matched:
        row = json.loads(body)
        for path, value in changes:
            set_path(row, path, value)
        text, size = encode_row(row, limits, f"row {row_id}")
        updates.append((text, size, row_id))
        delta += size - old_size
    _check_room(name, 0, 0, _owner_bytes(conn, owner), delta, limits)
    if not dry_run and updates:
        now = time.time()
        conn.executemany("UPDATE dataset_rows SET body = ?, size = ?, updated_at = ? WHERE row_id = ?",
                         [(text, size, now, row_id) for text, size, row_id in updates])
        _touch(conn, dataset_id, 0, delta, now)
    return [row_id for _, _, row_id in updates]


def _check_append(conn: sqlite3.Connection, owner: str, name: str, row: Any,
                  limits: DatasetLimits, create: bool) -> int:
    _, size = encode_row(row, limits)
    found = _find(conn, owner, name)
    if found is None and not create:
        raise not_found(name)
    if found is None:
        _check_can_create(conn, owner, name)
    _check_room(name, found[1] if found else 0, 1, _owner_bytes(conn, owner), size, limits)
    return size


def _write_appends(conn: sqlite3.Connection, batch: list[_Append]) -> list[int | EngineError]:
    """One transaction for the batch; each append that breaks a rule is refused alone."""
    now = time.time()
    datasets: dict[tuple[str, str], list[int]] = {}   # -> [dataset_id, rows, rows added, bytes added]
    owner_bytes: dict[str, int] = {}
    results: list[int | EngineError] = []
    for item in batch:
        try:
            if item.run_key is not None:
                done = conn.execute("SELECT row_id FROM dataset_append_keys WHERE run_key = ?",
                                    (item.run_key,)).fetchone()
                if done is not None:  # the same node run, repeated after a crash
                    results.append(int(done[0]))
                    continue
            text, size = encode_row(item.row, item.limits)
            state = datasets.get((item.owner, item.name))
            if state is None:
                found = _find(conn, item.owner, item.name)
                if found is None:
                    if not item.create:
                        raise not_found(item.name)
                    found = _insert_dataset(conn, item.owner, item.name)
                state = datasets[(item.owner, item.name)] = [found[0], found[1], 0, 0]
            if item.owner not in owner_bytes:
                owner_bytes[item.owner] = _owner_bytes(conn, item.owner)
            _check_room(item.name, state[1], 1, owner_bytes[item.owner], size, item.limits)
            row_id = _insert_row(conn, state[0], text, size, now)
            if item.run_key is not None:
                conn.execute("INSERT INTO dataset_append_keys (run_key, top_job_id, row_id) VALUES (?, ?, ?)",
                             (item.run_key, item.run_key.split("#", 1)[0], row_id))
            results.append(row_id)
            state[1] += 1
            state[2] += 1
            state[3] += size
            owner_bytes[item.owner] += size
        except EngineError as exc:
            results.append(exc)
        except Exception as exc:  # noqa: BLE001 - one odd row must not fail the others
            log.exception("appending a row to the dataset %r failed", item.name)
            results.append(EngineError(ErrorCode.INTERNAL, f"The row could not be stored ({exc!r}); "
                                       f"the engine log has the details."))
    for dataset_id, _, added, size in datasets.values():
        if added:
            _touch(conn, dataset_id, added, size, now)
    return results
