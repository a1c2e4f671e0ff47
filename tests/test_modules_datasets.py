"""The dataset modules in real workflows over real sockets: dataset_append, dataset_query and
dataset_update in EXECUTE and SIMULATE, their errors and limits, many runs appending at once,
pushes to an open Datasets page, and rows that survive a kill of the engine process."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from engine.client import EngineClient
from engine.components.catalog import BUILTIN_DIR
from tests.conftest import ClientFactory, Wallet
from tests.runtime_support import collect, edge, final, node, run, start, workflow

GUI_TYPES = {"string", "integer", "float", "folderpath", "boolean", "textarea", "code", "enum",
             "list", "cron_editor", "dynamic_key_value_editor"}
MODULES = ("dataset_append", "dataset_query", "dataset_update")


def kv(**pairs: Any) -> list[dict[str, Any]]:
    """A key/value property as the GUI's editor stores it."""
    return [{"name": key.replace("__", " "), "value": value, "type": "Text"} for key, value in pairs.items()]


def appender(dataset: str = "runs", data: dict[str, Any] | None = None, **config: Any) -> dict[str, Any]:
    return workflow([node("s", "set_data", data=data or {"n": 1, "who": "ü"}),
                     node("a", "dataset_append", dataset=dataset, **config)], [edge("s", "a")])


def one(module_id: str, **config: Any) -> dict[str, Any]:
    return workflow([node("m", module_id, **config)], [])


def logs(events: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in events if e["type"] == "log"]


async def rows(client: EngineClient, name: str) -> list[dict[str, Any]]:
    return (await client.request("load_dataset_data", name=name))["data"]


async def seed(client: EngineClient, name: str, data: list[dict[str, Any]]) -> list[int]:
    await client.request("create_dataset", name=name)
    return (await client.request("add_dataset_data", name=name, data=data))["ids"]


def test_manifests_use_only_the_gui_property_types() -> None:
    for module_id in MODULES:
        manifest = json.loads((BUILTIN_DIR / "modules" / module_id / "manifest.json").read_text())
        assert manifest["id"] == module_id
        for prop in manifest["properties"]:
            assert prop["type"] in GUI_TYPES, (module_id, prop)
            if prop["type"] == "enum":
                assert prop["options"] and prop["default"] in prop["options"]
        assert [p["name"] for p in manifest["output_ports"]] == ["output", "error"]


async def test_a_workflow_run_three_times_appends_three_rows(client: EngineClient) -> None:
    await client.request("create_dataset", name="runs")
    ids = []
    for i in range(3):
        _, events = await run(client, appender(data={"n": i, "who": "ü"}))
        status = final(events)
        assert status["status"] == "SUCCEEDED", status
        ids.append(status["result"]["data"]["dataset_row_id"])
    stored = await rows(client, "runs")
    assert stored == [{"id": ids[i], "n": i, "who": "ü"} for i in range(3)]
    listed = await client.request("request_datasets_list")
    assert listed["datasets"][0]["count"] == 3


async def test_append_a_field_or_a_value(client: EngineClient) -> None:
    await client.request("create_dataset", name="runs")
    data = {"order": {"id": "A-1", "items": [1, 2]}, "total": 12.5}
    for field in ("order", "total", " order.items "):
        _, events = await run(client, appender(data=data, field=field))
        assert final(events)["status"] == "SUCCEEDED"
    stored = await rows(client, "runs")
    # An `id` field in the data is replaced by the row's own id.
    assert [{k: v for k, v in r.items() if k != "id"} for r in stored] == [
        {"items": [1, 2]}, {"value": 12.5}, {"value": [1, 2]}]
    _, events = await run(client, appender(data=data, field="missing.path"))
    status = final(events)
    assert status["status"] == "FAILED" and "no field 'missing.path'" in status["error"]
    assert len(await rows(client, "runs")) == 3


async def test_append_to_a_missing_dataset_fails_unless_asked_to_create_it(client: EngineClient) -> None:
    _, events = await run(client, appender(dataset="nope"))
    status = final(events)
    assert status["status"] == "FAILED" and "The dataset 'nope' was not found." in status["error"]
    assert (await client.request("request_datasets_list"))["datasets"] == []
    for bad in ("", "a/b", ".."):
        _, events = await run(client, appender(dataset=bad))
        assert final(events)["status"] == "FAILED" and "'dataset'" in final(events)["error"], bad
    _, events = await run(client, appender(dataset="made", create_if_missing=True))
    assert final(events)["status"] == "SUCCEEDED"
    assert [d["name"] for d in (await client.request("request_datasets_list"))["datasets"]] == ["made"]
    assert len(await rows(client, "made")) == 1


