"""What the real web GUI shows (issue 10), end to end over real sockets: frames are sent as the
GUI sends them and replies are judged by what the GUI's code reads (protocol.md §1).

The GUI treats any frame with a truthy top-level `error` as an error toast and drops it before
it looks at the frame's type; so an event that carries one never reaches the canvas."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from engine.app import Engine
from engine.client import EngineClient
from tests.conftest import ClientFactory
from tests.runtime_support import collect, edge, final, metrics, node, run, start, workflow

SENT_BY_GUI = ("request_settings", "request_variables", "request_presets_list",
               "request_prompts_list", "request_datasets_list", "request_local_models")


def event_frames(client: EngineClient) -> list[dict[str, Any]]:
    """Every frame received that is not the reply to a request of ours (those carry our
    request_id): job events, pushes, status updates."""
    assert client.texts is not None
    frames = [json.loads(text) for text in client.texts]
    return [f for f in frames if "request_id" not in f]


def gui_drops(frame: dict[str, Any]) -> bool:
    """What socket.js does first with every frame: a truthy `error` ends its handling."""
    return bool(frame.get("error"))


# -- 1. a failed node's metric is not an "error" frame ------------------------------------------

async def test_a_failed_node_turns_red_instead_of_becoming_an_error_toast(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger"), node("boom", "stop_and_error", "Boom", message="bad input")],
                  [edge("t", "boom")])
    job_id, events = await run(client, wf)
    failed = metrics(events, "ERROR")
    assert len(failed) == 1 and not gui_drops(failed[0])
    assert failed[0]["error_message"] == "bad input" and failed[0]["workflow_context_id"] == job_id
    assert final(events)["status"] == "FAILED" and "bad input" in final(events)["error"]  # nested: read there


@pytest.fixture
async def engine(make_engine: Any, data_dir: Path) -> Engine:
    folder = data_dir / "components" / "modules" / "crash"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text('{"name": "Crash", "properties": [], "output_ports": []}')
    (folder / "module.py").write_text("def run(ctx, payload):\n    ctx.log('about to fail', 'ERROR')\n"
                                      "    raise RuntimeError('error: broken on purpose')\n")
    return await make_engine(max_node_runs=20)


async def test_no_event_frame_ever_carries_a_top_level_error(
        make_client: ClientFactory, engine: Engine) -> None:
    """Failing nodes (handled, unhandled, crashing, timing out, looping), approvals (answered,
    timed out, withdrawn), popups, logs at ERROR, stops, pushes, status updates, reconnects."""
    client = await make_client(keep_texts=True)
    watcher = await make_client(keep_texts=True)  # a second tab sees every owner event too
    await watcher.request("request_settings")
    flows = [
        workflow([node("t", "manual_trigger"), node("e", "stop_and_error", message="error: x"),
                  node("h", "debug_popup", popup_title="caught")],
                 [edge("t", "e"), edge("e", "h", "error")]),
        workflow([node("t", "manual_trigger"), node("c", "crash")], [edge("t", "c")]),
        workflow([node("t", "manual_trigger"), node("d", "delay", seconds=5, timeout_s=0.1)], [edge("t", "d")]),
        workflow([node("t", "manual_trigger"), node("a", "set_data", data={"n": 1}),
                  node("b", "set_data", data={"n": 2})],
                 [edge("t", "a"), edge("a", "b"), edge("b", "a")]),
        workflow([node("t", "manual_trigger"), node("s", "sub_workflow", preset_name="missing")], [edge("t", "s")]),
        workflow([node("t", "manual_trigger"), node("ask", "manual_approval", message="ok?", timeout_s=0.2),
                  node("l", "log_message", message="{{data.approval.decision}}", level="ERROR")],
                 [edge("t", "ask"), edge("ask", "l", "REJECTED")]),
    ]
    for wf in flows:
        _, events = await run(client, wf)
        assert final(events)["status"] in ("SUCCEEDED", "FAILED")
    # An approval answered by a client, and one withdrawn by a stop.
    ask = workflow([node("t", "manual_trigger"), node("ask", "manual_approval", message="go?")], [edge("t", "ask")])
    job_id = await start(client, ask)
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    await client.request("manual_approval_response", approval_id=asked["approval_id"], decision="REJECTED")
    await collect(client, job_id)
    job_id = await start(client, ask)
    await client.next_event("MANUAL_APPROVAL_REQUESTED")
    await client.request("stop_workflow", job_id=job_id)
    assert final(await collect(client, job_id))["status"] == "STOPPED"
    # Pushes and refusals that are not errors of a request.
    await client.request("update_variable", name="V", data={"value": "1"})
    await client.request("install_component", component_type="modules", component_id="x", check=False)
    late = await make_client(keep_texts=True)  # a connection that comes while nothing runs
    await late.request("request_settings")
    await asyncio.sleep(0.2)
    seen = {c: event_frames(c) for c in (client, watcher, late)}
    types = {f["type"] for frames in seen.values() for f in frames}
    assert {"NODE_EXECUTION_METRIC", "log", "SHOW_DEBUG_POPUP", "CONNECTION_STATUS_UPDATE",
            "workflow_status_update", "MANUAL_APPROVAL_REQUESTED", "MANUAL_APPROVAL_RESOLVED",
            "variables_response", "engine_status_update"} <= types
    assert any(f["type"] == "NODE_EXECUTION_METRIC" and f["status"] == "ERROR" for f in seen[watcher])
    for frames in seen.values():
        assert [f for f in frames if "error" in f] == []


# -- 2. module settings the properties panel can show, and the values it hands back -----------

# What the GUI's PropertiesPanel.vue renders (protocol.md §1); any other type is invisible.
GUI_TYPES = {"string", "integer", "float", "folderpath", "boolean", "textarea", "code", "enum",
             "list", "cron_editor", "dynamic_key_value_editor"}


async def gui_manifests(client: EngineClient) -> dict[str, dict[str, Any]]:
    """The manifests as the GUI receives them: four component lists, asked like the GUI asks."""
    for component_type in ("modules", "plugins", "tools", "triggers"):
        await client.send({"type": "request_components_list", "component_type": component_type})
    manifests: dict[str, dict[str, Any]] = {}
    for _ in range(4):
        listing = await client.next_event("components_list_response")
        manifests.update({c["id"]: c["manifest"] for c in listing["components"] if c["is_builtin"]})
    return manifests


async def test_every_built_in_module_setting_has_a_type_the_gui_shows(client: EngineClient) -> None:
    from engine.components.properties import prepare_config
    manifests = await gui_manifests(client)
    assert {"set_data", "log_message", "delay", "http_request", "manual_trigger"} <= set(manifests)
    for module_id, manifest in manifests.items():
        for prop in manifest["properties"]:
            where = f"{module_id}.{prop['id']}"
            assert prop["type"] in GUI_TYPES, where
            if prop["type"] == "enum":
                assert prop["options"] and prop["default"] in prop["options"], where
            if prop["type"] in ("code", "textarea", "string"):
                assert isinstance(prop["default"], str), where  # a text box shows text
            if prop["type"] == "dynamic_key_value_editor":
                assert prop["default"] == [], where  # the editor holds a list of rows
        # The defaults the GUI fills in are values the engine accepts.
        defaults = {p["id"]: p["default"] for p in manifest["properties"]}
        prepare_config(manifest["properties"], defaults, lambda value: value)


def canvas_node(manifests: dict[str, dict[str, Any]], node_id: str, module_id: str,
                **edited: Any) -> dict[str, Any]:
    """A node as the GUI stores it: config filled from the manifest's defaults, then edited."""
    config = {p["id"]: p["default"] for p in manifests[module_id]["properties"]}
    config.update(edited)
    return {"id": node_id, "name": manifests[module_id]["name"], "x": 0, "y": 0,
            "module_id": module_id, "config_values": config}


