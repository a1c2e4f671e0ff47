"""Helpers for the runtime and module tests: build workflows the way the web GUI sends them,
run them over a real socket and collect the job's events up to its terminal status."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from typing import Any, AsyncIterator

from engine.client import EngineClient
from engine.runtime.state import FINAL_TEXTS

TERMINAL = FINAL_TEXTS


def node(node_id: str, module_id: str, name: str | None = None, **config: Any) -> dict[str, Any]:
    """A node as the GUI's canvas stores it."""
    return {"id": node_id, "name": name or node_id, "x": 100, "y": 100, "module_id": module_id,
            "config_values": config, "data": {"color": "#888"}}


def edge(source: str, target: str, port: str | None = None, edge_id: str | None = None,
         target_port: str | None = "input") -> dict[str, Any]:
    return {"id": edge_id or f"{source}-{target}" + (f"-{port}" if port else ""),
            "source": source, "target": target, "source_port_name": port,
            "target_port_name": target_port, "type": "default", "animated": False}


def workflow(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    data = {"nodes": nodes, "connections": edges,
            "global_loop_config": {"isEnabled": False, "iterations": 1, "isDelayEnabled": False,
                                   "delayType": "static", "delayStatic": 0, "delayRandomMin": 0,
                                   "delayRandomMax": 0}}
    data.update(extra)
    return data


async def start(client: EngineClient, wf: dict[str, Any], *, mode: str = "EXECUTE",
                job_id: str | None = None, preset_name: str = "unsaved-workflow",
                initial_payload: dict[str, Any] | None = None, start_node_id: str | None = None) -> str:
    """Send execute_workflow exactly like the GUI (plus a request_id) and return the job id."""
    job_id = job_id or str(uuid.uuid4())
    reply = await client.request("execute_workflow", job_id=job_id, workflow_data=wf,
                                 initial_payload=initial_payload if initial_payload is not None else {},
                                 preset_name=preset_name, mode=mode, start_node_id=start_node_id)
    assert reply["job_id"] == job_id, reply
    return job_id


def belongs(event: dict[str, Any], job_id: str) -> bool:
    return event.get("job_id") == job_id or event.get("workflow_context_id") == job_id


async def collect(client: EngineClient, job_id: str, *, timeout: float = 20.0,
                  until: tuple[str, ...] = TERMINAL) -> list[dict[str, Any]]:
    """Every event of the job up to (and including) its status update in `until`.
    Events of other jobs are put back for later readers."""
    events: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []

    async def read() -> None:
        while True:
            event = await client._events.get()
            if not belongs(event, job_id):
                others.append(event)
                continue
            events.append(event)
            if event.get("type") == "workflow_status_update" and event["status_data"]["status"] in until:
                return
    try:
        await asyncio.wait_for(read(), timeout)
    finally:
        for event in others:
            client._events.put_nowait(event)
    return events


async def run(client: EngineClient, wf: dict[str, Any], **kwargs: Any) -> tuple[str, list[dict[str, Any]]]:
    job_id = await start(client, wf, **kwargs)
    return job_id, await collect(client, job_id)


def final(events: list[dict[str, Any]]) -> dict[str, Any]:
    return events[-1]["status_data"]


def metrics(events: list[dict[str, Any]], status: str | None = None) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "NODE_EXECUTION_METRIC"
            and (status is None or e["status"] == status)]


def ran(events: list[dict[str, Any]]) -> list[str]:
    """Node ids in the order they finished successfully."""
    return [e["node_id"] for e in metrics(events, "SUCCESS")]


@contextlib.asynccontextmanager
async def database_held(engine: Any) -> AsyncIterator["asyncio.Future[None]"]:
    """The engine's database thread is busy until the block ends: nothing is read or committed
    meanwhile. Yields the blocker's future (done only once the block has ended)."""
    held, release = threading.Event(), threading.Event()

    def hold(_conn: Any) -> None:
        held.set()
        release.wait(30)

    blocked = asyncio.ensure_future(engine.db.run(hold))
    await asyncio.to_thread(held.wait, 10)
    try:
        yield blocked
    finally:
        release.set()
        await blocked