async def test_the_error_port_catches_a_refused_append(client: EngineClient) -> None:
    wf = workflow([node("s", "set_data", data={"n": 1}), node("a", "dataset_append", dataset="nope"),
                   node("e", "set_data", data={"handled": True})],
                  [edge("s", "a"), edge("a", "e", port="error")])
    _, events = await run(client, wf)
    status = final(events)
    assert status["status"] == "SUCCEEDED" and status["result"]["data"]["handled"] is True
    assert "was not found" in status["result"]["data"]["error"]["message"]


async def test_simulate_appends_nothing_and_says_what_it_would_write(client: EngineClient) -> None:
    await client.request("create_dataset", name="runs")
    _, events = await run(client, appender(data={"n": 7, "note": "simulated"}), mode="SIMULATE")
    status = final(events)
    assert status["status"] == "SUCCEEDED"
    assert status["result"]["data"]["would_append"]["dataset"] == "runs"
    assert "dataset_row_id" not in status["result"]["data"]
    line = next(m for m in logs(events) if m.startswith("Would append"))
    assert "'runs'" in line and '"note": "simulated"' in line and "nothing written" in line
    assert await rows(client, "runs") == []
    # A simulation still says what the real run would refuse.
    _, events = await run(client, appender(dataset="nope"), mode="SIMULATE")
    assert final(events)["status"] == "FAILED" and "was not found" in final(events)["error"]
    assert (await client.request("request_datasets_list"))["datasets"][0]["count"] == 0


async def test_limits_hold_for_workflows(client: EngineClient) -> None:
    await client.request("save_settings", settings={"dataset_max_rows": 2, "dataset_max_row_bytes": 200})
    await client.request("create_dataset", name="runs")
    for _ in range(2):
        assert final((await run(client, appender()))[1])["status"] == "SUCCEEDED"
    status = final((await run(client, appender()))[1])
    assert status["status"] == "FAILED" and "dataset_max_rows" in status["error"]
    await client.request("create_dataset", name="wide")
    status = final((await run(client, appender(dataset="wide", data={"t": "x" * 300})))[1])
    assert status["status"] == "FAILED" and "dataset_max_row_bytes" in status["error"]
    assert len(await rows(client, "runs")) == 2 and await rows(client, "wide") == []


async def test_many_runs_appending_at_once_each_get_their_row(client: EngineClient) -> None:
    await client.request("create_dataset", name="burst")
    count = 60
    job_ids = [await start(client, appender(dataset="burst", data={"i": i})) for i in range(count)]
    results = [final(await collect(client, job_id, timeout=60)) for job_id in job_ids]
    assert all(r["status"] == "SUCCEEDED" for r in results)
    ids = [r["result"]["data"]["dataset_row_id"] for r in results]
    stored = {r["id"]: r["i"] for r in await rows(client, "burst")}
    assert len(set(ids)) == count and {stored[row_id] for row_id in ids} == set(range(count))
    assert {r["result"]["data"]["i"]: r["result"]["data"]["dataset_row_id"] for r in results} == \
        {i: row_id for row_id, i in stored.items()}


async def test_an_open_page_follows_a_workflow_that_appends(make_client: ClientFactory) -> None:
    page, runner = await make_client(), await make_client()
    await runner.request("create_dataset", name="live")
    await page.request("request_datasets_list")
    await page.request("load_dataset_data", name="live")
    for i in range(5):
        await run(runner, appender(dataset="live", data={"i": i}))

    async def until_five() -> dict[str, Any]:
        while True:
            frame = await page.next_event("dataset_data_response")
            if frame["total"] == 5:
                return frame
    frame = await asyncio.wait_for(until_five(), 15)
    assert [r["i"] for r in frame["data"]] == list(range(5)) and "error" not in frame