async def test_values_as_the_properties_panel_produces_them(client: EngineClient, engine: Engine) -> None:
    """Number fields give text, the code field gives JSON text, the key-value editor gives rows."""
    from tests.test_modules_http import LocalHttpServer
    await client.request("update_variable", name="TOKEN", data={"value": 'se"cret', "is_secret": True})
    manifests = await gui_manifests(client)
    with LocalHttpServer() as server:
        nodes = [canvas_node(manifests, "t", "manual_trigger"),
                 canvas_node(manifests, "s", "set_data",
                             data='{"quote": "{{vars.TOKEN}}", "n": 3, "nested": {"ok": true}}'),
                 canvas_node(manifests, "d", "delay", seconds="0.01", retry_max="2", timeout_s=""),
                 canvas_node(manifests, "h", "http_request", method="post", url=server.url("/echo"),
                             headers=[{"name": "X-Token", "value": "{{vars.TOKEN}}", "type": "Text"},
                                      {"name": "", "value": "", "type": "Text"}],
                             body="n={{data.n}}", timeout_s="5"),
                 canvas_node(manifests, "l", "log_message", message="done {{data.nested.ok}}", level="WARN")]
        wf = workflow(nodes, [edge("t", "s"), edge("s", "d"), edge("d", "h"), edge("h", "l")])
        _, events = await run(client, wf)
        assert final(events)["status"] == "SUCCEEDED", final(events)
        sent = server.requests[0]
        assert sent["method"] == "POST" and sent["headers"]["X-Token"] == 'se"cret' and sent["body"] == b"n=3"
    data = final(events)["result"]["data"]
    assert data["quote"] == "********" and data["n"] == 3 and data["nested"] == {"ok": True}
    assert ("done true", "WARN") in [(e["message"], e["level"]) for e in events if e["type"] == "log"]


