"""Datasets beyond their storage: keeping the owner's open Datasets pages current (DatasetFeed),
and the small service workflow modules reach as `ctx.datasets` (OwnerDatasets).

Why the feed tracks connections instead of publishing to every connection of the owner: the web
GUI shows any `dataset_data_response` it receives as the rows of the dataset it has selected,
whatever the frame's `name` says, so one dataset's rows pushed to a page showing another would
appear under the wrong name. A dataset's rows therefore go only to the connections whose last
`load_dataset_data` named it (the page they asked for), and the list to the connections that
asked for the list. Changes made by workflows are coalesced: at most one push per owner every
WORKFLOW_PUSH_DELAY, however fast a workflow appends; a slow client keeps only the newest push.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from engine.events import Delivery
from engine.protocol.errors import EngineError
from engine.protocol.frames import RawJSON, encode
from engine.components.api import ModuleError
from engine.store.dataset_conditions import key_values, parse_conditions, parse_path, typed
from engine.store.datasets import (PAGE_DEFAULT, QUERY_MAX, UPDATE_MAX, DatasetLimits,
                                   DatasetsStore, check_name)

log = logging.getLogger(__name__)

WORKFLOW_PUSH_DELAY = 0.25
LIST_KEY = "datasets_list"    # coalescing keys: a newer push replaces a queued older one
DATA_KEY = "dataset_data"
_UNSET = object()


@dataclass(frozen=True)
class View:
    name: str
    offset: int
    limit: int


@dataclass
class _Dirty:
    names: dict[str, Any] = field(default_factory=dict)  # name -> the connection to skip (or None)
    list_skip: Any = _UNSET
    due: float = 0.0


def _merge(current: Any, skip: Any) -> Any:
    """Skip a connection only while every merged change came from it (it has them all)."""
    if current is _UNSET:
        return skip
    return current if current is skip else None


def list_frame(datasets: list[Any]) -> dict[str, Any]:
    return {"type": "datasets_list_response", "datasets": [d.public() for d in datasets]}


class DatasetFeed:
    def __init__(self, store: DatasetsStore) -> None:
        self._store = store
        self._lists: dict[str, weakref.WeakSet[Any]] = {}
        self._views: dict[str, weakref.WeakKeyDictionary[Any, View]] = {}
        self._dirty: dict[str, _Dirty] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- who shows what (handlers call these) ------------------------------------------------

    def listening(self, conn: Any, owner: str) -> None:
        self._lists.setdefault(owner, weakref.WeakSet()).add(conn)

    def viewing(self, conn: Any, owner: str, name: str, offset: int, limit: int) -> None:
        self.listening(conn, owner)
        self._views.setdefault(owner, weakref.WeakKeyDictionary())[conn] = View(name, offset, limit)

    def stop_viewing(self, conn: Any, owner: str, name: str) -> None:
        """The connection deleted `name` (the GUI then clears its selection)."""
        views = self._views.get(owner)
        if views is not None and (view := views.get(conn)) is not None and view.name == name:
            del views[conn]

    def view_of(self, conn: Any, owner: str, name: str) -> View:
        """The page of `name` this connection last asked for (the first page if none)."""
        view = self._views.get(owner, {}).get(conn)
        return view if view is not None and view.name == name else View(name, 0, PAGE_DEFAULT)

    # -- changes -----------------------------------------------------------------------------

    def changed(self, owner: str, name: str, *, by: Any = None, list_sent: bool = False,
                delay: float = 0.0) -> None:
        """`name` of `owner` changed. `by`: the connection whose reply already carries the
        dataset's new rows (and, with list_sent, the new list); it is not sent them again."""
        dirty = self._dirty.setdefault(owner, _Dirty())
        dirty.names[name] = _merge(dirty.names.get(name, _UNSET), by)
        dirty.list_skip = _merge(dirty.list_skip, by if list_sent else None)
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        timer = self._timers.get(owner)
        if timer is not None:
            if dirty.due <= due:
                return
            timer.cancel()
        dirty.due = due
        self._timers[owner] = loop.call_at(due, self._start_push, owner)

    def _start_push(self, owner: str) -> None:
        self._timers.pop(owner, None)
        dirty = self._dirty.pop(owner, None)
        if dirty is None:
            return
        task = asyncio.ensure_future(self._push(owner, dirty))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push(self, owner: str, dirty: _Dirty) -> None:
        try:
            listeners = [c for c in self._lists.get(owner, ()) if c is not dirty.list_skip]
            if listeners:
                text = encode(list_frame(await self._store.list(owner)))
                for conn in listeners:
                    conn.send_text(text, Delivery.LATEST, LIST_KEY)
            views = self._views.get(owner)
            for name, skip in dirty.names.items():
                await self._push_rows(owner, name, skip, views)
        except Exception:  # noqa: BLE001 - a failed push only leaves a page stale
            log.exception("pushing the datasets of %s failed", owner)

    async def _push_rows(self, owner: str, name: str, skip: Any,
                         views: weakref.WeakKeyDictionary[Any, View] | None) -> None:
        if not views:
            return
        pages: dict[tuple[int, int], list[Any]] = {}
        for conn, view in list(views.items()):
            if view.name == name and conn is not skip:
                pages.setdefault((view.offset, view.limit), []).append(conn)
        for (offset, limit), conns in pages.items():
            try:
                frame = rows_frame(await self._store.page(owner, name, offset, limit))
            except EngineError:  # deleted meanwhile: the page shows no rows, and stops following
                frame = {"type": "dataset_data_response", "name": name, "data": RawJSON("[]"),
                         "offset": 0, "limit": limit, "total": 0, "has_more": False}
                for conn in conns:
                    views.pop(conn, None)
            text = encode(frame)
            for conn in conns:
                conn.send_text(text, Delivery.LATEST, DATA_KEY)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._dirty.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def rows_frame(page: Any) -> dict[str, Any]:
    return {"type": "dataset_data_response", **page.public()}


