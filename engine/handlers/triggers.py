"""Automations (extensions): request_triggers, set_trigger_enabled. After any change of a
rule, its owner's connections also get a pushed `triggers_list_response`."""

from __future__ import annotations

from typing import Any

from engine.handlers.registry import Request, handler
from engine.protocol.errors import EngineError
from engine.protocol.schema import Field, Schema, String


def _automations(req: Request) -> Any:
    if req.engine.automations is None:
        raise EngineError("internal_error", "The engine is not running.")
    return req.engine.automations


@handler("request_triggers", reply="triggers_list_response")
async def request_triggers(req: Request) -> dict[str, Any]:
    frame = _automations(req).frame(req.owner)
    del frame["type"]
    return frame


@handler("set_trigger_enabled", reply="status_response", schema=Schema({
    "rule_id": String(required=True, max_len=64, min_len=1),
    "enabled": Field((bool,), required=True),
}))
async def set_trigger_enabled(req: Request) -> dict[str, Any]:
    rule_id, enabled = req.fields["rule_id"], req.fields["enabled"]
    rule = await _automations(req).set_enabled(req.owner, rule_id, enabled)
    state = "enabled" if rule.record.enabled and rule.problem is None else "disabled"
    text = f"Automation '{rule_id}' {state}."
    if enabled and rule.problem is not None:
        text = f"Automation '{rule_id}' stays disabled: {rule.problem}."
    return {"status": text, "request_type": req.type, "rule_id": rule_id,
            "enabled": state == "enabled", **({"disabled_reason": rule.problem} if rule.problem else {})}
