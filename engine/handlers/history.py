"""request_connection_history: payloads that crossed one connection of one of your jobs."""

from __future__ import annotations

from typing import Any

from engine.handlers.registry import Request, handler
from engine.protocol.errors import EngineError
from engine.protocol.schema import Schema, String

JOB_ID = String(required=True, max_len=128, min_len=1)


@handler("request_connection_history", reply="connection_history_response",
         schema=Schema({"job_id": JOB_ID, "connection_id": String(required=True, max_len=256, min_len=1)}))
async def request_connection_history(req: Request) -> dict[str, Any]:
    job_id, connection_id = req.fields["job_id"], req.fields["connection_id"]
    runtime = req.engine.runtime
    job = await runtime.record_of(req.owner, job_id) if runtime is not None else None
    if job is None:
        # The same answer for "absent" and "someone else's": job ids are not an oracle (and
        # another owner's job of this name is not this owner's: engine/runtime/job_keys.py).
        raise EngineError.not_found(f"The job '{job_id}'")
    history = await req.engine.history.connection_history(job.job_id, connection_id)
    return {"job_id": job_id, "connection_id": connection_id, "history": history}
