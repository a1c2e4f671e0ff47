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
