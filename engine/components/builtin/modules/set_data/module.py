"""Set data: merge the configured object into payload.data (nested objects merged key by key)."""

import json

from engine.components.api import ModuleError


def _merge(target, source):
    for key, value in source.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
    return target


async def run(ctx, payload):
    data = ctx.config.get("data")
    if data in (None, ""):
        data = {}
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise ModuleError(f"'data' is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ModuleError("'data' must be an object (or JSON text of one)")
    _merge(payload["data"], data)
    return payload
