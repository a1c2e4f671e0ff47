"""Tried as a new user would, through the web GUI: open the engine (the opening burst), read the
component list, drop built-in modules on the canvas (config filled from the manifests' defaults,
as the GUI does), press Run. Frames are sent exactly as the GUI sends them (protocol.md §1: no
request_id, start_node_id null, preset "unsaved-workflow", initial_payload {}), and the events
are checked against what §1 says the GUI reads."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from engine.client import EngineClient
from tests.runtime_support import collect

OPENING_BURST = ["request_settings", "request_variables", "request_presets_list", "request_prompts_list",
                 "request_datasets_list", "request_local_models"]


def canvas_node(manifests: dict[str, dict[str, Any]], node_id: str, module_id: str, x: int,
                **changes: Any) -> dict[str, Any]:
    """What the GUI puts on the canvas: defaults from manifest.properties[].{id, default}."""
    config = {p["id"]: p.get("default") for p in manifests[module_id]["properties"]}
    config.update(changes)
    return {"id": node_id, "name": manifests[module_id]["name"], "x": x, "y": 200,
            "module_id": module_id, "config_values": config, "data": {"color": "#4f46e5"}}


def canvas_edge(source: str, target: str, port: str = "output") -> dict[str, Any]:
    return {"id": f"reactflow__edge-{source}{port}-{target}input", "source": source, "target": target,
            "source_port_name": port, "target_port_name": "input", "type": "default", "animated": True}


async def test_a_new_user_runs_a_workflow_from_the_gui(client: EngineClient, shared_dir: Path) -> None:
    for msg_type in OPENING_BURST:
        await client.send({"type": msg_type})
    for component_type in ("modules", "plugins", "tools", "triggers"):
        await client.send({"type": "request_components_list", "component_type": component_type})
    manifests: dict[str, dict[str, Any]] = {}
    for _ in range(4):
        listing = await client.next_event("components_list_response")
        manifests.update({c["id"]: c["manifest"] for c in listing["components"]})

    report = shared_dir / "report.txt"
    nodes = [canvas_node(manifests, "n1", "manual_trigger", 0),
             # The code field hands back the text typed into it: JSON text.
             canvas_node(manifests, "n2", "set_data", 200, data='{"customer": "ACME", "total": 1250}'),
             canvas_node(manifests, "n3", "if_condition", 400, field="total", operator="greater_than", value="1000"),
             canvas_node(manifests, "n4", "debug_popup", 600, popup_title="Big order"),
             canvas_node(manifests, "n5", "write_file", 800, path=str(report),
                         content="Order from {{data.customer}}: {{data.total}}"),
             canvas_node(manifests, "n6", "log_message", 600, message="Small order from {{data.customer}}")]
    edges = [canvas_edge("n1", "n2"), canvas_edge("n2", "n3"), canvas_edge("n3", "n4", "true"),
             canvas_edge("n4", "n5"), canvas_edge("n3", "n6", "false")]
    job_id = str(uuid.uuid4())
    await client.send({"type": "execute_workflow", "job_id": job_id,
                       "workflow_data": {"nodes": nodes, "connections": edges,
                                         "global_loop_config": {"isEnabled": False, "iterations": 1,
                                                                "isDelayEnabled": False, "delayType": "static",
                                                                "delayStatic": 1, "delayRandomMin": 1,
                                                                "delayRandomMax": 5}},
                       "initial_payload": {}, "preset_name": "unsaved-workflow", "mode": "EXECUTE",
                       "start_node_id": None})
    events = await collect(client, job_id)

    # Nothing the GUI would show as "Engine Error", and every frame has a type.
    assert not [e for e in events if e.get("error") and e["type"] != "workflow_status_update"]
    assert all(isinstance(e.get("type"), str) for e in events)
    statuses = [e["status_data"]["status"] for e in events if e["type"] == "workflow_status_update"]
    assert statuses == ["RUNNING", "SUCCEEDED"]
    assert events[0]["type"] == "status_response"  # the acknowledgement comes first
    node_metrics = [e for e in events if e["type"] == "NODE_EXECUTION_METRIC"]
    assert all(m["workflow_context_id"] == job_id for m in node_metrics)  # else the canvas ignores them
    finished = [m["node_id"] for m in node_metrics if m["status"] == "SUCCESS"]
    assert finished == ["n1", "n2", "n3", "n4", "n5"]
    assert {m["status"] for m in node_metrics} == {"RUNNING", "SUCCESS"}
    lit = [e["connection_id"] for e in events if e["type"] == "CONNECTION_STATUS_UPDATE"]
    assert lit == [edges[i]["id"] for i in (0, 1, 2, 3)]
    assert all(e["status"] == "ACTIVE" for e in events if e["type"] == "CONNECTION_STATUS_UPDATE")
    popup = next(e for e in events if e["type"] == "SHOW_DEBUG_POPUP")
    assert popup["title"] == "Big order" and popup["content"] == {"customer": "ACME", "total": 1250}
    assert all(isinstance(e["message"], str) and e["message"] for e in events if e["type"] == "log")
    assert report.read_text() == "Order from ACME: 1250"
    # The acknowledgement of execute_workflow (no request_id: it arrives as a typed frame).
    ack = next(e for e in events if e["type"] == "status_response")
    assert ack["request_type"] == "execute_workflow" and "error" not in ack
    # The GUI can then look at what crossed the first edge.
    await client.send({"type": "request_connection_history", "job_id": job_id, "connection_id": edges[1]["id"]})
    history = await client.next_event("connection_history_response")
    assert history["history"][0]["payload"]["data"] == {"customer": "ACME", "total": 1250}
