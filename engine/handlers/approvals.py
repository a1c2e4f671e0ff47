"""manual_approval_response: a client answers a pending manual approval (first answer wins)."""

from __future__ import annotations

from typing import Any

from engine.handlers.registry import Request, handler
from engine.protocol.errors import EngineError, ErrorCode
from engine.protocol.schema import Schema, String

DECISION = String(required=True, max_len=16,
                  check=lambda v: None if v.upper() in ("APPROVED", "REJECTED")
                  else "must be 'APPROVED' or 'REJECTED'")


@handler("manual_approval_response", reply="status_response", schema=Schema({
    "approval_id": String(max_len=64, nullable=True),
    "job_id": String(max_len=256, nullable=True),
    "node_id": String(max_len=256, nullable=True),
    "decision": DECISION,
    "comment": String(max_len=2000, nullable=True),
}))
async def manual_approval_response(req: Request) -> dict[str, Any]:
    f = req.fields
    if req.engine.runtime is None:
        raise EngineError(ErrorCode.INTERNAL, "The engine is not running.")
    center = req.engine.runtime.approvals
    if not f.get("approval_id") and not (f.get("job_id") and f.get("node_id")):
        raise EngineError.invalid("approval_id", "is required (or job_id and node_id)")
    request = center.find(f.get("approval_id"), f.get("job_id"), f.get("node_id"), owner=req.owner)
    if request is None or request.owner != req.owner:
        raise EngineError(ErrorCode.NOT_FOUND, "No pending approval matches; it may have been "
                          "answered already or timed out.")
    decision = f["decision"].upper()
    if not center.resolve(request.approval_id, decision, decided_by=req.address,
                          comment=f.get("comment")):
        raise EngineError(ErrorCode.CONFLICT, "This approval was already answered.")
    return {"status": f"Approval {request.approval_id}: {decision}.", "request_type": req.type,
            "approval_id": request.approval_id, "decision": decision}
