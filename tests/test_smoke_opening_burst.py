"""The web GUI's opening burst of 10 frames, answered correctly over a real socket."""

from __future__ import annotations

from engine.client import EngineClient

BURST = [("request_settings", {}, "settings_response"),
         ("request_variables", {}, "variables_response"),
         ("request_presets_list", {}, "presets_list_response"),
         ("request_prompts_list", {}, "prompts_list_response"),
         ("request_datasets_list", {}, "datasets_list_response"),
         ("request_local_models", {}, "local_models_response")] + [
    ("request_components_list", {"component_type": t}, "components_list_response")
    for t in ("modules", "plugins", "tools", "triggers")]


async def test_opening_burst_gets_one_typed_reply_each(client: EngineClient) -> None:
    for msg_type, fields, reply_type in BURST:
        reply = await client.request(msg_type, **fields)
        assert reply["type"] == reply_type
        assert "error" not in reply
    status = await client.next_event("engine_status_update")
    assert status["engineId"] == "test-engine"
    assert {"isBusy", "cpuPercent", "memoryPercent"} <= set(status)
