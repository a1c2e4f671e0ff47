"""Datasets end to end over real sockets: every message of the GUI's Datasets page, its errors
(in the matching response type, followed by the current list or rows because the GUI empties
its view on an error), the limits, paging, owners kept apart, pushes to the owner's other
pages, and a restart."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import engine.store.datasets as datasets_store
from engine.app import Engine
from engine.client import EngineClient
from tests.conftest import ClientFactory, EngineFactory, Wallet

BAD_NAMES = ["", "a/b", "a\\b", "..", ".", " padded", "padded ", "tab\there", "x" * 129, 7, None]


async def create(client: EngineClient, name: str) -> dict[str, Any]:
    return await client.request("create_dataset", name=name)


async def add(client: EngineClient, name: str, rows: list[Any]) -> dict[str, Any]:
    return await client.request("add_dataset_data", name=name, data=rows)


async def refused(client: EngineClient, msg_type: str, *, expect: str | None = None,
                  **fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The error reply and the frame that follows it (the current list or rows; `expect`
    names its type when a push of the previous change may still be on its way)."""
    client.pending_events()  # pushes of earlier requests
    reply = await client.request(msg_type, check=False, **fields)
    assert reply.get("error"), reply
    types = (expect,) if expect else ("datasets_list_response", "dataset_data_response")
    after = await client.next_event(where=lambda f: f.get("type") in types and "request_id" not in f)
    assert "error" not in after
    return reply, after


def names(frame: dict[str, Any]) -> list[str]:
    return [d["name"] for d in frame["datasets"]]


async def test_create_list_and_the_gui_burst(client: EngineClient) -> None:
    assert (await client.request("request_datasets_list"))["datasets"] == []
    reply = await create(client, "Orders 2026 · ünïcode")
    assert reply["type"] == "datasets_list_response" and "error" not in reply
    assert reply["datasets"][0]["name"] == "Orders 2026 · ünïcode" and reply["datasets"][0]["count"] == 0
    await create(client, "alpha")
    listed = await client.request("request_datasets_list")
    assert names(listed) == ["alpha", "Orders 2026 · ünïcode"]
    assert set(listed["datasets"][0]) >= {"name", "count", "size_bytes", "created_at", "updated_at"}


async def test_names_are_checked_like_preset_names_and_nothing_is_created(client: EngineClient) -> None:
    await create(client, "keep")
    for bad in BAD_NAMES:
        reply, after = await refused(client, "create_dataset", name=bad)
        assert reply["type"] == "datasets_list_response" and reply["code"] == "invalid_field", bad
        assert reply["field"] == "name" and reply["request_type"] == "create_dataset"
        assert names(after) == ["keep"], bad  # the GUI's emptied list is put back
    reply, after = await refused(client, "create_dataset")
    assert reply["code"] == "invalid_field" and names(after) == ["keep"]
    # The same names are refused by every message that names a dataset.
    for msg_type, extra in (("load_dataset_data", {}), ("delete_dataset", {}),
                            ("add_dataset_data", {"data": [{"a": 1}]}),
                            ("update_dataset_row", {"row_data": {"id": 1}}),
                            ("delete_dataset_row", {"row_id": 1})):
        reply = await client.request(msg_type, name="a/b", check=False, **extra)
        assert reply["code"] == "invalid_field" and reply["field"] == "name", msg_type


async def test_creating_an_existing_name_is_a_conflict(client: EngineClient) -> None:
    await create(client, "orders")
    await add(client, "orders", [{"n": 1}])
    reply, after = await refused(client, "create_dataset", name="orders")
    assert reply["code"] == "conflict" and "already exists" in reply["error"]
    assert after["datasets"][0]["count"] == 1  # the existing dataset was left alone


async def test_add_answers_with_the_list_and_the_rows(client: EngineClient) -> None:
    await create(client, "qa")
    reply = await add(client, "qa", [{"prompt": "hi", "response": "hello"},
                                     {"id": 999, "messages": [{"role": "user", "content": "x"}]}])
    assert reply["type"] == "dataset_data_response" and reply["name"] == "qa"
    assert reply["added"] == 2 and len(set(reply["ids"])) == 2
    rows = reply["data"]
    assert [r["id"] for r in rows] == reply["ids"] and 999 not in reply["ids"]  # ids are the engine's
    assert rows[0] == {"id": rows[0]["id"], "prompt": "hi", "response": "hello"}
    assert rows[1]["messages"] == [{"role": "user", "content": "x"}]
    listed = await client.next_event("datasets_list_response")  # sent before the rows
    assert listed["datasets"][0]["count"] == 2 and listed["datasets"][0]["size_bytes"] > 0
    loaded = await client.request("load_dataset_data", name="qa")
    assert loaded["data"] == rows and loaded["total"] == 2 and loaded["has_more"] is False


