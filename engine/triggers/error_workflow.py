"""The global error workflow: when a run of an owner fails, start the preset named in their
settings (`global_error_handler_enabled`, `global_error_workflow_preset`) with what failed.

It listens to the engine's events like any listener: the failed node comes from the job's last
NODE_EXECUTION_METRIC with status ERROR, the rest from its final workflow_status_update. Never
for a run of the error workflow itself, and at most a few at once per owner, so a storm of
failures cannot start a storm of error workflows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from engine.events import Event
from engine.protocol.errors import EngineError
from engine.runtime.job_keys import new_wire_id
from engine.triggers.launch import RuntimeStarter

log = logging.getLogger(__name__)

MAX_RUNNING_PER_OWNER = 4


class ErrorWorkflow:
    def __init__(self, *, settings: Any, presets: Any, starter: RuntimeStarter,
                 subscribe: Callable[..., Callable[[], None]]) -> None:
        self._settings = settings
        self._presets = presets
        self._starter = starter
        self._subscribe = subscribe
        self._unsubscribe: Callable[[], None] | None = None
        self._failed_node: dict[str, dict[str, Any]] = {}
        self._running: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._unsubscribe = self._subscribe(self._on_event,
                                            ("NODE_EXECUTION_METRIC", "workflow_status_update"))

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _on_event(self, event: Event) -> None:
        frame = event.frame
        kind = frame.get("type")
        job_id = frame.get("job_id")
        if not isinstance(job_id, str) or event.owner is None or "/" in job_id:
            return  # not a job's event, or a sub-workflow's (its parent node reports it)
        if kind == "NODE_EXECUTION_METRIC" and frame.get("status") == "ERROR":
            self._failed_node[job_id] = {
                "node_id": frame.get("node_id"), "node_name": frame.get("node_name"),
                "module_id": frame.get("module_id"),
                "node_error": frame.get("error_message") or frame.get("error")}
        elif kind == "workflow_status_update":
            data = frame.get("status_data") or {}
            status = data.get("status")
            if status not in ("SUCCEEDED", "FAILED", "STOPPED"):
                return
            node = self._failed_node.pop(job_id, None)
            started_by = data.get("started_by") or {}
            if status == "FAILED" and started_by.get("kind") != "error_workflow":
                task = asyncio.ensure_future(self._handle(event.owner, job_id, data, node or {}))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _handle(self, owner: str, job_id: str, data: dict[str, Any], node: dict[str, Any]) -> None:
        settings = await self._settings.get(owner)
        preset = settings.get("global_error_workflow_preset")
        if not settings.get("global_error_handler_enabled") or not isinstance(preset, str) or not preset:
            return
        if self._running.get(owner, 0) >= MAX_RUNNING_PER_OWNER:
            log.warning("error workflow '%s' not started for job %s: %d are still running",
                        preset, job_id, MAX_RUNNING_PER_OWNER)
            return
        found = await self._presets.load(owner, preset)
        if found is None:
            log.warning("the error workflow preset '%s' of %s does not exist; job %s failed "
                        "without it", preset, owner, job_id)
            return
        failure = {"trigger": "error_workflow", "failed_job_id": job_id,
                   "preset_name": data.get("preset_name"), "error": data.get("error"),
                   "node_id": node.get("node_id"), "node_name": node.get("node_name"),
                   "module_id": node.get("module_id"), "node_error": node.get("node_error"),
                   "started_by": data.get("started_by"), "failed_at": data.get("end_time") or time.time()}
        self._running[owner] = self._running.get(owner, 0) + 1
        try:
            ended = await self._starter.start(
                owner, new_wire_id("error"), found[1], preset_name=preset, start_node_id=None,
                initial_payload={"data": failure, "history": []},
                started_by={"kind": "error_workflow", "failed_job_id": job_id})
        except (EngineError, RuntimeError) as exc:
            self._running[owner] -= 1
            log.warning("the error workflow '%s' could not start for job %s: %s", preset, job_id, exc)
            return
        ended.add_done_callback(lambda _f: self._running.__setitem__(owner, self._running[owner] - 1))