@pytest.mark.parametrize("module_id, edited, named", [
    ("set_data", {"data": '{"a": 1,}'}, "property 'Data to merge' (data) must be JSON text"),
    ("set_data", {"data": '[1, 2]'}, "'data' must be an object"),
    ("delay", {"seconds": "soon"}, "property 'Seconds' (seconds) must be a number, not 'soon'"),
    ("delay", {"retry_max": "1.5"}, "property 'Retries after a failure' (retry_max) must be a whole number"),
    ("log_message", {"level": "LOUD"}, "property 'Level' (level) must be one of DEBUG, INFO"),
    ("http_request", {"url": "http://127.0.0.1:9/", "headers": [{"name": "", "value": "x"}]},
     "property 'Headers' (headers): row 1 has a value but no name"),
    ("write_file", {"path": "/x", "append": "maybe"}, "property 'Append instead of replacing' (append) must be true or false"),
])
async def test_a_value_of_the_wrong_kind_fails_its_node_naming_the_property(
        client: EngineClient, module_id: str, edited: dict[str, Any], named: str) -> None:
    manifests = await gui_manifests(client)
    wf = workflow([canvas_node(manifests, "t", "manual_trigger"), canvas_node(manifests, "n", module_id, **edited)],
                  [edge("t", "n")])
    _, events = await run(client, wf)
    failed = metrics(events, "ERROR")
    assert [m["node_id"] for m in failed] == ["n"] and named in failed[0]["error_message"], failed
    assert final(events)["status"] == "FAILED" and named in final(events)["error"]


# -- 3. the file browser: the reply's path is the path asked for ------------------------------