async def test_query_by_field_conditions_newest_first(client: EngineClient) -> None:
    ids = await seed(client, "people", [
        {"name": "ann", "age": 17, "status": "new", "tags": ["x", "y"], "address": {"city": "Oslo"},
         "straße": "Köln"},
        {"name": "bob", "age": 30, "status": "new", "tags": ["y"], "address": {"city": "Rome"}},
        {"name": "cy", "age": "31", "status": "done", "zip": "0012", "address": {"city": "Oslo"}},
        {"name": "dee", "age": 45, "status": "new", "vip": True, "note": None}])

    async def query(**config: Any) -> list[str]:
        _, events = await run(client, one("dataset_query", dataset="people", **config))
        status = final(events)
        assert status["status"] == "SUCCEEDED", status
        return [r["name"] for r in status["result"]["data"][config.get("output_field", "rows")]]

    assert await query() == ["dee", "cy", "bob", "ann"]
    assert await query(where=kv(status="new")) == ["dee", "bob", "ann"]
    assert await query(where=kv(status="new", **{"age >": "18"})) == ["dee", "bob"]
    assert await query(where=kv(**{"age >=": "30"})) == ["dee", "bob"]  # "31" is text, not a number
    assert await query(where=kv(age="31")) == ["cy"]                     # 31 matches the text "31"
    assert await query(where=kv(**{"status !=": "new"})) == ["cy"]
    assert await query(where=kv(tags__contains="x")) == ["ann"]
    assert await query(where=kv(name__contains="e")) == ["dee"]
    assert await query(where=kv(**{"address.city": "Oslo"})) == ["cy", "ann"]
    assert await query(where=kv(vip="true")) == ["dee"]
    assert await query(where=kv(note="null")) == ["dee", "cy", "bob", "ann"]  # null or missing
    assert await query(where=kv(zip="0012")) == ["cy"]                   # not a JSON number: text
    assert await query(where=kv(**{"straße": "Köln"})) == ["ann"]
    assert await query(where=kv(**{"id >": str(ids[1])})) == ["dee", "cy"]
    assert await query(where={"status": "new"}, limit="2") == ["dee", "bob"]
    assert await query(where=json.dumps({"status": "done"})) == ["cy"]
    assert await query(order="oldest first", limit=2) == ["ann", "bob"]
    assert await query(where=kv(status="new"), output_field="found") == ["dee", "bob", "ann"]
    assert await query(where=kv(status="nobody")) == []
    # Field names are bound as parameters, never spliced into the SQL.
    assert await query(where=kv(**{"x'); DROP TABLE dataset_rows; --": "1"})) == []
    assert len(await query()) == 4


async def test_query_errors_are_clear(client: EngineClient) -> None:
    await seed(client, "people", [{"age": 1}])
    for config, text in (({"dataset": "nope"}, "was not found"),
                         ({"dataset": "people", "where": kv(**{"age >": "true"})}, "needs a number or a text"),
                         ({"dataset": "people", "where": kv(**{'a"b': 1})}, "quotes"),
                         ({"dataset": "people", "where": kv(**{"id contains": "1"})}, "row id"),
                         ({"dataset": "people", "where": "not json"}, "name/value rows"),
                         ({"dataset": "people", "limit": "0"}, "'limit'"),
                         ({"dataset": "people", "limit": 5000}, "'limit'")):
        _, events = await run(client, one("dataset_query", **config))
        status = final(events)
        assert status["status"] == "FAILED" and text in status["error"], (config, status)


async def test_update_sets_fields_on_matching_rows(client: EngineClient) -> None:
    ids = await seed(client, "tasks", [{"t": "a", "state": "open"}, {"t": "b", "state": "open"},
                                       {"t": "c", "state": "closed"}])
    wf = workflow([node("s", "set_data", data={"who": "robot"}),
                   node("u", "dataset_update", dataset="tasks", where=kv(state="open"),
                        set=kv(state="done", by="{{data.who}}", **{"meta.tries": "2"}))],
                  [edge("s", "u")])
    _, events = await run(client, wf)
    status = final(events)
    assert status["status"] == "SUCCEEDED"
    assert status["result"]["data"]["updated"] == {"dataset": "tasks", "count": 2, "row_ids": ids[:2]}
    stored = await rows(client, "tasks")
    assert stored[0] == {"id": ids[0], "t": "a", "state": "done", "by": "robot", "meta": {"tries": 2}}
    assert stored[2] == {"id": ids[2], "t": "c", "state": "closed"}
    _, events = await run(client, one("dataset_update", dataset="tasks", where=kv(state="done"),
                                      set=kv(state="archived"), limit="1", output_field="changed"))
    assert final(events)["result"]["data"]["changed"]["row_ids"] == [ids[0]]


