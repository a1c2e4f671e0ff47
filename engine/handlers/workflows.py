"""execute_workflow, execute_standalone_node, pause/resume/stop_workflow, request_job_status.

Each control message acts on the named job of the asker only (or, without job_id, on all of the
asker's jobs); state changes reach every connection of the owner as workflow_status_update.
"""

from __future__ import annotations

import re
from typing import Any

from engine.handlers.registry import ReplyWhenReady, Request, handler
from engine.protocol.errors import EngineError
from engine.protocol.schema import Field, Object, Schema, String

JOB_ID = String(required=True, max_len=128, min_len=1, pattern=re.compile(r"^[A-Za-z0-9_.:\-]+$"),
                pattern_text="may only hold letters, digits and . _ : -")
OPTIONAL_JOB_ID = String(max_len=128, nullable=True)
MODE = String(max_len=16, nullable=True, check=lambda v: None if v.upper() in ("EXECUTE", "SIMULATE")
              else "must be 'EXECUTE' or 'SIMULATE'")


def runtime_of(req: Request) -> Any:
    """The running engine's runtime (EngineError while the engine is not running)."""
    runtime = req.engine.runtime
    if runtime is None:
        raise EngineError("internal_error", "The engine is not running.")
    return runtime


def _started(req: Request, ticket: Any, what: str) -> ReplyWhenReady:
    """The acknowledgement, sent once the job's record is committed (the runtime's start
    handshake: a job the client heard "started" about is still known, as interrupted, after a
    crash); the connection's next frames are read meanwhile, so many starts share one commit.
    The job begins once the reply is queued, so the client hears "started" before any event."""
    return ReplyWhenReady({"status": f"{what} '{ticket.job_id}' started.", "request_type": req.type,
                           "job_id": ticket.job_id}, ticket.committed, after_sent=ticket.release)


@handler("execute_workflow", reply="status_response", schema=Schema({
    "job_id": JOB_ID,
    "workflow_data": Object(required=True, max_len=64),
    "initial_payload": Field((dict,), nullable=True, max_len=10_000),
    "preset_name": String(max_len=128, nullable=True),
    "mode": MODE,
    "start_node_id": String(max_len=256, nullable=True),
}))
async def execute_workflow(req: Request) -> ReplyWhenReady:
    f = req.fields
    ticket = await runtime_of(req).start_job(
        req.owner, f["job_id"], f["workflow_data"], mode=(f.get("mode") or "EXECUTE"),
        initial_payload=f.get("initial_payload"), preset_name=f.get("preset_name"),
        start_node_id=f.get("start_node_id") or None)
    return _started(req, ticket, "Job")


@handler("execute_standalone_node", reply="status_response", schema=Schema({
    "job_id": JOB_ID,
    "node_data": Object(required=True, max_len=64),
    "mode": MODE,
    "initial_payload": Field((dict,), nullable=True, max_len=10_000),
}))
async def execute_standalone_node(req: Request) -> ReplyWhenReady:
    node_data = req.fields["node_data"]
    module_id = node_data.get("module_id")
    if not isinstance(module_id, str) or not module_id:
        raise EngineError.invalid("node_data.module_id", "is required")
    config = node_data.get("config_values") or {}
    if not isinstance(config, dict):
        raise EngineError.invalid("node_data.config_values", "must be an object")
    node_id = str(node_data.get("id") or node_data.get("node_id") or "standalone")
    workflow = {"nodes": [{"id": node_id, "name": node_data.get("name") or module_id,
                           "module_id": module_id, "config_values": config}],
                "connections": []}
    ticket = await runtime_of(req).start_job(req.owner, req.fields["job_id"], workflow,
                                           mode=req.fields.get("mode") or "EXECUTE",
                                           initial_payload=req.fields.get("initial_payload"),
                                           preset_name=f"standalone: {module_id}")
    return _started(req, ticket, "Standalone node job")


def _control(req: Request, verb: str, done: list[str]) -> dict[str, Any]:
    job_id = req.fields.get("job_id")
    if job_id and not done:
        text = f"Job '{job_id}' was not {verb} (it is not in a state that allows it)."
    elif not done:
        text = f"No job of yours was {verb}."
    else:
        text = f"{len(done)} job(s) {verb}: {', '.join(done)}."
    return {"status": text, "request_type": req.type, "job_ids": done,
            **({"job_id": job_id} if job_id else {})}


CONTROL_SCHEMA = Schema({"job_id": OPTIONAL_JOB_ID})


@handler("pause_workflow", reply="status_response", schema=CONTROL_SCHEMA)
async def pause_workflow(req: Request) -> dict[str, Any]:
    return _control(req, "paused", runtime_of(req).pause(req.owner, req.fields.get("job_id")))


@handler("resume_workflow", reply="status_response", schema=CONTROL_SCHEMA)
async def resume_workflow(req: Request) -> dict[str, Any]:
    return _control(req, "resumed", runtime_of(req).resume(req.owner, req.fields.get("job_id")))


@handler("stop_workflow", reply="status_response", schema=CONTROL_SCHEMA)
async def stop_workflow(req: Request) -> dict[str, Any]:
    return _control(req, "stopped", runtime_of(req).stop_jobs(req.owner, req.fields.get("job_id")))


@handler("request_job_status", reply="job_status_response", schema=Schema({"job_id": JOB_ID}))
async def request_job_status(req: Request) -> dict[str, Any]:
    job_id = req.fields["job_id"]
    status = await runtime_of(req).job_status(req.owner, job_id)
    if status is None:
        raise EngineError.not_found(f"The job '{job_id}'")
    return {"job_id": job_id, "status_data": status}