async def test_a_listing_asked_with_a_trailing_slash_answers_that_exact_path(
        client: EngineClient, make_client: ClientFactory, shared_dir: Path, stranger: Any) -> None:
    (shared_dir / "docs" / "inner").mkdir(parents=True)
    (shared_dir / "docs" / "a.txt").write_text("a")
    asked = f"{shared_dir}/docs/"
    await client.send({"type": "request_directory_list", "path": asked})
    reply = await client.next_event("directory_list_response")
    assert reply["path"] == asked and not gui_drops(reply)
    assert [(i["name"], i["type"]) for i in reply["items"]] == [("inner", "directory"), ("a.txt", "file")]
    # Refusals repeat it too, whatever refused them: the folder, the request's fields, the signer.
    for path, extra, code in ((f"{shared_dir}/missing/", {}, "not_found"),
                              (f"{shared_dir}/docs/a.txt/", {}, "invalid_field"),
                              (asked, {"offset": -1}, "invalid_field")):
        await client.send({"type": "request_directory_list", "path": path, **extra})
        refused = await client.next_event("directory_list_response")
        assert refused["code"] == code and refused["path"] == path, refused
    outsider = await make_client(stranger)
    await outsider.send({"type": "request_directory_list", "path": asked})
    refused = await outsider.next_event("directory_list_response")
    assert refused["code"] == "not_authorized" and refused["path"] == asked and "items" not in refused


# -- 4. variables as the GUI's variable dialog saves and shows them ----------------------------

