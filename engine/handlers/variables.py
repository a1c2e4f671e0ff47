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

# The GUI's variable dialog (protocol.md §1) sends the whole item as `name` and no `data`:
# {name, is_secret, is_enabled, value: {type: static | random | sequential, value}, isOriginal}.
GUI_ITEM_SCHEMA = Schema({
    "name": VARIABLE_NAME,
    "value": Field((dict, str, int, float, list), required=True, max_len=VALUE_MAX_LEN),
    "is_secret": Bool(),
    "is_enabled": Bool(),
    "mode": String(choices=MODES),  # what our variables_response said; the dialog sends it back
})
GUI_VALUE_TYPES = {"static": "single", "random": "random", "sequential": "sequential"}
GUI_VALUE_SCHEMA = Schema({
    "type": String(required=True, choices=tuple(GUI_VALUE_TYPES)),
    "value": Field((str, list, int, float), nullable=True, max_len=VALUE_MAX_LEN),
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
         schema=Schema({"name": Field((str, dict), required=True, max_len=64, min_len=1),
                        "data": Object(max_len=16)}))
async def update_variable(req: Request) -> dict[str, Any]:
    if isinstance(req.fields["name"], dict):
        name, value, options, where = _from_gui_item(req.fields["name"])
    else:
        name = VARIABLE_NAME.validate("name", req.fields["name"])
        if "data" not in req.fields:
            raise EngineError.invalid("data", "is required")
        options = DATA_SCHEMA.validate(req.fields["data"], prefix="data.")
        value, where = options["value"], "data.value"
    mode = options.get("mode", "single")
    value = _checked(value, mode, where)
    await req.engine.variables.upsert(req.owner, name, value,
                                      is_secret=options.get("is_secret", False),
                                      is_enabled=options.get("is_enabled", True), mode=mode)
    req.engine.publish_to_owner(req.owner, await _variables_frame(req))
    return {"status": f"Variable '{name}' saved.", "request_type": req.type, "name": name}


def _from_gui_item(item: dict[str, Any]) -> tuple[str, Any, dict[str, Any], str]:
    """(name, value, {mode, is_secret, is_enabled}, the value's field name) from the dialog's item."""
    fields = GUI_ITEM_SCHEMA.validate(item, prefix="name.")
    raw = fields["value"]
    options = {key: fields[key] for key in ("is_secret", "is_enabled") if key in fields}
    if isinstance(raw, dict):
        typed = GUI_VALUE_SCHEMA.validate(raw, prefix="name.value.")
        options["mode"] = GUI_VALUE_TYPES[typed["type"]]
        if typed.get("value") is None:
            if options["mode"] == "single":
                return fields["name"], "", options, "name.value.value"
            raise EngineError.invalid(
                "name.value.value", f"must be a list of texts for type '{typed['type']}': this engine "
                f"takes {'one at random' if typed['type'] == 'random' else 'the next one'} per run "
                f"(generated values, such as a length or a prefix, are not supported)")
        return fields["name"], typed["value"], options, "name.value.value"
    # A bare value: text, or (sent back from an older reply) a list with its mode.
    options["mode"] = fields.get("mode") or ("random" if isinstance(raw, list) else "single")
    return fields["name"], raw, options, "name.value"


def _checked(value: Any, mode: str, where: str) -> str | list[str]:
    if mode == "single":
        if isinstance(value, list):
            raise EngineError.invalid(where, "must be a single text when mode is 'single'")
        value = str(value)
        if len(value) > VALUE_MAX_LEN:
            raise EngineError.invalid(where, f"is longer than {VALUE_MAX_LEN} characters")
        return value
    if not isinstance(value, list) or not value:
        raise EngineError.invalid(where, f"must be a non-empty list of texts when mode is '{mode}'")
    if len(value) > LIST_MAX_ITEMS or not all(isinstance(v, str) and len(v) <= VALUE_MAX_LEN for v in value):
        raise EngineError.invalid(where, f"must hold at most {LIST_MAX_ITEMS} texts "
                                  f"of at most {VALUE_MAX_LEN} characters")
    return value


@handler("delete_variable", reply="status_response", schema=Schema({"name": VARIABLE_NAME}))
async def delete_variable(req: Request) -> dict[str, Any]:
    name = req.fields["name"]
    if not await req.engine.variables.delete(req.owner, name):
        raise EngineError.not_found(f"The variable '{name}'")
    req.engine.publish_to_owner(req.owner, await _variables_frame(req))
    return {"status": f"Variable '{name}' deleted.", "request_type": req.type, "name": name}
