"""Every message type of the API doc and protocol.md refuses frames that fail authentication,
with its own reply type, the stable code and the echoes; nothing is done for such a frame, and
the connection stays usable."""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import pytest

from engine.app import Engine
from engine.client import EngineClient, Signer
from tests.conftest import ClientFactory, Wallet

# Each type with a payload that would change something if it were ever executed.
MESSAGES: dict[str, dict[str, Any]] = {
    "execute_workflow": {"job_id": "j-1", "workflow_data": {"nodes": [], "connections": []},
                         "initial_payload": {}, "preset_name": "unsaved-workflow", "mode": "EXECUTE",
                         "start_node_id": None},
    "execute_standalone_node": {"job_id": "j-2", "node_data": {"module_id": "x", "config_values": {}},
                                "mode": "EXECUTE"},
    "stop_workflow": {"job_id": "j-1"}, "pause_workflow": {"job_id": "j-1"},
    "resume_workflow": {"job_id": "j-1"}, "resume_job": {"job_id": "j-1"},
    "request_jobs_list": {"status": "FAILED", "limit": 10},
    "manual_approval_response": {"approval_id": "a-1", "decision": "APPROVED"},
    "request_drives": {}, "request_directory_list": {"path": "/"},
    "request_components_list": {"component_type": "modules"},
    "install_component": {"component_type": "modules", "component_id": "x"},
    "uninstall_component": {"component_type": "modules", "component_id": "x"},
    "request_presets_list": {}, "load_preset": {"name": "P"},
    "save_preset": {"name": "P", "workflow_data": {"nodes": []}, "signature": "0x" + "11" * 65},
    "delete_preset": {"name": "P"}, "share_preset": {"name": "P", "with": "*"},
    "request_settings": {}, "save_settings": {"settings": {"theme": "hijacked"}},
    "request_variables": {}, "update_variable": {"name": "PWNED", "data": {"value": "x"}},
    "delete_variable": {"name": "KEEP"},
    "request_connection_history": {"job_id": "j-1", "connection_id": "c-1"},
    "request_prompts_list": {}, "request_datasets_list": {}, "request_local_models": {},
    "request_triggers": {}, "set_trigger_enabled": {"rule_id": "r-1", "enabled": False},
    "create_dataset": {"name": "D"}, "delete_dataset": {"name": "KEEP"},
    "load_dataset_data": {"name": "KEEP"}, "add_dataset_data": {"name": "KEEP", "data": [{"a": 1}]},
    "update_dataset_row": {"name": "KEEP", "row_data": {"id": 1, "a": 2}},
    "delete_dataset_row": {"name": "KEEP", "row_id": 1},
}

PREFIX = "Flowork GUI-to-Engine Authentication: "
Forge = Callable[[EngineClient, Wallet], dict[str, Any] | None]
FAILURES: dict[str, tuple[Forge, str]] = {
    "missing auth": (lambda c, s: None, "auth_missing"),
    "stale timestamp": (lambda c, s: c.signer.auth_block(int(time.time() * 1000) - 3_600_000), "auth_stale"),
    "other message format": (lambda c, s: {"address": c.address, "message": "Login " + str(int(time.time())),
                                           "signature": c.signer.sign_text("Login")}, "auth_format"),
    "bad signature": (lambda c, s: {**c.signer.auth_block(), "signature": "0x" + "ab" * 65}, "auth_signature"),
    "foreign signature": (lambda c, s: {**Signer(s.key).auth_block(), "address": c.address}, "auth_signature"),
    "address not allowed": (lambda c, s: Signer(s.key).auth_block(), "not_authorized"),
}


def test_every_documented_type_has_a_handler(engine: Engine) -> None:
    assert set(MESSAGES) <= set(engine.server.registry.types())


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_refused_frames_of_every_type(engine: Engine, client: EngineClient, stranger: Wallet,
                                           failure: str) -> None:
    await client.request("update_variable", name="KEEP", data={"value": "v"})
    await client.request("create_dataset", name="KEEP")
    kept = await client.request("add_dataset_data", name="KEEP", data=[{"a": 1}])
    forge, code = FAILURES[failure]
    for index, (msg_type, fields) in enumerate(MESSAGES.items()):
        request_id = f"{failure}-{index}"
        payload = {"type": msg_type, "request_id": request_id, **fields}
        auth = forge(client, stranger)
        frame: dict[str, Any] = {"payload": payload}
        if auth is not None:
            frame["auth"] = auth
        await client.send_raw(json.dumps(frame))
        reply = await client.next_event(where=lambda f, rid=request_id: f.get("request_id") == rid)
        spec = engine.server.registry.get(msg_type)
        assert spec is not None
        assert reply["type"] == (spec.reply_type or "error"), msg_type
        assert reply["code"] == code and reply["request_type"] == msg_type, (msg_type, reply)
        if code == "not_authorized":
            # Install statuses carry their text in `message` (an `error` would stick the GUI).
            text = reply["message"] if reply["type"] == "component_install_status" else reply["error"]
            assert f"not authorized for engine {engine.config.engine_id}" in text
    # Nothing happened, and the connection still works.
    settings = (await client.request("request_settings"))["settings"]
    assert settings["theme"] == "dark"
    assert [v["name"] for v in (await client.request("request_variables"))["variables"]] == ["KEEP"]
    assert (await client.request("request_presets_list"))["presets"] == []
    assert [d["name"] for d in (await client.request("request_datasets_list"))["datasets"]] == ["KEEP"]
    assert (await client.request("load_dataset_data", name="KEEP"))["data"] == kept["data"]


@pytest.mark.parametrize("raw", ["{oops", b'{"payload": {"type": "request_settings"}}'])
async def test_undecodable_frames_then_every_type_still_works(client: EngineClient, raw: str | bytes) -> None:
    await client.send_raw(raw)
    error = await client.next_event(where=lambda f: "error" in f)
    assert error["type"] == "error" and error["code"] in ("bad_json", "bad_frame")
    for msg_type in ("request_settings", "request_variables", "request_presets_list", "request_drives",
                     "request_prompts_list", "request_datasets_list", "request_local_models"):
        assert "error" not in await client.request(msg_type)


async def test_pairing_is_not_offered_without_a_handler(make_client: ClientFactory, stranger: Wallet,
                                                        engine: Engine) -> None:
    outsider = await make_client(stranger)
    reply = await outsider.request("request_settings", check=False)
    assert reply["code"] == "not_authorized" and not engine.owners.allows(stranger.address)
