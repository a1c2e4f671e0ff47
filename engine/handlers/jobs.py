"""resume_job and request_jobs_list: the durable-jobs extensions (issue 13).

`resume_job` continues a job that ended FAILED because the engine stopped in the middle of a
node that is not safe to repeat (its `status_data.resumable` is true). `request_jobs_list`
pages through the asker's top-level jobs newest first, so the web GUI or the desktop can show
the ones waiting (PAUSED, or RUNNING but released from memory while they wait) and the
interrupted ones. Another owner's job is answered exactly like an unknown one.
"""

from __future__ import annotations

import math
from typing import Any

from engine.handlers.registry import Request, handler
from engine.handlers.workflows import JOB_ID, runtime_of
from engine.protocol.schema import Field, Integer, Schema
from engine.runtime.job_keys import wire_id
from engine.runtime.state import ACTIVE_TEXTS, STATUS_TEXTS, JobStatus
from engine.store.history import RunFilter, RunRow

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
CURSOR_ID_MAX = 128  # a job id is at most 128 characters (JOB_ID)


MAX_STATUSES = 16


def _check_statuses(value: Any) -> str | None:
    items = [value] if isinstance(value, str) else value
    if not items:
        return "must name at least one status (leave it out for all)"
    if len(items) > MAX_STATUSES:
        return f"lists too many statuses (at most {MAX_STATUSES})"
    allowed = ", ".join(repr(s) for s in STATUS_TEXTS)
    for item in items:
        if not isinstance(item, str) or item not in STATUS_TEXTS:
            shown = repr(item) if len(repr(item)) <= 40 else repr(item)[:37] + "..."
            return f"must be one of {allowed} (or a list of them), not {shown}"
    return None


def _check_cursor(value: list[Any]) -> str | None:
    """`before` is the `next_before` of the previous page: [start_time, job_id]."""
    if len(value) != 2:
        return "must be [start_time, job_id], the next_before of the previous page"
    start, job_id = value
    if isinstance(start, bool) or not isinstance(start, (int, float)) or not math.isfinite(start):
        return "must start with a number (the start_time of the previous page's last job)"
    if not isinstance(job_id, str) or not job_id or len(job_id) > CURSOR_ID_MAX:
        return "must end with a job id (the previous page's last job)"
    return None


LIST_SCHEMA = Schema({
    "status": Field((str, list), nullable=True, check=_check_statuses),
    "limit": Integer(min_value=1, max_value=MAX_LIMIT, nullable=True),
    "before": Field((list,), nullable=True, check=_check_cursor),
})


@handler("resume_job", reply="resume_job_response", echo=("job_id",),
         schema=Schema({"job_id": JOB_ID}))
async def resume_job(req: Request) -> dict[str, Any]:
    """The runtime decides: NOT_FOUND for an unknown job or another owner's (the same answer),
    CONFLICT for one that is not resumable (still running, or ended without a checkpoint)."""
    job_id = req.fields["job_id"]
    await runtime_of(req).resume_job(req.owner, job_id)
    return {"job_id": job_id, "status": JobStatus.RUNNING.value}


@handler("request_jobs_list", reply="jobs_list_response", schema=LIST_SCHEMA)
async def request_jobs_list(req: Request) -> dict[str, Any]:
    f = req.fields
    status = f.get("status")
    statuses = tuple(dict.fromkeys([status] if isinstance(status, str) else status or ()))
    limit = f.get("limit") or DEFAULT_LIMIT
    before = f.get("before")
    runtime = runtime_of(req)
    # The cursor names the job as its owner does; the store pages by the job's key.
    cursor = ((float(before[0]), runtime.key_of(req.owner, before[1]) or before[1])
              if before is not None else None)
    # Status changes reach the database in batches: what was published before this request
    # (a pause, an end) is committed first, so that the status filter sees it.
    await runtime.recorder.flush()
    # One more than asked: whether another page follows, without a count.
    rows = await req.engine.history.runs_page(RunFilter(statuses=statuses, owner=req.owner),
                                              before=cursor, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    jobs = [await _item(runtime, req.owner, row) for row in page]
    last = page[-1] if more and page else None
    return {"jobs": jobs, "next_before": [last.start_time, wire_id(last.job_id)] if last else None}


async def _item(runtime: Any, owner: str, row: RunRow) -> dict[str, Any]:
    """One job of the page: {job_id, ...status_data}, without `result` (request_job_status
    has it; a page of results could be megabytes). For a job that is still active, or kept to
    be resumed, the runtime's status_data (live, with `resumed` / `resumable`) wins over the
    stored row."""
    data: dict[str, Any] | None = None
    if row.status in ACTIVE_TEXTS or row.checkpointed:
        data = await runtime.job_status(owner, wire_id(row.job_id))
    if data is None:  # ended (or was removed by retention) since the page was read
        data = {"status": row.status, "start_time": row.start_time, "end_time": row.end_time,
                "preset_name": row.preset_name, "mode": row.mode, "started_by": row.started_by}
        if row.error is not None:
            data["error"] = row.error
    item = {"job_id": wire_id(row.job_id), **{k: v for k, v in data.items() if k != "result"}}
    item.setdefault("mode", row.mode)  # every item has the same fields, whoever answered
    item.setdefault("started_by", row.started_by)
    item["nodes_done"] = row.nodes_done
    return item
