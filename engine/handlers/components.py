"""request_components_list, and install/uninstall answered honestly (not supported yet)."""

from __future__ import annotations

from typing import Any

from engine.components.catalog import COMPONENT_TYPES
from engine.handlers.registry import Request, handler
from engine.protocol.errors import EngineError, ErrorCode
from engine.protocol.schema import Schema, String

COMPONENT_TYPE = String(required=True, choices=COMPONENT_TYPES)


@handler("request_components_list", reply="components_list_response",
         schema=Schema({"component_type": COMPONENT_TYPE}))
async def request_components_list(req: Request) -> dict[str, Any]:
    component_type = req.fields["component_type"]
    return {"component_type": component_type,
            "components": [c.public() for c in req.engine.components.list(component_type)]}


@handler("install_component", reply="component_install_status",
         schema=Schema({"component_type": COMPONENT_TYPE, "component_id": String(required=True, max_len=64)}))
@handler("uninstall_component", reply="component_install_status",
         schema=Schema({"component_type": COMPONENT_TYPE, "component_id": String(required=True, max_len=64)}))
async def install_component(req: Request) -> dict[str, Any]:
    raise EngineError(ErrorCode.FORBIDDEN,
                      "Installing or removing components from the web GUI is not supported by "
                      "this engine; copy the component folder into the engine's data folder "
                      "(components/<type>/<id>) and restart the engine.",
                      component_id=req.fields["component_id"])
