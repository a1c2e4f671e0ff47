"""request_components_list, and install/uninstall answered honestly (not supported yet)."""

from __future__ import annotations

from typing import Any

from engine.components.catalog import COMPONENT_TYPES
from engine.handlers.registry import Request, handler
from engine.protocol.errors import EngineError, ErrorCode
from engine.protocol.schema import Schema, String

COMPONENT_TYPE = String(required=True, choices=COMPONENT_TYPES)


# A refused list names its component_type: the GUI stops that list's spinner only then.
@handler("request_components_list", reply="components_list_response", echo=("component_type",),
         schema=Schema({"component_type": COMPONENT_TYPE}))
async def request_components_list(req: Request) -> dict[str, Any]:
    component_type = req.fields["component_type"]
    return {"component_type": component_type,
            "components": [c.public() for c in req.engine.components.list(component_type)]}


def _install_refused(error: EngineError, payload: dict[str, Any]) -> dict[str, Any]:
    """component_install_status as the GUI reads it, never with `error`: an error frame would
    skip the GUI's handler, whose "operation in progress" flag then never clears."""
    extra = {key: value for key, value in error.extra.items() if key != "is_installed"}
    return {**extra, "component_id": _text(payload.get("component_id")),
            "component_type": _text(payload.get("component_type")),
            "operation": "uninstall" if payload.get("type") == "uninstall_component" else "install",
            "success": False, "message": error.message, "code": error.code,
            "is_installed": bool(error.extra.get("is_installed", False))}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= 256 else None


INSTALL_SCHEMA = Schema({"component_type": COMPONENT_TYPE,
                         "component_id": String(required=True, max_len=64)})


@handler("install_component", reply="component_install_status", schema=INSTALL_SCHEMA,
         on_error=_install_refused)
@handler("uninstall_component", reply="component_install_status", schema=INSTALL_SCHEMA,
         on_error=_install_refused)
async def install_component(req: Request) -> dict[str, Any]:
    installed = req.engine.components.get(req.fields["component_type"], req.fields["component_id"])
    raise EngineError(ErrorCode.FORBIDDEN,
                      "Installing or removing components from the web GUI is not supported by "
                      "this engine; copy the component folder into the engine's data folder "
                      "(components/<type>/<id>) and restart the engine.",
                      is_installed=installed is not None)