def dialog_items(variables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What VariableManagerDialog.vue makes of a variables_response: a copy of each item whose
    `value` becomes `{type: "static", value}` unless it already is an object; `isOriginal`."""
    items = []
    for variable in json.loads(json.dumps(variables)):
        if not isinstance(variable["value"], dict):  # typeof v !== 'object' (a list IS an object)
            if isinstance(variable["value"], list):
                raise AssertionError(f"the dialog would show {variable['name']} with no type")
            variable["value"] = {"type": "static", "value": variable["value"]}
        variable["isOriginal"] = True
        items.append(variable)
    return items


async def test_a_variable_created_and_saved_again_in_the_gui_dialog(
        client: EngineClient, engine: Engine, owner: Any) -> None:
    await client.send({"type": "update_variable", "name": {
        "name": "GREETING", "is_secret": False, "is_enabled": True,
        "value": {"type": "static", "value": "hello-world"}, "isOriginal": False}})
    ack = await client.next_event("status_response")
    assert not gui_drops(ack) and ack["name"] == "GREETING"
    await client.send({"type": "update_variable", "name": {
        "name": "API_KEY", "is_secret": True, "is_enabled": True,
        "value": {"type": "static", "value": "sk-live-1"}, "isOriginal": False}})
    await client.send({"type": "update_variable", "name": {
        "name": "PICK", "is_secret": True, "is_enabled": True,
        "value": {"type": "random", "value": ["p-1", "p-2"]}, "isOriginal": False}})
    await client.send({"type": "request_variables"})
    listed = await client.next_event("variables_response", where=lambda f: len(f["variables"]) == 3)
    items = {i["name"]: i for i in dialog_items(listed["variables"])}
    assert items["GREETING"]["value"] == {"type": "static", "value": "hello-world"}
    assert items["API_KEY"]["value"] == {"type": "static", "value": "********"}
    assert items["PICK"]["value"] == {"type": "random", "value": ["********", "********"]}
    # "Save Changes": the dialog sends every item back as it holds it, secrets as the mask.
    items["GREETING"]["value"]["value"] = "hello-again"
    for item in items.values():
        await client.send({"type": "update_variable", "name": item})
    for _ in items:
        assert not gui_drops(await client.next_event("status_response"))
    resolved = await engine.variables.resolve(owner.address.lower())
    assert resolved["GREETING"] == "hello-again" and resolved["API_KEY"] == "sk-live-1"
    assert resolved["PICK"] in ("p-1", "p-2")
    # The variable works in a workflow.
    wf = workflow([node("t", "manual_trigger"), node("l", "log_message", message="{{vars.GREETING}}")],
                  [edge("t", "l")])
    _, events = await run(client, wf)
    assert [e["message"] for e in events if e["type"] == "log" and e.get("node_id") == "l"] == ["hello-again"]


@pytest.mark.parametrize("item, field", [
    ({"name": "bad name", "value": {"type": "static", "value": "x"}}, "name.name"),
    ({"name": "X", "value": {"type": "cyclic", "value": "x"}}, "name.value.type"),
    ({"name": "X", "value": {"type": "random", "length": 12, "use_digits": True}}, "name.value.value"),
    ({"name": "X", "value": {"type": "static", "value": ["a"]}}, "name.value.value"),
    ({"name": "X", "value": {"type": "static", "value": "x"}, "is_secret": "yes"}, "name.is_secret"),
])
async def test_a_bad_dialog_item_is_refused_naming_the_field(
        client: EngineClient, item: dict[str, Any], field: str) -> None:
    reply = await client.request("update_variable", name=item, check=False)
    assert reply["code"] == "invalid_field" and reply["field"] == field, reply
    assert (await client.request("request_variables"))["variables"] == []


# -- 5. component install statuses and refused component lists --------------------------------

async def test_a_refused_uninstall_is_a_status_the_gui_handles_and_the_next_install_too(
        client: EngineClient) -> None:
    await client.send({"type": "uninstall_component", "component_type": "modules", "component_id": "set_data"})
    status = await client.next_event("component_install_status")
    assert not gui_drops(status)
    assert {k: status[k] for k in ("component_id", "component_type", "operation", "success", "is_installed")} == {
        "component_id": "set_data", "component_type": "modules", "operation": "uninstall",
        "success": False, "is_installed": True}
    assert "not supported" in status["message"]
    await client.send({"type": "install_component", "component_type": "modules", "component_id": "new-thing"})
    status = await client.next_event("component_install_status")
    assert not gui_drops(status) and status["operation"] == "install" and status["is_installed"] is False
    assert status["component_id"] == "new-thing" and status["message"]
    # Refused by the schema, the answer has the same shape.
    await client.send({"type": "install_component", "component_type": "gadgets", "component_id": "x"})
    status = await client.next_event("component_install_status")
    assert not gui_drops(status) and status["success"] is False and "component_type" in status["message"]


async def test_a_refused_component_list_names_its_component_type(
        make_client: ClientFactory, stranger: Any, engine: Engine) -> None:
    outsider = await make_client(stranger)
    for component_type in ("modules", "plugins", "tools", "triggers"):
        await outsider.send({"type": "request_components_list", "component_type": component_type})
        refused = await outsider.next_event("components_list_response")
        assert refused["component_type"] == component_type  # the GUI stops that spinner
        assert f"not authorized for engine {engine.config.engine_id}" in refused["error"]


# -- 6. the Settings page's AI model list -------------------------------------------------------

async def test_the_ai_status_is_an_empty_provider_list(client: EngineClient) -> None:
    await client.send({"type": "request_ai_status"})
    reply = await client.next_event(where=lambda f: f["type"] != "engine_status_update")
    assert reply == {"type": "ai_status_response", "providers": []}


# -- 7. {{data}}: the whole data object ---------------------------------------------------------

async def test_the_whole_data_object_renders_as_json_in_text_and_as_itself_alone(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger"), node("s", "set_data", data='{"user": {"name": "Zoë"}, "n": 2}'),
                   node("l", "log_message", message="got {{data}} and {{ data.user.name }}"),
                   node("copy", "set_data", data='{"snapshot": "{{data}}"}')],
                  [edge("t", "s"), edge("s", "l"), edge("l", "copy")])
    _, events = await run(client, wf)
    line = next(e["message"] for e in events if e["type"] == "log" and e.get("node_id") == "l")
    assert line == 'got {"user":{"name":"Zoë"},"n":2} and Zoë'
    assert final(events)["result"]["data"]["snapshot"] == {"user": {"name": "Zoë"}, "n": 2}
