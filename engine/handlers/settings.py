"""request_settings / save_settings."""

from __future__ import annotations

import json
from typing import Any

from engine.handlers.registry import Request, handler
from engine.logging_setup import set_level
from engine.protocol.errors import EngineError
from engine.protocol.schema import Object, Schema
from engine.store.settings import MAX_SETTINGS_BYTES


@handler("request_settings", reply="settings_response")
async def request_settings(req: Request) -> dict[str, Any]:
    return {"settings": (await req.engine.settings.get(req.owner)).as_dict()}


@handler("save_settings", reply="settings_response",
         schema=Schema({"settings": Object(required=True, max_len=1000)}))
async def save_settings(req: Request) -> dict[str, Any]:
    settings = req.fields["settings"]
    # Measured on the worker thread: a frame may carry megabytes before this check refuses it.
    size = await req.engine.workers.run(_encoded_size, settings)
    if size > MAX_SETTINGS_BYTES:
        raise EngineError.invalid("settings", f"is {size} bytes; at most {MAX_SETTINGS_BYTES} are allowed")
    saved = await req.engine.settings.save(req.owner, settings)  # refuses a value that does not fit
    if saved["log_level"]:
        set_level(saved["log_level"])  # the engine log follows the setting (engine-wide)
    return {"settings": saved.as_dict(), "status": "saved"}


def _encoded_size(settings: dict[str, Any]) -> int:
    return len(json.dumps(settings, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