async def test_refused_rows_change_nothing(client: EngineClient) -> None:
    await create(client, "t")
    first = await add(client, "t", [{"keep": True}])
    cases = [([{"ok": 1}, "not an object"], "invalid_field"), ([[1, 2]], "invalid_field"),
             ([{"ok": 1}, None], "invalid_field")]
    for rows, code in cases:
        reply, after = await refused(client, "add_dataset_data", name="t", data=rows)
        assert reply["type"] == "dataset_data_response" and reply["code"] == code, rows
        assert after["type"] == "dataset_data_response" and after["data"] == first["data"]
    reply, _ = await refused(client, "add_dataset_data", name="t", data=[])
    assert reply["code"] == "invalid_field" and reply["field"] == "data"
    reply, _ = await refused(client, "add_dataset_data", name="t", data={"a": 1})
    assert reply["code"] == "invalid_field"
    # An unknown dataset: the GUI's table is emptied, and the list that follows drops the name.
    reply, after = await refused(client, "add_dataset_data", name="nope", data=[{"a": 1}])
    assert reply["code"] == "not_found" and "'nope'" in reply["error"] and reply["name"] == "nope"
    assert after["type"] == "datasets_list_response" and names(after) == ["t"]
    assert (await client.request("load_dataset_data", name="t"))["total"] == 1


async def test_limits_come_from_the_settings(client: EngineClient) -> None:
    await client.request("save_settings", settings={"dataset_max_row_bytes": 100,
                                                    "dataset_max_rows": 3,
                                                    "dataset_max_total_bytes": 350})
    await create(client, "a")
    await create(client, "b")
    reply, after = await refused(client, "add_dataset_data", name="a", data=[{"text": "x" * 200}])
    assert reply["code"] == "too_large" and "dataset_max_row_bytes" in reply["error"]
    assert after["total"] == 0
    await add(client, "a", [{"n": 1}, {"n": 2}])
    reply, after = await refused(client, "add_dataset_data", name="a", data=[{"n": 3}, {"n": 4}])
    assert reply["code"] == "too_large" and "dataset_max_rows" in reply["error"]
    assert after["total"] == 2  # neither row was added
    await add(client, "b", [{"text": "y" * 80}, {"text": "y" * 80}, {"text": "y" * 80}])
    reply, _ = await refused(client, "add_dataset_data", name="a", data=[{"text": "z" * 80}])
    assert reply["code"] == "too_large" and "dataset_max_total_bytes" in reply["error"]
    # Growing a row by an update counts too.
    row_id = (await client.request("load_dataset_data", name="a"))["data"][0]["id"]
    reply, after = await refused(client, "update_dataset_row", name="a",
                                 row_data={"id": row_id, "text": "w" * 95})
    assert reply["code"] == "too_large" and after["data"][0] == {"id": row_id, "n": 1}


async def test_pages_are_bounded(client: EngineClient, monkeypatch: pytest.MonkeyPatch) -> None:
    await create(client, "big")
    await add(client, "big", [{"i": i} for i in range(25)])
    page = await client.request("load_dataset_data", name="big", offset=10, limit=10)
    assert [r["i"] for r in page["data"]] == list(range(10, 20))
    assert (page["offset"], page["limit"], page["total"], page["has_more"]) == (10, 10, 25, True)
    last = await client.request("load_dataset_data", name="big", offset=20, limit=10)
    assert [r["i"] for r in last["data"]] == list(range(20, 25)) and last["has_more"] is False
    assert (await client.request("load_dataset_data", name="big"))["limit"] == datasets_store.PAGE_DEFAULT
    for bad in ({"offset": -1}, {"limit": 0}, {"limit": datasets_store.PAGE_MAX + 1}, {"offset": "1"}):
        reply = await client.request("load_dataset_data", name="big", check=False, **bad)
        assert reply["type"] == "dataset_data_response" and reply["code"] == "invalid_field", bad
    # Large rows: the page stops before it grows past its byte bound (one row at least).
    monkeypatch.setattr(datasets_store, "PAGE_MAX_BYTES", 250)
    await create(client, "wide")
    await add(client, "wide", [{"t": "x" * 100} for _ in range(5)])
    page = await client.request("load_dataset_data", name="wide")
    assert len(page["data"]) == 2 and page["total"] == 5 and page["has_more"] is True


