"""request_variables / update_variable / delete_variable. Every change pushes the new list to all
of the user's connections."""

from __future__ import annotations

import re
from typing import Any

from engine.handlers.registry import Request, handler
from engine.protocol.errors import EngineError
from engine.protocol.schema import Bool, Field, Object, Schema, String
from engine.store.variables import MODES

VARIABLE_NAME = String(required=True, max_len=64, min_len=1, pattern=re.compile(r"^[A-Z0-9_]+$"),
                       pattern_text="may only hold capital letters, digits and '_'")
VALUE_MAX_LEN = 64 * 1024
LIST_MAX_ITEMS = 1000

DATA_SCHEMA = Schema({
    "value": Field((str, list, int, float), required=True, max_len=VALUE_MAX_LEN),
    "is_secret": Bool(),
    "is_enabled": Bool(),
    "mode": String(choices=MODES),
})


async def _variables_frame(req: Request) -> dict[str, Any]:
    variables = await req.engine.variables.list(req.owner)
    return {"type": "variables_response", "variables": [v.public() for v in variables]}


@handler("request_variables", reply="variables_response")
async def request_variables(req: Request) -> dict[str, Any]:
    frame = await _variables_frame(req)
    del frame["type"]
    return frame


@handler("update_variable", reply="status_response",
         schema=Schema({"name": VARIABLE_NAME, "data": Object(required=True, max_len=16)}))
async def update_variable(req: Request) -> dict[str, Any]:
    data = DATA_SCHEMA.validate(req.fields["data"])
    mode = data.get("mode", "single")
    value = data["value"]
    if mode == "single":
        if isinstance(value, list):
            raise EngineError.invalid("data.value", "must be a single text when mode is 'single'")
        value = str(value)
        if len(value) > VALUE_MAX_LEN:
            raise EngineError.invalid("data.value", f"is longer than {VALUE_MAX_LEN} characters")
    else:
        if not isinstance(value, list) or not value:
            raise EngineError.invalid("data.value", f"must be a non-empty list of texts when mode is '{mode}'")
        if len(value) > LIST_MAX_ITEMS or not all(isinstance(v, str) and len(v) <= VALUE_MAX_LEN for v in value):
            raise EngineError.invalid("data.value", f"must hold at most {LIST_MAX_ITEMS} texts "
                                      f"of at most {VALUE_MAX_LEN} characters")
    name = req.fields["name"]
    await req.engine.variables.upsert(req.owner, name, value,
                                      is_secret=data.get("is_secret", False),
                                      is_enabled=data.get("is_enabled", True), mode=mode)
    req.engine.publish_to_owner(req.owner, await _variables_frame(req))
    return {"status": f"Variable '{name}' saved.", "request_type": req.type, "name": name}


@handler("delete_variable", reply="status_response", schema=Schema({"name": VARIABLE_NAME}))
async def delete_variable(req: Request) -> dict[str, Any]:
    name = req.fields["name"]
    if not await req.engine.variables.delete(req.owner, name):
        raise EngineError.not_found(f"The variable '{name}'")
    req.engine.publish_to_owner(req.owner, await _variables_frame(req))
    return {"status": f"Variable '{name}' deleted.", "request_type": req.type, "name": name}
