"""Manual approval: ask the owner and continue through APPROVED or REJECTED.

In SIMULATE nobody is asked: the node says what it would ask and continues through APPROVED.
"""

from engine.components.api import ModuleError


async def run(ctx, payload):
    message = ctx.config.get("message") or "Please approve to continue."
    try:
        timeout_s = float(ctx.config.get("timeout_s") or 0)
    except (TypeError, ValueError):
        raise ModuleError("'timeout_s' must be a number of seconds") from None
    if ctx.simulate:
        ctx.log(f"Would ask for approval: {message}")
        payload["data"]["approval"] = {"decision": "APPROVED", "decided_by": "simulation",
                                       "simulated": True}
        return {"payload": payload, "output_name": "APPROVED"}
    ctx.log(f"Waiting for approval: {message}")
    answer = await ctx.request_approval(str(message), timeout_s if timeout_s > 0 else None)
    payload["data"]["approval"] = {"approval_id": answer.approval_id, "decision": answer.decision,
                                   "decided_by": answer.decided_by, "comment": answer.comment}
    ctx.log(f"Approval {answer.decision.lower()} by {answer.decided_by}.")
    return {"payload": payload, "output_name": answer.decision}