async def test_update_sets_fields_and_keeps_the_others(client: EngineClient) -> None:
    await create(client, "qa")
    rows = (await add(client, "qa", [{"prompt": "p", "response": "r", "extra": 1}, {"prompt": "q"}]))["data"]
    reply = await client.request("update_dataset_row", name="qa",
                                 row_data={"id": rows[0]["id"], "prompt": "P2", "response": "R2"})
    assert reply["type"] == "dataset_data_response" and reply["row_id"] == rows[0]["id"]
    assert reply["data"][0] == {"id": rows[0]["id"], "prompt": "P2", "response": "R2", "extra": 1}
    assert reply["data"][1] == rows[1]
    # The id may come back as text (GUIs keep what they got).
    reply = await client.request("update_dataset_row", name="qa",
                                 row_data={"id": str(rows[1]["id"]), "prompt": "Q2"})
    assert reply["data"][1]["prompt"] == "Q2"


async def test_update_errors_change_nothing(client: EngineClient) -> None:
    await create(client, "qa")
    await create(client, "other")
    rows = (await add(client, "qa", [{"v": 1}]))["data"]
    foreign = (await add(client, "other", [{"v": 2}]))["data"][0]["id"]
    for row_data, code in (({"v": 5}, "invalid_field"), ({"id": "abc", "v": 5}, "invalid_field"),
                           ({"id": 0, "v": 5}, "invalid_field"), ({"id": True, "v": 5}, "invalid_field"),
                           ({"id": 123456, "v": 5}, "not_found"), ({"id": foreign, "v": 5}, "not_found")):
        reply, after = await refused(client, "update_dataset_row", name="qa", row_data=row_data,
                                     expect="dataset_data_response")
        assert reply["type"] == "dataset_data_response" and reply["code"] == code, row_data
        assert after["data"] == rows, row_data
    reply, _ = await refused(client, "update_dataset_row", name="qa", row_data="x")
    assert reply["code"] == "invalid_field" and reply["field"] == "row_data"
    assert (await client.request("load_dataset_data", name="other"))["data"][0]["v"] == 2


async def test_delete_row_and_dataset(client: EngineClient) -> None:
    await create(client, "d")
    rows = (await add(client, "d", [{"n": 1}, {"n": 2}, {"n": 3}]))["data"]
    reply = await client.request("delete_dataset_row", name="d", row_id=rows[1]["id"])
    assert [r["n"] for r in reply["data"]] == [1, 3] and reply["total"] == 2
    reply, after = await refused(client, "delete_dataset_row", name="d", row_id=rows[1]["id"],
                                 expect="dataset_data_response")
    assert reply["code"] == "not_found" and [r["n"] for r in after["data"]] == [1, 3]
    reply, _ = await refused(client, "delete_dataset_row", name="d", row_id="x",
                             expect="dataset_data_response")
    assert reply["code"] == "invalid_field" and reply["field"] == "row_id"
    listed = await client.request("request_datasets_list")
    assert listed["datasets"][0]["count"] == 2
    await create(client, "e")
    reply = await client.request("delete_dataset", name="d")
    assert reply["type"] == "datasets_list_response" and names(reply) == ["e"]
    reply, after = await refused(client, "delete_dataset", name="d")
    assert reply["code"] == "not_found" and names(after) == ["e"]
    reply, after = await refused(client, "load_dataset_data", name="d")
    assert reply["type"] == "dataset_data_response" and reply["code"] == "not_found"
    assert after["type"] == "datasets_list_response" and names(after) == ["e"]
    # A new dataset of the same name starts empty; the old ids are never reused.
    await create(client, "d")
    again = await add(client, "d", [{"n": 9}])
    assert again["total"] == 1 and min(again["ids"]) > max(r["id"] for r in rows)


async def test_owners_never_see_each_others_datasets(make_engine: EngineFactory, owner: Wallet,
                                                     stranger: Wallet) -> None:
    engine = await make_engine(owners=(owner.address, stranger.address))
    mine = await EngineClient.connect(engine.url, owner.key)
    theirs = await EngineClient.connect(engine.url, stranger.key)
    try:
        await create(mine, "private")
        rows = (await add(mine, "private", [{"secret": "s3cr3t"}]))["data"]
        assert (await theirs.request("request_datasets_list"))["datasets"] == []
        for msg_type, extra in (("load_dataset_data", {}), ("delete_dataset", {}),
                                ("add_dataset_data", {"data": [{"x": 1}]}),
                                ("update_dataset_row", {"row_data": {"id": rows[0]["id"], "x": 1}}),
                                ("delete_dataset_row", {"row_id": rows[0]["id"]})):
            reply = await theirs.request(msg_type, name="private", check=False, **extra)
            assert reply["code"] == "not_found", msg_type
        await create(theirs, "private")  # the same name is theirs to use
        await add(theirs, "private", [{"mine": False}])
        loaded = await mine.request("load_dataset_data", name="private")
        assert loaded["data"] == rows
        assert all("s3cr3t" not in str(e) for e in theirs.pending_events())
    finally:
        await mine.close()
        await theirs.close()


