"""Manual approvals: one place that asks, waits, and takes the first answer.

A manual-approval node asks through `ApprovalCenter.ask` (its job, engine/runtime/job.py, keeps
the request's id and deadline in its checkpoint); the request goes to every connection of the
job's owner (MANUAL_APPROVAL_REQUESTED) and to the desktop app's subscribers. Whoever answers
first (a client's `manual_approval_response`, the desktop app through `resolve`, or the
timeout) wins; everyone then hears MANUAL_APPROVAL_RESOLVED.

A request outlives the job object that asked: a job released from memory while it waits, or
restored after a restart, asks again with the same id, and `ask` then returns the pending
request's future (or `decided` the answer that came meanwhile) instead of asking twice.
Everything here runs on the event loop thread; nothing blocks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from engine.events import Delivery, Event
from engine.runtime.job_keys import wire_id

log = logging.getLogger(__name__)

DECISIONS = ("APPROVED", "REJECTED")


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    approval_id: str
    job_id: str
    owner: str
    node_id: str
    node_name: str
    module_id: str
    message: str
    requested_at: float
    timeout_s: float
    workflow_name: str | None
    default_decision: str = "REJECTED"  # what its timeout answers (the owner's setting)

    @property
    def deadline(self) -> float:
        return self.requested_at + self.timeout_s

    @property
    def wire_id(self) -> str:
        """The job id its owner knows (`job_id` is the storage key: engine/runtime/job_keys.py)."""
        return wire_id(self.job_id)

    def remaining_s(self, now: float | None = None) -> float:
        return max(0.0, self.deadline - (time.time() if now is None else now))

    def frame(self) -> dict[str, Any]:
        """`timeout_s` is what is left of the wait, to a tenth of a second (a request asked
        again after a restart says how long it still waits; `requested_at` stays the
        original time), `expires_at` its wall-clock end."""
        return {"type": "MANUAL_APPROVAL_REQUESTED", "approval_id": self.approval_id,
                "job_id": self.wire_id, "workflow_context_id": self.wire_id,
                "node_id": self.node_id, "node_name": self.node_name,
                "module_id": self.module_id, "message": self.message,
                "requested_at": self.requested_at, "timeout_s": round(self.remaining_s(), 1),
                "expires_at": self.deadline, "workflow_name": self.workflow_name}


@dataclass(frozen=True, slots=True)
class ApprovalResolution:
    approval_id: str
    decision: str
    decided_by: str
    comment: str | None = None


@dataclass(slots=True)
class _Pending:
    request: ApprovalRequest
    future: asyncio.Future[ApprovalResolution]
    context_id: str  # the job id the GUI knows (the top-level job for sub-workflows)


class ApprovalCenter:
    def __init__(self, publish: Callable[[Event], None],
                 on_answer: Callable[[str], None] | None = None) -> None:
        self._publish = publish  # the event bus's publish
        # Called with the asking job's top-level id once a request is answered or withdrawn:
        # the runtime wakes a job released from memory (one hook, no callback per request).
        self._on_answer = on_answer
        self._pending: dict[str, _Pending] = {}
        # Answers not yet taken by their job (it was released from memory, or is being
        # restored): `decided` hands them over, `forget` drops them.
        self._decided: dict[str, ApprovalResolution] = {}
        self._subscribers: list[tuple[Callable[[ApprovalRequest], None],
                                      Callable[[ApprovalResolution], None]]] = []

    # -- the desktop app's API ---------------------------------------------------------------

    def pending(self, owner: str | None = None) -> list[ApprovalRequest]:
        """Unanswered requests, oldest first (optionally only one owner's)."""
        items = [p.request for p in self._pending.values()]
        if owner is not None:
            items = [r for r in items if r.owner == owner.lower()]
        return sorted(items, key=lambda r: r.requested_at)

    def subscribe(self, on_requested: Callable[[ApprovalRequest], None],
                  on_resolved: Callable[[ApprovalResolution], None]) -> Callable[[], None]:
        entry = (on_requested, on_resolved)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)
        return unsubscribe

    def resolve(self, approval_id: str, decision: str, decided_by: str = "desktop",
                comment: str | None = None) -> bool:
        """Answer a request. False if it is unknown or already answered (first answer wins)."""
        decision = str(decision).upper()
        if decision not in DECISIONS:
            raise ValueError(f"decision must be APPROVED or REJECTED, not {decision!r}")
        pending = self._pending.pop(approval_id, None)
        if pending is None or pending.future.done():
            return False
        resolution = ApprovalResolution(approval_id, decision, decided_by, comment)
        self._decided[approval_id] = resolution
        pending.future.set_result(resolution)
        self._announce_resolved(pending, resolution)
        if self._on_answer is not None:
            self._on_answer(pending.context_id)
        return True

    # -- for the runtime and the handlers ----------------------------------------------------

    def find(self, approval_id: str | None = None, job_id: str | None = None,
             node_id: str | None = None, owner: str | None = None) -> ApprovalRequest | None:
        """By id, or by the wire job id (the asking job's or its top-level job's) and node id
        among `owner`'s requests (two owners may each have a job of that name)."""
        if approval_id:
            pending = self._pending.get(approval_id)
            return pending.request if pending else None
        for pending in self._pending.values():
            request = pending.request
            if request.node_id != node_id or (owner is not None and request.owner != owner):
                continue
            if job_id in (request.wire_id, wire_id(pending.context_id)):
                return request
        return None

    def frames_for(self, owner: str) -> list[dict[str, Any]]:
        return [self._request_frame(p) for p in sorted(self._pending.values(),
                                                       key=lambda p: p.request.requested_at)
                if p.request.owner == owner]

    def ask(self, request: ApprovalRequest, context_id: str) -> "asyncio.Future[ApprovalResolution]":
        """Ask (or, for a request already pending under its id, rejoin it without asking
        again); the future is done with the first answer. The caller handles the timeout
        (`resolve(..., decided_by="timeout")`) and a cancelled job (`withdraw`)."""
        pending = self._pending.get(request.approval_id)
        if pending is not None:
            return pending.future
        future: asyncio.Future[ApprovalResolution] = asyncio.get_running_loop().create_future()
        pending = _Pending(request, future, context_id)
        self._pending[request.approval_id] = pending
        self._publish(Event(request.owner, self._request_frame(pending), Delivery.ESSENTIAL))
        for on_requested, _ in list(self._subscribers):
            try:
                on_requested(request)
            except Exception:  # one faulty subscriber must not stop the job
                log.exception("approval subscriber failed")
        return future

    def decided(self, approval_id: str) -> ApprovalResolution | None:
        """The answer to a request whose job has not taken it yet."""
        return self._decided.get(approval_id)

    def forget(self, approval_id: str) -> None:
        """The job has its answer (and its checkpoint records it)."""
        self._decided.pop(approval_id, None)

    def withdraw(self, approval_id: str, reason: str = "the job ended before an answer came") -> None:
        """The job that asked is over: everyone hears the request was resolved, so dialogs close."""
        self._decided.pop(approval_id, None)
        pending = self._pending.pop(approval_id, None)
        if pending is None:
            return
        resolution = ApprovalResolution(approval_id, "REJECTED", "cancelled", reason)
        if not pending.future.done():
            pending.future.set_result(resolution)
        self._announce_resolved(pending, resolution)
        if self._on_answer is not None:
            self._on_answer(pending.context_id)

    def waiting_future(self, approval_id: str) -> "asyncio.Future[ApprovalResolution] | None":
        pending = self._pending.get(approval_id)
        return pending.future if pending is not None else None

    def _request_frame(self, pending: _Pending) -> dict[str, Any]:
        frame = pending.request.frame()
        frame["workflow_context_id"] = wire_id(pending.context_id)
        return frame

    def _announce_resolved(self, pending: _Pending, resolution: ApprovalResolution) -> None:
        request = pending.request
        frame = {"type": "MANUAL_APPROVAL_RESOLVED", "approval_id": resolution.approval_id,
                 "job_id": request.wire_id, "workflow_context_id": wire_id(pending.context_id),
                 "node_id": request.node_id, "decision": resolution.decision,
                 "decided_by": resolution.decided_by}
        if resolution.comment:
            frame["comment"] = resolution.comment
        self._publish(Event(request.owner, frame, Delivery.ESSENTIAL))
        for _, on_resolved in list(self._subscribers):
            try:
                on_resolved(resolution)
            except Exception:
                log.exception("approval subscriber failed")
        log.info("approval %s for job %s node %s: %s by %s", resolution.approval_id,
                 request.job_id, request.node_id, resolution.decision, resolution.decided_by)
