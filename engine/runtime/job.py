"""One job: a workflow graph run (or simulated) from its start nodes to its last branch.

The job holds its state machine (engine/runtime/state.py: `transition` is the only place its
status changes) and its control (pause closes a gate that nodes pass before they start, running
nodes finish; stop cancels the job's task, sync modules see `ctx.cancelled`). The rest is its
three parts, each handed only what it uses:

- the scheduler (engine/runtime/scheduler.py): branches, merges, iterations, cancellation;
- the node runner (engine/runtime/runner.py): one node, its retries, timeout and error port;
- the reporter (engine/runtime/reporter.py): its frames to the owner and its history records.

The job is also each node's `NodeHost` (engine/components/api.py): what a module's context may
ask of it. Per-job state lives here, nothing global.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from engine.components.api import NodeContext
from engine.runtime.approvals import ApprovalCenter, ApprovalRequest, ApprovalResolution
from engine.runtime.checkpoint import JobCheckpoints, Token
from engine.runtime.executor import Executor
from engine.runtime.graph import Graph
from engine.runtime.job_keys import wire_id
from engine.runtime.loader import LoadedModule
from engine.runtime.payload import Snapshot, as_payload, decode, public_result
from engine.runtime.reporter import JobReporter
from engine.runtime.runner import Activity, JobFailure, NodeRunner
from engine.runtime.scheduler import Frontier, Latch, Scheduler
from engine.runtime.state import ACTIVE, JobStatus, check_transition
from engine.runtime.templating import Masker, Renderer

if TYPE_CHECKING:
    from engine.store.settings import SettingsView

log = logging.getLogger("engine.jobs")

RunChild = Callable[["Job", NodeContext, str, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class JobServices:
    """What a job uses of the engine, and nothing else."""

    reporter: JobReporter
    executor: Executor
    approvals: ApprovalCenter
    shared_folders: Any                      # engine.files.SharedFolders (ctx.shared_files)
    run_child: RunChild                      # Runtime.run_child
    datasets_for: Callable[[str, Any], Any] | None  # Engine.datasets_for(owner, settings)
    flushed: Callable[[], "asyncio.Future[None]"]  # the recorder's group commit, as a future
    max_node_runs: int
    approval_timeout_s: float
    checkpoints: bool = True                 # durable jobs (EngineConfig.checkpoints)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What to run: everything the start call was given, checked. Keyword-built, so a new
    field (where a run came from, D6) is one more line here and in Runtime.start."""

    owner: str
    job_id: str
    graph: Graph
    modules: dict[str, LoadedModule]
    mode: str = "EXECUTE"
    initial_payload: Any = None
    preset_name: str | None = None
    start_node_id: str | None = None
    # What started the run (D6): {"kind": "gui" | "schedule" | "webhook" | "file_watch" |
    # "error_workflow", "rule_id"?, "keep"?}; a client's run is "gui". "keep" is the rule's
    # `keep_history` when it is not "all" (KEEP_UNSUCCESSFUL).
    started_by: dict[str, Any] | None = None


# started_by["keep"]: the run is kept in the history only when it does not succeed (an
# automation's `keep_history`, like n8n's "save successful production executions: off"). A
# busy webhook's successful runs then cost no history rows and no disk.
KEEP_UNSUCCESSFUL = "failed_or_stopped"


@dataclass(slots=True)
class Restored:
    """How a job came back from its checkpoint (engine/runtime/runtime.py `_restore`)."""

    tokens: list[Token]           # its branches, where they were
    interrupted: Token | None     # a token at a node that is not safe to repeat and had started
    interrupted_node: str = ""    # that node, for the error text
    forced: bool = False          # resume_job: run the interrupted node again anyway