async def test_changes_reach_the_owners_other_pages(make_client: ClientFactory) -> None:
    viewer, other_viewer, editor = await make_client(), await make_client(), await make_client()
    for c in (viewer, other_viewer, editor):
        await c.request("request_datasets_list")
    await create(editor, "x")
    await create(editor, "y")
    await viewer.request("load_dataset_data", name="x")
    await other_viewer.request("load_dataset_data", name="y")
    for c in (viewer, other_viewer, editor):
        c.pending_events()
    added = await add(editor, "x", [{"n": 1}])
    pushed = await viewer.next_event("dataset_data_response")
    assert pushed["name"] == "x" and pushed["data"] == added["data"] and "request_id" not in pushed
    listed = await other_viewer.next_event("datasets_list_response")
    assert {d["name"]: d["count"] for d in listed["datasets"]} == {"x": 1, "y": 0}
    await asyncio.sleep(0.3)
    # The page showing y never gets x's rows (the GUI would show them as y's), and the editor
    # does not get again what its reply carried.
    assert not [e for e in other_viewer.pending_events() if e["type"] == "dataset_data_response"]
    assert not [e for e in editor.pending_events() if e["type"] == "dataset_data_response"]
    # Deleting x empties the page that showed it.
    await editor.request("delete_dataset", name="x")
    assert names(await viewer.next_event("datasets_list_response")) == ["y"]
    emptied = await viewer.next_event("dataset_data_response")
    assert emptied["name"] == "x" and emptied["data"] == [] and emptied["total"] == 0
    # A page that deleted its own dataset (and cleared its selection) stops following that name.
    await other_viewer.request("delete_dataset", name="y")
    await create(editor, "y")
    await add(editor, "y", [{"n": 2}])
    await other_viewer.next_event("datasets_list_response", where=lambda f: names(f) == ["y"])
    await asyncio.sleep(0.3)
    assert not [e for e in other_viewer.pending_events() if e["type"] == "dataset_data_response"]


async def test_no_pushed_frame_carries_an_error(make_client: ClientFactory) -> None:
    watcher, editor = await make_client(keep_texts=True), await make_client()
    await watcher.request("request_datasets_list")
    await create(editor, "z")
    await watcher.request("load_dataset_data", name="z")
    await editor.request("add_dataset_data", name="nope", data=[{"a": 1}], check=False)
    await editor.request("create_dataset", name="z", check=False)
    await add(editor, "z", [{"a": 1}])
    await watcher.next_event("dataset_data_response")
    assert watcher.texts is not None
    assert not [t for t in watcher.texts if '"error"' in t]


async def test_a_restart_keeps_every_dataset(make_engine: EngineFactory, owner: Wallet) -> None:
    first = await make_engine()
    client = await EngineClient.connect(first.url, owner.key)
    await create(client, "kept")
    await create(client, "empty")
    rows = (await add(client, "kept", [{"n": i, "t": "ü"} for i in range(3)]))["data"]
    await client.close()
    await first.stop()
    second = await make_engine()
    client = await EngineClient.connect(second.url, owner.key)
    try:
        listed = await client.request("request_datasets_list")
        assert {d["name"]: d["count"] for d in listed["datasets"]} == {"kept": 3, "empty": 0}
        assert (await client.request("load_dataset_data", name="kept"))["data"] == rows
    finally:
        await client.close()


async def test_too_many_datasets(client: EngineClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets_store, "MAX_DATASETS", 2)
    await create(client, "one")
    await create(client, "two")
    reply, after = await refused(client, "create_dataset", name="three")
    assert reply["code"] == "too_large" and names(after) == ["one", "two"]


def test_the_messages_are_registered_with_their_reply_types(engine: Engine) -> None:
    registry = engine.server.registry
    for msg_type, reply_type in (("request_datasets_list", "datasets_list_response"),
                                 ("create_dataset", "datasets_list_response"),
                                 ("delete_dataset", "datasets_list_response"),
                                 ("load_dataset_data", "dataset_data_response"),
                                 ("add_dataset_data", "dataset_data_response"),
                                 ("update_dataset_row", "dataset_data_response"),
                                 ("delete_dataset_row", "dataset_data_response")):
        spec = registry.get(msg_type)
        assert spec is not None and spec.reply_type == reply_type