async def test_simulated_update_changes_nothing_and_says_what_it_would(client: EngineClient) -> None:
    ids = await seed(client, "tasks", [{"state": "open"}, {"state": "open"}])
    before = await rows(client, "tasks")
    _, events = await run(client, one("dataset_update", dataset="tasks", where=kv(state="open"),
                                      set=kv(state="done")), mode="SIMULATE")
    status = final(events)
    assert status["status"] == "SUCCEEDED"
    assert status["result"]["data"]["updated"] == {"dataset": "tasks", "count": 2, "row_ids": ids,
                                                  "simulated": True}
    line = next(m for m in logs(events) if m.startswith("Would update"))
    assert "2 row(s)" in line and "state = done" in line and "nothing written" in line
    assert await rows(client, "tasks") == before


async def test_update_errors_change_nothing(client: EngineClient) -> None:
    await client.request("save_settings", settings={"dataset_max_row_bytes": 60})
    await seed(client, "tasks", [{"state": "open"}, {"state": "open", "pad": "x" * 30}])
    before = await rows(client, "tasks")
    for config, text in (({"where": [], "set": kv(state="x")}, "at least one condition"),
                         ({"where": kv(state="open"), "set": []}, "at least one field"),
                         ({"where": kv(state="open"), "set": kv(id="5")}, "cannot change a row's id"),
                         ({"where": kv(state="open"), "set": kv(note="y" * 20)}, "dataset_max_row_bytes"),
                         ({"dataset": "nope", "where": kv(a=1), "set": kv(a=2)}, "was not found")):
        _, events = await run(client, one("dataset_update", **{"dataset": "tasks", **config}))
        status = final(events)
        assert status["status"] == "FAILED" and text in status["error"], (config, status)
    assert await rows(client, "tasks") == before  # the row that fits was not changed either


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
async def test_appended_rows_survive_a_kill_of_the_engine(tmp_path: Path, owner: Wallet) -> None:
    from tests.test_runtime_restart import EngineProcess
    data_dir, log_dir = tmp_path / "data", tmp_path / "logs"
    first = EngineProcess(data_dir, log_dir, owner)
    try:
        async with await EngineClient.connect(first.url, owner.key) as client:
            await client.request("create_dataset", name="durable")
            for i in range(3):
                status = final((await run(client, appender(dataset="durable", data={"i": i})))[1])
                assert status["status"] == "SUCCEEDED"
            first.kill()  # no clean shutdown: what a succeeded node stored must be on disk
    finally:
        if first.proc.poll() is None:
            first.kill()
    second = EngineProcess(data_dir, log_dir, owner)
    try:
        async with await EngineClient.connect(second.url, owner.key) as client:
            assert [r["i"] for r in await rows(client, "durable")] == [0, 1, 2]
        assert second.terminate() == 0
    finally:
        if second.proc.poll() is None:
            second.proc.kill()
            second.proc.wait(timeout=30)


async def test_a_repeated_node_run_appends_its_row_once(engine, client: EngineClient, owner: Wallet) -> None:
    """dataset_append keys its row by the node run (ctx.run_key): the same run repeated, as a
    restored job repeats an idempotent node cut short by a crash, finds its row and adds none;
    the keys go when the job ends."""
    settings = await engine.settings.get(owner.address.lower())
    datasets = engine.datasets_for(owner.address.lower(), settings)
    key = "job-x#job-x#1.0"
    first = await datasets.append("orders", {"n": 1}, create=True, run_key=key)
    again = await datasets.append("orders", {"n": 1}, create=True, run_key=key)
    other = await datasets.append("orders", {"n": 1}, create=True, run_key="job-x#job-x#1.1")
    assert first == again != other
    assert len(await rows(client, "orders")) == 2
    # A real run keys its append; once the job ends its key is gone with its checkpoint.
    wf = workflow([node("a", "dataset_append", dataset="orders")], [])
    job_id, events = await run(client, wf)
    assert final(events)["status"] == "SUCCEEDED"
    await engine.runtime.recorder.flush()
    keys = await engine.db.run(lambda conn: conn.execute(
        "SELECT run_key FROM dataset_append_keys WHERE top_job_id = ?", (job_id,)).fetchall())
    assert keys == []
