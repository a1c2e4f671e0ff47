"""Helpers for the automation tests: presets with trigger nodes saved like the GUI saves them,
and waiting for the runs they start."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.client import EngineClient
from tests.runtime_support import TERMINAL, edge, node, workflow


async def save(client: EngineClient, name: str, data: dict[str, Any], *, check: bool = True) -> dict[str, Any]:
    return await client.request("save_preset", name=name, workflow_data=data,
                                signature=client.signer.sign_workflow(data), check=check)


def triggered(trigger_id: str, trigger_module: str, **config: Any) -> dict[str, Any]:
    """trigger -> set_data (marks the run) : the smallest preset an automation can start."""
    return workflow([node("t", trigger_module, "Trigger", **config),
                     node("s", "set_data", "Mark", data={"marked": True})],
                    [edge("t", "s")])


async def next_run_end(client: EngineClient, *, kind: str | None = None, timeout: float = 20.0,
                       status: tuple[str, ...] = TERMINAL, job_id: str | None = None) -> dict[str, Any]:
    """The next terminal workflow_status_update of a run started by an automation."""
    def wanted(event: dict[str, Any]) -> bool:
        data = event.get("status_data") or {}
        by = data.get("started_by") or {}
        return (data.get("status") in status and by.get("kind") != "gui"
                and (kind is None or by.get("kind") == kind)
                and (job_id is None or event.get("job_id") == job_id))
    return await client.next_event("workflow_status_update", timeout=timeout, where=wanted)


async def triggers(client: EngineClient) -> list[dict[str, Any]]:
    return (await client.request("request_triggers"))["triggers"]


async def wait_for(predicate: Any, timeout: float = 10.0, step: float = 0.05) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(step)
