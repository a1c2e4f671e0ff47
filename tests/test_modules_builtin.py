"""Every built-in component: its manifest as the GUI reads it, its behaviour, its SIMULATE
behaviour. Run through the real engine over a real socket."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.client import EngineClient
from tests.runtime_support import edge, final, metrics, node, ran, run, workflow

BUILTIN_MODULES = {"set_data", "log_message", "debug_popup", "manual_approval", "if_condition",
                   "delay", "merge", "stop_and_error", "read_file", "write_file", "http_request",
                   "sub_workflow", "dataset_append", "dataset_query", "dataset_update"}


async def test_manifests_describe_properties_and_ports(client: EngineClient) -> None:
    modules = (await client.request("request_components_list", component_type="modules"))["components"]
    triggers = (await client.request("request_components_list", component_type="triggers"))["components"]
    by_id = {c["id"]: c for c in modules + triggers}
    assert BUILTIN_MODULES | {"manual_trigger"} <= set(by_id)
    for component_id in BUILTIN_MODULES | {"manual_trigger"}:
        component = by_id[component_id]
        manifest = component["manifest"]
        assert component["is_installed"] is True and component["name"]
        for prop in manifest["properties"]:
            assert {"id", "type", "label", "default"} <= set(prop), (component_id, prop)
        assert manifest["output_ports"] and all(p["name"] for p in manifest["output_ports"])
    ports = lambda cid: [p["name"] for p in by_id[cid]["manifest"]["output_ports"]]  # noqa: E731
    assert ports("manual_approval") == ["APPROVED", "REJECTED"]
    assert ports("if_condition")[:2] == ["true", "false"]
    props = lambda cid: {p["id"]: p["default"] for p in by_id[cid]["manifest"]["properties"]}  # noqa: E731
    assert {"method", "url", "headers", "body", "timeout_s"} <= set(props("http_request"))
    assert {"path", "content", "encoding"} <= set(props("write_file"))
    assert {"field", "operator", "value"} <= set(props("if_condition"))
    assert "preset_name" in props("sub_workflow") and "popup_title" in props("debug_popup")
    assert {"message", "timeout_s"} <= set(props("manual_approval"))


async def test_set_data_merges_objects_and_json_text(client: EngineClient) -> None:
    wf = workflow([node("a", "set_data", data={"user": {"name": "ann", "age": 3}}),
                   node("b", "set_data", data='{"user": {"age": 4}, "ok": true}')], [edge("a", "b")])
    _, events = await run(client, wf, mode="SIMULATE")
    assert final(events)["result"]["data"] == {"user": {"name": "ann", "age": 4}, "ok": True}
    _, events = await run(client, workflow([node("a", "set_data", data="{not json")], []))
    assert "property 'Data to merge' (data) must be JSON text" in final(events)["error"]


async def test_log_message_and_debug_popup(client: EngineClient) -> None:
    wf = workflow([node("s", "set_data", data={"k": [1, 2]}),
                   node("l", "log_message", message="k={{data.k}}", level="error"),
                   node("p", "debug_popup", popup_title="Look")], [edge("s", "l"), edge("l", "p")])
    for mode in ("EXECUTE", "SIMULATE"):
        _, events = await run(client, wf, mode=mode)
        line = next(e for e in events if e["type"] == "log" and e.get("node_id") == "l")
        assert (line["message"], line["level"]) == ("k=[1,2]", "ERROR")
        popup = next(e for e in events if e["type"] == "SHOW_DEBUG_POPUP")
        assert popup["title"] == "Look" and popup["content"] == {"k": [1, 2]} and popup["node_id"] == "p"
    _, events = await run(client, workflow([node("s", "set_data", data={"big": "z" * 300_000}),
                                            node("p", "debug_popup")], [edge("s", "p")]))
    popup = next(e for e in events if e["type"] == "SHOW_DEBUG_POPUP")
    assert popup["content"]["truncated"] is True and popup["content"]["size"] > 300_000


@pytest.mark.parametrize("field, operator, value, expected", [
    ("n", "equals", "5", "true"), ("n", "equals", 6, "false"), ("name", "equals", "ann", "true"),
    ("n", "not_equals", "5", "false"), ("missing", "not_equals", "x", "true"),
    ("name", "contains", "nn", "true"), ("tags", "contains", "b", "true"), ("tags", "contains", "z", "false"),
    ("n", "greater_than", "4.5", "true"), ("n", "less_than", 5, "false"),
    ("nested.flag", "equals", "true", "true"), ("missing", "exists", "", "false"), ("nested", "exists", "", "true"),
])
async def test_if_condition_operators(client: EngineClient, field, operator, value, expected) -> None:
    wf = workflow([node("s", "set_data", data={"n": 5, "name": "ann", "tags": ["a", "b"], "nested": {"flag": True}}),
                   node("if", "if_condition", field=field, operator=operator, value=value),
                   node("t", "log_message", message="t"), node("f", "log_message", message="f")],
                  [edge("s", "if"), edge("if", "t", "true"), edge("if", "f", "false")])
    _, events = await run(client, wf, mode="SIMULATE")
    assert ran(events)[-1] == ("t" if expected == "true" else "f")


async def test_if_condition_refuses_what_it_cannot_compare(client: EngineClient) -> None:
    _, events = await run(client, workflow([node("s", "set_data", data={"n": "abc"}),
                                            node("if", "if_condition", field="n", operator="greater_than", value=1)],
                                           [edge("s", "if")]))
    assert "'greater_than' needs numbers" in final(events)["error"]
    _, events = await run(client, workflow([node("if", "if_condition", field="n", operator="matches")], []))
    assert "property 'Operator' (operator) must be one of equals, not_equals" in final(events)["error"]


async def test_delay_waits_in_execute_and_not_in_simulate(client: EngineClient) -> None:
    # An hour-long delay finishes at once in SIMULATE (the test would time out otherwise).
    _, events = await run(client, workflow([node("d", "delay", seconds=3600)], []), mode="SIMULATE")
    assert final(events)["status"] == "SUCCEEDED"
    assert any(e["type"] == "log" and e["message"] == "Would wait 3600 s." for e in events)
    _, events = await run(client, workflow([node("d", "delay", seconds=0.01)], []))
    assert final(events)["status"] == "SUCCEEDED"
    _, events = await run(client, workflow([node("d", "delay", seconds=-1)], []))
    assert "property 'Seconds' (seconds) must be at least 0, not -1" in final(events)["error"]


async def test_merge_in_list_mode_and_stop_and_error(client: EngineClient) -> None:
    wf = workflow([node("a", "set_data", data={"x": 1}), node("b", "set_data", data={"x": 2}),
                   node("m", "merge", mode="list")], [edge("a", "m"), edge("b", "m")])
    _, events = await run(client, wf, mode="SIMULATE")
    assert sorted(i["x"] for i in final(events)["result"]["data"]["items"]) == [1, 2]
    _, events = await run(client, workflow([node("x", "stop_and_error", message="halt")], []), mode="SIMULATE")
    assert final(events)["status"] == "FAILED" and final(events)["error"].endswith("halt")


async def test_read_file_inside_a_shared_folder_only(client: EngineClient, shared_dir: Path, tmp_path: Path) -> None:
    (shared_dir / "notes.txt").write_text("hello ünïcode", encoding="utf-8")
    for mode in ("EXECUTE", "SIMULATE"):  # reading has no side effect: SIMULATE reads too
        _, events = await run(client, workflow([node("r", "read_file", path=str(shared_dir / "notes.txt"))], []), mode=mode)
        data = final(events)["result"]["data"]
        assert data["content"] == "hello ünïcode" and data["file_size"] == len("hello ünïcode".encode())
    _, events = await run(client, workflow([node("r", "read_file", path=str(shared_dir / "notes.txt"), encoding="base64")], []))
    assert final(events)["result"]["data"]["content"] == "aGVsbG8gw7xuw69jb2Rl"
    secret = tmp_path / "outside.txt"
    secret.write_text("private")
    (shared_dir / "link").symlink_to(secret)
    for path in (str(secret), str(shared_dir / ".." / "outside.txt"), str(shared_dir / "link")):
        _, events = await run(client, workflow([node("r", "read_file", path=path)], []))
        assert final(events)["status"] == "FAILED" and "outside the shared folders" in final(events)["error"]
    _, events = await run(client, workflow([node("r", "read_file", path=str(shared_dir / "none.txt"))], []))
    assert "does not exist" in final(events)["error"]
    _, events = await run(client, workflow([node("r", "read_file", path="relative.txt")], []))
    assert "must be an absolute path" in final(events)["error"]


async def test_write_file_writes_and_simulate_writes_nothing(client: EngineClient, shared_dir: Path,
                                                            tmp_path: Path) -> None:
    target = shared_dir / "out.txt"
    wf = workflow([node("s", "set_data", data={"who": "ann"}),
                   node("w", "write_file", path=str(target), content="hi {{data.who}}\n")], [edge("s", "w")])
    _, events = await run(client, wf, mode="SIMULATE")
    assert not target.exists() and os.listdir(shared_dir) == []
    assert final(events)["result"]["data"]["would_write"] == {"path": str(target), "bytes": 7, "append": False}
    _, events = await run(client, wf)
    assert target.read_text() == "hi ann\n" and final(events)["result"]["data"]["bytes_written"] == 7
    wf["nodes"][1]["config_values"]["append"] = True
    await run(client, wf)
    assert target.read_text() == "hi ann\nhi ann\n"
    # Empty content writes payload.data as JSON.
    _, events = await run(client, workflow([node("s", "set_data", data={"a": 1}),
                                            node("w", "write_file", path=str(shared_dir / "d.json"))], [edge("s", "w")]))
    assert '"a": 1' in (shared_dir / "d.json").read_text()
    for path in (str(tmp_path / "escape.txt"), str(shared_dir / ".." / "escape.txt")):
        _, events = await run(client, workflow([node("w", "write_file", path=path, content="x")], []))
        assert "outside the shared folders" in final(events)["error"]
    assert not (tmp_path / "escape.txt").exists()
    _, events = await run(client, workflow([node("w", "write_file", path=str(shared_dir / "no" / "f.txt"), content="x")], []))
    assert "does not exist" in final(events)["error"]


async def _save_preset(client: EngineClient, name: str, wf: dict) -> None:
    await client.request("save_preset", name=name, workflow_data=wf, signature=client.signer.sign_workflow(wf))


async def test_sub_workflow_runs_a_preset_and_passes_its_payload_on(client: EngineClient, shared_dir: Path) -> None:
    child = workflow([node("c1", "set_data", data={"from_child": "{{data.n}}"}),
                      node("c2", "write_file", path=str(shared_dir / "child.txt"), content="child ran")],
                     [edge("c1", "c2")])
    await _save_preset(client, "child flow", child)
    parent = workflow([node("s", "set_data", data={"n": 41}), node("sub", "sub_workflow", preset_name="child flow"),
                       node("after", "log_message", message="got {{data.from_child}}")],
                      [edge("s", "sub"), edge("sub", "after")])
    _, events = await run(client, parent, mode="SIMULATE")
    assert final(events)["status"] == "SUCCEEDED"
    assert not (shared_dir / "child.txt").exists()  # the child was simulated too
    assert final(events)["result"]["data"]["would_write"]["bytes"] == 9
    job_id, events = await run(client, parent)
    assert final(events)["status"] == "SUCCEEDED" and (shared_dir / "child.txt").read_text() == "child ran"
    assert any(e["type"] == "log" and e["message"] == "got 41" for e in events)
    assert ran(events) == ["s", "sub", "after"]  # the child's nodes are not on this canvas
    # A missing preset, and a preset that calls itself, fail clearly.
    _, events = await run(client, workflow([node("sub", "sub_workflow", preset_name="nope")], []))
    assert "the preset 'nope' was not found" in final(events)["error"]
    await _save_preset(client, "loop", workflow([node("again", "sub_workflow", preset_name="loop")], []))
    _, events = await run(client, workflow([node("sub", "sub_workflow", preset_name="loop")], []))
    assert final(events)["status"] == "FAILED" and "nested deeper than" in final(events)["error"]
    assert metrics(events, "ERROR")[0]["node_id"] == "sub"


async def test_manual_trigger_passes_the_initial_payload_on(client: EngineClient) -> None:
    for mode, line in (("EXECUTE", "Workflow triggered manually."),
                       ("SIMULATE", "Workflow triggered manually (simulation).")):
        _, events = await run(client, workflow([node("t", "manual_trigger")], []), mode=mode,
                              initial_payload={"order": 7})
        assert final(events)["result"]["data"] == {"order": 7}
        assert [e["message"] for e in events if e["type"] == "log"] == [line]
