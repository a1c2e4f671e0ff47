"""Jobs released from memory: what the runtime keeps of them, and when they must wake.

A job that only waits (approvals, delays, a pause) for `suspend_after_s` is dropped from memory
(engine/runtime/runtime.py `_release`); what stays is a `Dormant` (a few hundred bytes: its
status for the owner's questions, the ids of its pending approvals, its earliest delay end) and
an entry in `Wakeups`. Everything else is in its checkpoint (engine/store/checkpoints.py), from
which `released_from` decides, for a restart as for a release, whether a job can wait there.
"""

from __future__ import annotations

import asyncio
import heapq
import sys
import time
from typing import Any, Callable

import orjson

from engine.runtime.job_keys import wire_id
from engine.runtime.payload import decode
from engine.runtime.state import JobStatus
from engine.store.checkpoints import StoredJob

GUI_STARTED = {"kind": "gui"}  # shared by the released jobs a client started (read only)


class Dormant:
    """A job released from memory: what the runtime keeps of it (a few hundred bytes; its
    approvals stay pending in the ApprovalCenter), everything else is in its checkpoint."""

    __slots__ = ("job_id", "owner", "status", "start_time", "preset_name", "mode", "started_by",
                 "approvals", "delay_until")

    def __init__(self, job_id: str, owner: str, status: str, start_time: float,
                 preset_name: str | None, mode: str, started_by: Any,
                 approvals: tuple[str, ...], delay_until: float | None) -> None:
        self.job_id = job_id
        self.owner = owner
        self.status = status
        self.start_time = start_time
        self.preset_name = preset_name
        self.mode = mode
        self.started_by = started_by
        self.approvals = approvals      # ids of its pending approvals (in the ApprovalCenter)
        self.delay_until = delay_until  # the earliest delay's end

    def status_data(self) -> dict[str, Any]:
        return {"status": self.status, "start_time": self.start_time, "end_time": None,
                "preset_name": self.preset_name, "mode": self.mode, "started_by": self.started_by}

    @property
    def wire_id(self) -> str:
        return wire_id(self.job_id)

    def status_frame(self) -> dict[str, Any]:
        return {"type": "workflow_status_update", "job_id": self.wire_id,
                "status_data": self.status_data()}


def released_from(job_id: str, tree: dict[str, StoredJob], top: StoredJob, *,
              decided: Callable[[str], Any], pending: Callable[[str], Any]
              ) -> tuple[Dormant, list[dict[str, Any]]] | None:
    """A Dormant for a tree with nothing to run now (paused, or every branch in an
    approval, a delay that has not ended, a sub-workflow or a merge's inbox), and the
    approvals to ask; else None. Its texts are interned (owner, ids, names recur in
    thousands of waiting jobs)."""
    approvals: list[str] = []
    asks: list[dict[str, Any]] = []
    delay_until: float | None = None
    waits_on_something = False
    now = time.time()
    for stored in tree.values():
        for token in stored.tokens:
            if token.edge_id is not None:
                continue
            wait = wait_of(token.wait)
            kind = wait.get("kind") if wait else None
            if kind == "approval" and not wait.get("decision") and decided(wait["approval_id"]) is None:
                for key in ("owner", "job_id", "node_id", "node_name", "module_id", "default",
                            "workflow_name", "context_id"):
                    if isinstance(wait.get(key), str):
                        wait[key] = sys.intern(wait[key])
                if wait["context_id"] == job_id:
                    wait["context_id"] = job_id  # the same string object as the Dormant's key
                known = pending(wait["approval_id"])  # asked while it was in memory
                approvals.append(known.approval_id if known is not None else wait["approval_id"])
                asks.append(wait)
                waits_on_something = True
            elif kind == "delay" and float(wait["until"]) > now:
                until = float(wait["until"])
                delay_until = until if delay_until is None else min(delay_until, until)
                waits_on_something = True
            elif kind == "child" and wait["child_id"] in tree:
                continue
            elif top.status != JobStatus.PAUSED.value:
                return None  # this branch has work to do now
    if top.status != JobStatus.PAUSED.value and not waits_on_something:
        return None
    spec = decode(top.spec)
    started_by = spec.get("started_by")
    if started_by == GUI_STARTED:
        started_by = GUI_STARTED
    preset = spec.get("preset_name")
    dormant = Dormant(job_id, sys.intern(spec["owner"]), sys.intern(top.status), top.start_time,
                      sys.intern(preset) if isinstance(preset, str) else preset,
                      sys.intern(spec.get("mode", "EXECUTE")), started_by, tuple(approvals), delay_until)
    return dormant, asks


class Wakeups:
    """Wall-clock times at which released jobs must be looked at (an approval's deadline, a
    delay's end): one heap and one timer for all of them, however many wait."""

    def __init__(self, due: Callable[[str, float], None]) -> None:
        self._due = due  # (job id, now), for each entry whose time has come
        self._heap: list[tuple[float, str]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def at(self, when: float, job_id: str) -> None:
        heapq.heappush(self._heap, (when, job_id))
        if self._heap[0][0] == when:
            self._arm()

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._heap and not self._closed:
            delay = max(0.0, self._heap[0][0] - time.time())
            self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = time.time()
        while self._heap and self._heap[0][0] <= now + 0.001:
            _, job_id = heapq.heappop(self._heap)
            self._due(job_id, now + 0.001)
        self._arm()


def wait_of(text: str | None) -> dict[str, Any] | None:
    """A token's durable wait (JSON in its checkpoint row)."""
    return orjson.loads(text) if text else None