class Job:
    __slots__ = ("loop", "spec", "owner", "job_id", "mode", "preset_name", "services", "renderer",
                 "masker", "settings", "parent", "depth", "status", "start_time", "end_time",
                 "error", "result", "final_payload", "task", "released", "ended", "begun", "gate",
                 "stop_reason", "refused", "create_op", "child_seq", "frontier", "reporter",
                 "runner", "scheduler", "started_by", "checkpoints", "activity", "restored",
                 "keep_checkpoint", "tree", "__weakref__")

    def __init__(self, spec: JobSpec, services: JobServices, *, renderer: Renderer,
                 masker: Masker, settings: "SettingsView", parent: "Job | None" = None,
                 restored: Restored | None = None, tree: Any = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.spec = spec
        self.owner = spec.owner
        self.job_id = spec.job_id
        self.mode = spec.mode
        self.preset_name = spec.preset_name
        self.started_by: dict[str, Any] = dict(spec.started_by or {"kind": "gui"})
        self.services = services
        self.renderer = renderer
        self.masker = masker
        self.settings = settings
        self.parent = parent
        self.depth = parent.depth + 1 if parent else 0
        self.status = JobStatus.RUNNING
        self.start_time = time.time()
        self.end_time: float | None = None
        self.error: str | None = None
        self.result: Any = None
        self.final_payload: dict[str, Any] | None = None
        self.task: asyncio.Task[None] | None = None
        # Cleared while the start's acknowledgement is on its way (Runtime.start): the client
        # hears "started" before any event of the job.
        self.released = Latch(True)
        # Set once the job's outcome is known (final status, result, final payload), before
        # that outcome is committed and published: for callers that want the run's result and
        # not its record (a webhook's answer). Also set when the task ends without an outcome.
        self.ended = Latch(False)
        self.begun = False  # past the start gate: from here on, stopping cancels the task
        self.gate = parent.gate if parent is not None else Latch(True)  # pausing pauses sub-workflows too
        self.stop_reason: str | None = None  # "user" or "engine"
        self.refused: str | None = None  # why the job must end before it begins (Runtime._committed)
        self.create_op = 0   # the recorder's number for this job's record (the start handshake)
        self.child_seq = 0   # sub-workflows started by this job, for their ids
        self.frontier = Frontier(spec.job_id)
        self.reporter = services.reporter
        self.checkpoints = JobCheckpoints(services.reporter.recorder, job_id=spec.job_id,
                                          top_job_id=self.top.job_id, sealed=bool(masker),
                                          enabled=services.checkpoints)
        self.activity: Activity = parent.activity if parent is not None else Activity()
        self.restored = restored
        self.keep_checkpoint = False  # ended FAILED by an interruption: resume_job may continue it
        # The checkpointed jobs of this tree (engine/store/checkpoints.py StoredJob by id), for
        # sub-workflows restored with it; only on a restored top-level job.
        self.tree: dict[str, Any] = tree if tree is not None else (parent.tree if parent is not None else {})
        self.runner = NodeRunner(host=self, graph=spec.graph, modules=spec.modules,
                                 executor=services.executor, renderer=renderer, masker=masker,
                                 reporter=self.reporter, frontier=self.frontier,
                                 loop_guard=self.top.frontier if parent else self.frontier,
                                 max_node_runs=services.max_node_runs, gate=self.gate, mode=spec.mode,
                                 checkpoints=self.checkpoints, activity=self.activity)
        self.scheduler = Scheduler(graph=spec.graph, modules=spec.modules, runner=self.runner,
                                   reporter=self.reporter, frontier=self.frontier, gate=self.gate,
                                   mode=spec.mode, checkpoints=self.checkpoints)

    # -- facts the handlers and the desktop app read -----------------------------------------

    @property
    def top(self) -> "Job":
        """The top-level job of this tree (itself for a top-level job). Looked up, not kept:
        `self.top = self` would be a reference cycle, and every finished job would wait for
        the cyclic garbage collector instead of being freed at once."""
        job = self
        while job.parent is not None:
            job = job.parent
        return job

    @property
    def is_child(self) -> bool:
        return self.parent is not None

    @property
    def wire_id(self) -> str:
        """The id its owner knows it by (`job_id` is the storage key: engine/runtime/job_keys.py)."""
        return wire_id(self.job_id)

    def status_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status.value, "start_time": self.start_time,
                                "end_time": self.end_time, "preset_name": self.preset_name,
                                "mode": self.mode, "started_by": self.started_by}
        if self.error is not None:
            data["error"] = self.error
        if self.result is not None:
            data["result"] = self.result
        if self.restored is not None and not self.status.is_final():
            data["resumed"] = True
        if self.keep_checkpoint:
            data["resumable"] = True
        return data

    def status_frame(self) -> dict[str, Any]:
        return {"type": "workflow_status_update", "job_id": self.wire_id,
                "status_data": self.masker.deep(self.status_data())}

    # -- the state machine -------------------------------------------------------------------

    def transition(self, new: JobStatus, *, error: str | None = None,
                   result_text: str | None = None) -> Awaitable[None]:
        """The one place a job's status changes: checked against the state machine
        (engine/runtime/state.py), recorded, then published to the owner. A final status is
        published once its record is committed, so whoever hears it can read the whole
        history (at once when the record is discarded before reaching the writer): await
        the result (it is already done for the other states)."""
        check_transition(self.status, new)
        self.status = new
        if new.is_final():
            self.end_time = time.time()
            self.error = error
        self.reporter.record_status(new.value, self.end_time, self.error, result_text)
        if new.is_final():
            # A discarded record none of which reached the writer is never on disk: whoever
            # hears the status has nothing to read, and a crash before the next commit leaves
            # nothing to resume, so there is no commit to wait for.
            nothing_to_commit = self.discards_record and self.reporter.discard(self.create_op)
            if not nothing_to_commit:
                return self._publish_when_committed()
        self.reporter.status(self.status_data())
        return _done()

    @property
    def discards_record(self) -> bool:
        """A top-level run that succeeded and whose record is not kept (KEEP_UNSUCCESSFUL):
        the history writer drops (or deletes) it and its sub-workflows' records."""
        return (self.status is JobStatus.SUCCEEDED and self.parent is None
                and self.started_by.get("keep") == KEEP_UNSUCCESSFUL)

    async def _publish_when_committed(self) -> None:
        try:
            # Cancelling this wait (a stop while the commit is under way) cancels only the
            # job's own future: the writer skips it, the commit goes on.
            await self.services.flushed()
        except asyncio.CancelledError:
            pass
        self.reporter.status(self.status_data())

    # -- control -----------------------------------------------------------------------------

    def pause(self) -> bool:
        if self.status is not JobStatus.RUNNING:
            return False
        self.gate.clear()
        self.transition(JobStatus.PAUSED)
        self.reporter.line("Workflow", None, "Paused: running nodes finish, no new node starts until resumed.")
        return True

    def resume(self) -> bool:
        if self.status is not JobStatus.PAUSED:
            return False
        self.gate.set()
        self.transition(JobStatus.RUNNING)
        self.reporter.line("Workflow", None, "Resumed.")
        return True

    def hold(self) -> None:
        """No new node starts (a graceful stop: running nodes finish), without the job
        becoming PAUSED: it goes on as it was after the restart."""
        self.gate.clear()

    def stop(self, reason: str = "user") -> bool:
        """Stop the job: "user" and "engine" end it STOPPED; "suspend" ends only its task,
        leaving it unfinished in its checkpoint (released from memory, or at a graceful stop)."""
        if self.status not in ACTIVE or self.task is None or self.task.done():
            return False
        self.stop_reason = self.stop_reason or reason
        self.runner.cancel_running()
        if self.begun:
            self.task.cancel()
        else:
            # A task cancelled before its first step never runs its body (no STOPPED status,
            # no record): let run() start and see the stop instead.
            self.released.set()
        return True

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """The whole job, start to final status. Never raises for a top-level job; a child
        job re-raises cancellation so its parent node stops too."""
        try:
            await self._run()
        finally:
            self.ended.set()

    async def _run(self) -> None:
        status, error = JobStatus.SUCCEEDED, None
        cancelled = False
        graph = self.spec.graph
        try:
            if not self.released.is_set():
                await self.released.wait()
            if self.stop_reason is not None:
                raise asyncio.CancelledError  # stopped before it began
            if self.refused is not None:
                raise JobFailure(self.refused)  # its start could not be recorded: nothing runs
            self.begun = True
            restored = self.restored
            tokens = None
            if restored is not None:
                # No branch position, no node run and no end reached: it had not begun when
                # the engine stopped (its record was committed, its first checkpoint not yet),
                # so it begins now, from its start nodes.
                begun_before = bool(restored.tokens) or self.frontier.run_seq > 0 or self.scheduler.final is not None
                tokens = restored.tokens if begun_before else None
                if restored.interrupted is not None and not restored.forced:
                    self.top.keep_checkpoint = True
                    raise JobFailure(
                        f"interrupted: the engine stopped while node '{restored.interrupted_node}' "
                        f"was running. That module is not marked safe to run twice "
                        f"(\"idempotent\"), so the job stopped there instead of running it "
                        f"again. Send resume_job to run it again and go on from there.",
                        restored.interrupted.node_id)
                if not self.is_child and self.gate.is_set():
                    self.reporter.line("Workflow", None, "Resumed from its checkpoint (after a restart, "
                                       "or back from waiting in the database).")
            if not self.is_child:
                self.reporter.status(self.status_data())
            log.debug("job %s %s (%s, workflow %r, owner %s)", self.job_id,
                      "resumed" if restored else "started", self.mode, self.preset_name, self.owner)
            initial = as_payload(self.spec.initial_payload)
            if graph.timeout_s:
                async with asyncio.timeout(graph.timeout_s):
                    await self.scheduler.run(initial, self.spec.start_node_id, tokens)
            else:
                await self.scheduler.run(initial, self.spec.start_node_id, tokens)
        except asyncio.CancelledError:
            cancelled = True
            status = JobStatus.STOPPED
            if self.top.stop_reason == "suspend":
                await self.scheduler.cancel()
                self.runner.cancel_running()
                raise  # kept unfinished in its checkpoint; no status change
            if self.stop_reason == "engine":
                error = "interrupted: the engine was stopped while this job was running"
        except TimeoutError:
            status = JobStatus.FAILED
            error = (f"The workflow ran longer than its timeout of {graph.timeout_s:g} s "
                     f"and was stopped.")
        except JobFailure as failure:
            status, error = JobStatus.FAILED, str(failure)
        except Exception as exc:  # noqa: BLE001 - a bug must end the job, visibly
            log.exception("job %s failed unexpectedly", self.job_id)
            status, error = JobStatus.FAILED, f"The engine failed while running this job ({exc!r}); the engine log has the details."
        await self.scheduler.cancel()
        await self._finish(status, error)
        if cancelled and self.is_child:
            raise asyncio.CancelledError

    def take_final(self, stored: bytes | None) -> None:
        """A restored job's final payload, from its checkpoint (a branch that ended before)."""
        if stored is not None:
            out = as_payload(decode(stored))
            self.scheduler.final = (out, Snapshot(out))

    async def _finish(self, status: JobStatus, error: str | None) -> None:
        self.runner.cancel_running()
        result_text = None
        final = self.scheduler.final
        if final is not None:
            out, snapshot = final
            self.final_payload = snapshot.copy() if snapshot.lossy else out
            if status is JobStatus.SUCCEEDED:
                result_text = self.masker.json_text(snapshot.text())
                limit = _preview_limit(self.settings)
                self.result = public_result(result_text, limit)
        published = self.transition(status, error=self.masker.text(error) if error else None,
                                    result_text=result_text)
        if status is JobStatus.FAILED:
            log.info("job %s failed after %.2f s: %s", self.job_id,
                     (self.end_time or time.time()) - self.start_time, self.error)
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("job %s %s after %.2f s", self.job_id, status.value.lower(),
                      (self.end_time or time.time()) - self.start_time)
        if not self.is_child and not self.top.keep_checkpoint:
            self.checkpoints.done()
        self.ended.set()
        await published
        self.reporter.forget()

    # -- NodeHost: what a node's context may ask of its job ----------------------------------

    def node_log(self, node_id: str, node_name: str, message: str, level: str = "INFO") -> None:
        self.reporter.line(node_name, node_id, message, level)

    def popup(self, node_id: str, title: str, content: Any) -> None:
        self.reporter.popup(node_id, title, content)

    def resolve_path(self, path: str, *, must_exist: bool = True) -> Path:
        return self.services.shared_folders.resolve_inside(path, must_exist=must_exist)

    @property
    def shared_folders(self) -> Any:
        return self.services.shared_folders

    @property
    def datasets(self) -> Any:
        """The owner's datasets within the limits of the job's settings (engine.datasets)."""
        if self.services.datasets_for is None:
            raise RuntimeError("this engine has no datasets")
        return self.services.datasets_for(self.owner, self.settings)

    async def request_approval(self, node_id: str, node_name: str, module_id: str, message: str,
                               timeout_s: float | None, *, token: Token | None = None) -> Any:
        """Ask the owner and wait. Durable: the request's id and deadline are in the node's
        token, so the same request is asked again (or its answer taken) after a restart or
        once the job is back from being released from memory."""
        center = self.services.approvals
        wait = token.wait if token is not None and token.wait and token.wait.get("kind") == "approval" else None
        if wait is not None and wait.get("decision"):
            d = wait["decision"]
            return ApprovalResolution(wait["approval_id"], d["decision"], d["decided_by"], d.get("comment"))
        if wait is None:
            timeout = timeout_s if timeout_s and timeout_s > 0 else self.settings["approval_timeout_s"]
            default = self.settings["approval_default_decision"]  # typed and checked (engine/store/settings.py)
            request = ApprovalRequest(uuid.uuid4().hex, self.job_id, self.owner, node_id, node_name,
                                      module_id, self.masker.text(message), time.time(), timeout,
                                      self.top.preset_name, default)
            wait = approval_wait(request, self.top.job_id, default)
            if token is not None:
                token.wait = wait
                # On disk before anyone hears of it: the id a person answers (in a
                # notification, after a restart) must be the one the job waits for.
                try:
                    await self.checkpoints.committed(self.checkpoints.write(token))
                except Exception:  # noqa: BLE001 - HistoryWriteError: asked anyway, in memory
                    log.warning("job %s: the approval for node %s could not be checkpointed; it is "
                                "asked anyway but will not survive a restart", self.job_id, node_id)
        else:
            request = request_from_wait(wait)
        resolution = center.decided(request.approval_id)
        if resolution is None:
            future = center.ask(request, wait["context_id"])
            self.activity.leave()  # waiting for a person is not work: the job may be released
            try:
                remaining = request.remaining_s()
                if remaining <= 0:
                    center.resolve(request.approval_id, wait["default"], decided_by="timeout")
                resolution = await asyncio.wait_for(asyncio.shield(future), max(remaining, 0.0) or None)
            except TimeoutError:
                center.resolve(request.approval_id, wait["default"], decided_by="timeout")
                resolution = future.result()
            except asyncio.CancelledError:
                if self.top.stop_reason != "suspend":
                    center.withdraw(request.approval_id)
                raise
            finally:
                self.activity.enter()
        center.forget(request.approval_id)
        if token is not None:
            wait["decision"] = {"decision": resolution.decision, "decided_by": resolution.decided_by,
                                "comment": resolution.comment}
            self.checkpoints.write(token)
        return resolution

    async def durable_sleep(self, token: Token | None, seconds: float) -> None:
        """ctx.sleep: the end is a wall-clock time in the node's token, so a delay ends when
        it was meant to, whatever happened to the engine meanwhile."""
        wait = token.wait if token is not None and token.wait and token.wait.get("kind") == "delay" else None
        if wait is None:
            wait = {"kind": "delay", "until": time.time() + seconds}
            if token is not None:
                token.wait = wait
                self.checkpoints.write(token)
        remaining = wait["until"] - time.time()
        if remaining <= 0:
            return
        self.activity.leave()
        try:
            await asyncio.sleep(remaining)
        finally:
            self.activity.enter()

    async def run_child(self, ctx: NodeContext, preset_name: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.services.run_child(self, ctx, preset_name, payload)


def approval_wait(request: ApprovalRequest, context_id: str, default: str) -> dict[str, Any]:
    """An approval as a token's durable wait: enough to ask it again after a restart."""
    return {"kind": "approval", "approval_id": request.approval_id, "job_id": request.job_id,
            "owner": request.owner, "node_id": request.node_id, "node_name": request.node_name,
            "module_id": request.module_id, "message": request.message,
            "requested_at": request.requested_at, "timeout_s": request.timeout_s,
            "workflow_name": request.workflow_name, "context_id": context_id, "default": default}


def request_from_wait(wait: dict[str, Any]) -> ApprovalRequest:
    return ApprovalRequest(wait["approval_id"], wait["job_id"], wait["owner"], wait["node_id"],
                           wait["node_name"], wait["module_id"], wait["message"],
                           float(wait["requested_at"]), float(wait["timeout_s"]), wait.get("workflow_name"),
                           wait["default"])


def _preview_limit(settings: Any) -> int:
    return settings["history_payload_preview_bytes"]  # typed and in range (engine/store/settings.py)


def _done() -> "asyncio.Future[None]":
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future

