"""The Datasets page: list, load a page of rows, create, delete, add rows, update and delete one
row. Every change reaches the owner's other open Datasets pages (engine/datasets.py).

Errors come in the matching response type (`datasets_list_response` for the list's messages,
`dataset_data_response` for the rows'), which is what clears the GUI's spinners; but the GUI
also empties the list or the table on such an error, so a refused change is followed by the
current list or rows (`on_refused`), and nothing on screen is lost.
"""

from __future__ import annotations

from typing import Any

from engine.datasets import list_frame, rows_frame
from engine.handlers.registry import Request, handler
from engine.protocol.errors import EngineError
from engine.protocol.schema import Field, Integer, Name, Object, Schema
from engine.store.datasets import PAGE_DEFAULT, PAGE_MAX, DatasetLimits, not_found

NAME = Name()
MAX_ROWS_PER_REQUEST = 10_000
MAX_ROW_ID = 2**63 - 1


def _row_id_problem(value: Any) -> str | None:
    text = str(value)
    if not text.isdigit() or not 0 < int(text) <= MAX_ROW_ID:
        return "must be a row id (a positive whole number)"
    return None


ROW_ID = Field((int, str), required=True, max_len=20, check=_row_id_problem)


async def _list(req: Request) -> dict[str, Any]:
    return list_frame(await req.engine.datasets.list(req.owner))


async def _limits(req: Request) -> DatasetLimits:
    return DatasetLimits.from_settings(await req.engine.settings.get(req.owner))


async def _rows_for(req: Request, name: str) -> dict[str, Any]:
    """The page of `name` this connection shows (the first page if none), as a reply."""
    feed = req.engine.dataset_feed
    view = feed.view_of(req.connection, req.owner, name)
    page = await req.engine.datasets.page(req.owner, name, view.offset, view.limit)
    feed.viewing(req.connection, req.owner, name, view.offset, view.limit)
    return rows_frame(page)


# -- what follows a refusal ------------------------------------------------------------------

async def _current_list(req: Request, _error: EngineError) -> dict[str, Any] | None:
    try:
        return await _list(req)
    except EngineError:
        return None


async def _current_rows(req: Request, error: EngineError) -> dict[str, Any] | None:
    """The rows the page showed before the refused change, or the list when the dataset is
    gone (so that the page drops it)."""
    name = req.payload.get("name")
    try:
        if isinstance(name, str) and await req.engine.datasets.exists(req.owner, name):
            return await _rows_for(req, name)
        return await _list(req)
    except EngineError:
        return None


async def _list_if_missing(req: Request, error: EngineError) -> dict[str, Any] | None:
    name = req.payload.get("name")
    try:
        if isinstance(name, str) and await req.engine.datasets.exists(req.owner, name):
            return None
        return await _list(req)
    except EngineError:
        return None


# -- the messages ----------------------------------------------------------------------------

@handler("request_datasets_list", reply="datasets_list_response")
async def request_datasets_list(req: Request) -> dict[str, Any]:
    req.engine.dataset_feed.listening(req.connection, req.owner)
    frame = await _list(req)
    del frame["type"]
    return frame


@handler("load_dataset_data", reply="dataset_data_response", on_refused=_list_if_missing,
         schema=Schema({"name": NAME, "offset": Integer(min_value=0, max_value=10**9),
                        "limit": Integer(min_value=1, max_value=PAGE_MAX)}))
async def load_dataset_data(req: Request) -> dict[str, Any]:
    name = req.fields["name"]
    offset, limit = req.fields.get("offset", 0), req.fields.get("limit", PAGE_DEFAULT)
    page = await req.engine.datasets.page(req.owner, name, offset, limit)
    req.engine.dataset_feed.viewing(req.connection, req.owner, name, offset, limit)
    return page.public()


@handler("create_dataset", reply="datasets_list_response", on_refused=_current_list,
         schema=Schema({"name": NAME}))
async def create_dataset(req: Request) -> dict[str, Any]:
    name = req.fields["name"]
    await req.engine.datasets.create(req.owner, name)
    feed = req.engine.dataset_feed
    feed.listening(req.connection, req.owner)
    feed.changed(req.owner, name, by=req.connection, list_sent=True)
    frame = await _list(req)
    del frame["type"]
    return {**frame, "name": name, "status": f"Dataset '{name}' created."}


@handler("delete_dataset", reply="datasets_list_response", on_refused=_current_list,
         schema=Schema({"name": NAME}))
async def delete_dataset(req: Request) -> dict[str, Any]:
    name = req.fields["name"]
    if not await req.engine.datasets.delete(req.owner, name):
        raise not_found(name)
    feed = req.engine.dataset_feed
    feed.stop_viewing(req.connection, req.owner, name)
    feed.changed(req.owner, name, by=req.connection, list_sent=True)
    frame = await _list(req)
    del frame["type"]
    return {**frame, "name": name, "status": f"Dataset '{name}' deleted."}


@handler("add_dataset_data", reply="dataset_data_response", on_refused=_current_rows,
         schema=Schema({"name": NAME, "data": Field((list,), required=True, min_len=1,
                                                    max_len=MAX_ROWS_PER_REQUEST)}))
async def add_dataset_data(req: Request) -> dict[str, Any]:
    """Answers with the rows and, before them, the list (whose counts changed)."""
    name = req.fields["name"]
    ids = await req.engine.datasets.add_rows(req.owner, name, req.fields["data"], await _limits(req))
    rows = await _rows_for(req, name)
    req.connection.send(await _list(req))
    req.engine.dataset_feed.changed(req.owner, name, by=req.connection, list_sent=True)
    del rows["type"]
    return {**rows, "added": len(ids), "ids": ids}


@handler("update_dataset_row", reply="dataset_data_response", on_refused=_current_rows,
         schema=Schema({"name": NAME, "row_data": Object(required=True)}))
async def update_dataset_row(req: Request) -> dict[str, Any]:
    """Sets the fields given in row_data on the row `row_data.id`; its other fields stay."""
    name, row_data = req.fields["name"], req.fields["row_data"]
    if "id" not in row_data:
        raise EngineError.invalid("row_data.id", "is required")
    row_id = int(ROW_ID.validate("row_data.id", row_data["id"]))
    fields = {key: value for key, value in row_data.items() if key != "id"}
    await req.engine.datasets.update_row(req.owner, name, row_id, fields, await _limits(req))
    rows = await _rows_for(req, name)
    req.engine.dataset_feed.changed(req.owner, name, by=req.connection)
    del rows["type"]
    return {**rows, "row_id": row_id}


@handler("delete_dataset_row", reply="dataset_data_response", on_refused=_current_rows,
         schema=Schema({"name": NAME, "row_id": ROW_ID}))
async def delete_dataset_row(req: Request) -> dict[str, Any]:
    name, row_id = req.fields["name"], int(req.fields["row_id"])
    await req.engine.datasets.delete_row(req.owner, name, row_id)
    rows = await _rows_for(req, name)
    req.engine.dataset_feed.changed(req.owner, name, by=req.connection)
    del rows["type"]
    return {**rows, "row_id": row_id}