class OwnerDatasets:
    """A job owner's datasets as workflow modules see them (`ctx.datasets`): append, query and
    update rows within the owner's limits. Failures raise ModuleError with a readable text.
    Field conditions and changes take the forms of engine.store.dataset_conditions."""

    def __init__(self, owner: str, store: DatasetsStore, feed: DatasetFeed,
                 limits: DatasetLimits) -> None:
        self._owner = owner
        self._store = store
        self._feed = feed
        self.limits = limits

    async def append(self, name: str, row: Any, *, create: bool = False,
                     run_key: str | None = None) -> int:
        """Store `row` (an object) as a new row; returns its id once committed. With
        `run_key` (ctx.run_key), an append already made under that key returns its row
        instead of adding another (a node run repeated after a crash)."""
        name = _dataset_name(name)
        row_id = await _module_await(self._store.append(self._owner, name, row, self.limits,
                                                        create=create, run_key=run_key))
        self._feed.changed(self._owner, name, delay=WORKFLOW_PUSH_DELAY)
        return row_id

    async def check_append(self, name: str, row: Any, *, create: bool = False) -> int:
        """What append would refuse, without writing anything; returns the row's size."""
        name = _dataset_name(name)
        return await _module_await(self._store.check_append(self._owner, name, row, self.limits,
                                                            create=create))

    async def query(self, name: str, where: Any = None, *, limit: Any = 100,
                    newest_first: bool = True) -> list[dict[str, Any]]:
        """Rows matching every condition of `where`, newest first, at most `limit` (a whole
        number, or its text as the GUI sends it, up to QUERY_MAX; empty: 100)."""
        name = _dataset_name(name)
        conditions = _module_call(parse_conditions, where, "where")
        count = _module_call(whole_number, 100 if limit in (None, "") else limit, "limit", QUERY_MAX)
        return await _module_await(self._store.query(self._owner, name, conditions, count,
                                                     newest_first=newest_first))

    async def update(self, name: str, where: Any, changes: Any, *, limit: Any = 1000,
                     dry_run: bool = False) -> list[int]:
        """Set `changes` on the rows matching `where`, oldest first, at most `limit` (up to
        UPDATE_MAX; empty: 1000), all or none; returns their ids. With dry_run, only finds them."""
        name = _dataset_name(name)
        count = _module_call(whole_number, 1000 if limit in (None, "") else limit, "limit", UPDATE_MAX)
        conditions = _module_call(parse_conditions, where, "where")
        if not conditions:
            raise ModuleError("'where' needs at least one condition (to change every row, "
                              "match on a field every row has, e.g. 'id >' 0)")
        parsed = _module_call(parse_changes, changes, "set")
        ids = await _module_await(self._store.update_where(self._owner, name, conditions, parsed,
                                                           self.limits, count, dry_run=dry_run))
        if ids and not dry_run:
            self._feed.changed(self._owner, name, delay=WORKFLOW_PUSH_DELAY)
        return ids


def whole_number(value: Any, field: str, maximum: int) -> int:
    """A count from a node's config: a number or its text (the GUI's number fields send text)."""
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not (1 <= number <= maximum and number == int(number)):
        raise EngineError.invalid(field, f"must be a whole number from 1 to {maximum:,}")
    return int(number)


def parse_changes(value: Any, field: str = "set") -> list[tuple[tuple[str, ...], Any]]:
    """(field path, value) pairs to set; values typed like condition values."""
    changes = []
    for key, raw in key_values(value, field):
        path = parse_path(key, field)
        if path == ("id",):
            raise EngineError.invalid(field, "cannot change a row's id")
        changes.append((path, typed(raw)))
    if not changes:
        raise EngineError.invalid(field, "needs at least one field to set")
    return changes


def _dataset_name(name: Any) -> str:
    """A name typed into a node's config: surrounding spaces are forgiven, the rest is checked
    like any dataset name."""
    return _module_call(check_name, name.strip() if isinstance(name, str) else name, "dataset")


def _module_call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except EngineError as exc:
        raise ModuleError(exc.message) from None


async def _module_await(call: Any) -> Any:
    try:
        return await call
    except EngineError as exc:
        raise ModuleError(exc.message) from None
