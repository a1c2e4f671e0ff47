"""Lists the GUI asks for that this engine does not provide yet: answered with empty lists."""

from __future__ import annotations

from typing import Any

from engine.handlers.registry import Request, handler


@handler("request_prompts_list", reply="prompts_list_response")
async def request_prompts_list(req: Request) -> dict[str, Any]:
    return {"prompts": []}


@handler("request_local_models", reply="local_models_response")
async def request_local_models(req: Request) -> dict[str, Any]:
    return {"models": []}


@handler("request_ai_status", reply="ai_status_response")
async def request_ai_status(req: Request) -> dict[str, Any]:
    return {"providers": []}
