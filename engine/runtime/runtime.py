"""The runtime: starts jobs, controls them, records them, and brings them back after a restart.

The Engine creates one Runtime with the few services it uses (engine/runtime/services.py) and
calls start/stop. Handlers call `start` (which owns the start handshake: the job begins once
its acknowledgement is out, and the acknowledgement waits for the job's record to be on disk),
`pause`/`resume`/`stop_jobs` and `job_status`; the Engine asks `snapshot(owner)` for what a
newly signed-in connection must hear. The runtime knows no socket: it publishes events on the
engine's bus. Where a node runs sits behind the executor (engine/runtime/executor.py).

Durable jobs: every job is checkpointed at node boundaries (engine/runtime/checkpoint.py). A
job with nothing busy (only approvals, delays or a pause left) for `suspend_after_s` is
released from memory and kept as a small `Dormant` entry (engine/runtime/dormant.py) that wakes
it (restores it from its checkpoint) when an approval is answered, a delay ends or it is resumed. A start restores every
unfinished job the same way; a graceful stop (`stop(suspend=True)`) lets running nodes finish
for a grace period and leaves the jobs unfinished for the next start.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from engine.components.api import ModuleError, NodeContext
from engine.events import Delivery, Event
from engine.protocol.errors import EngineError, ErrorCode
from engine.runtime.approvals import ApprovalCenter
from engine.runtime.dormant import Dormant, Wakeups, released_from, wait_of
from engine.runtime.executor import Executor, LocalExecutor
from engine.runtime.graph import Graph, GraphCache
from engine.runtime.checkpoint import DoneWrite, Token
from engine.runtime.history import HistoryRecorder, HistoryWriteError
from engine.runtime.job import Job, JobServices, JobSpec, Restored, request_from_wait
from engine.runtime import job_keys
from engine.runtime.loader import LoadedModule, ModuleLoader
from engine.runtime.memory import give_back_free_memory
from engine.runtime.reporter import JobReporter
from engine.runtime.retention import Retention
from engine.runtime.services import RuntimeServices
from engine.runtime.payload import Snapshot, as_payload, decode, reserve_entry_ids
from engine.runtime.state import ACTIVE_TEXTS, JobStatus
from engine.runtime.templating import Masker, Renderer
from engine.runtime.threads import ModuleThreads
from engine.store import checkpoints as stored_checkpoints
from engine.store.checkpoints import StoredJob
from engine.store.history import JobRecord
from engine.store.jobs import INTERRUPTED_ERROR, JobsStore

log = logging.getLogger(__name__)

MODES = ("EXECUTE", "SIMULATE")
MAX_SUB_WORKFLOW_DEPTH = 8
MODULE_THREADS = 32
REMEMBER_INTERRUPTED = 100


def job_id_taken(job_id: str) -> EngineError:
    """The answer for a job id its owner already used (running or ran). Another owner's ids
    are not in the asker's namespace (engine/runtime/job_keys.py): those start a run."""
    return EngineError(ErrorCode.CONFLICT, f"The job id '{job_id}' cannot start a new run; every "
                       f"run needs a new job_id.", job_id=job_id)


@dataclass(frozen=True)
class StartTicket:
    """A job that was checked and recorded, waiting for its acknowledgement. The caller sends
    "started" once `committed` is done (it raises EngineError if the job's record could not be
    written: then the job never begins) and calls `release` once that reply is queued."""

    job_id: str  # the wire id, as the client named it
    committed: Awaitable[None]
    release: Callable[[], None]


class Runtime:
    def __init__(self, services: RuntimeServices, *, executor: Executor | None = None) -> None:
        self.services = services
        self.approvals = ApprovalCenter(services.publish, on_answer=self._wake)
        self.loader = ModuleLoader(services.components)
        # Every dict here is keyed by the job's storage key (engine/runtime/job_keys.py);
        # what a client names is mapped by `key_of`.
        self.jobs: dict[str, Job] = {}          # top-level jobs still running or paused
        self._starting: dict[str, str] = {}     # key -> owner, while being checked
        self.store: JobsStore | None = None
        self.recorder: HistoryRecorder
        self.module_threads = ModuleThreads(MODULE_THREADS)
        self.executor: Executor = executor or LocalExecutor(self.module_threads)
        self._interrupted: dict[str, tuple[str, dict[str, Any]]] = {}
        self._used_ids: dict[str, str] = {}  # every recorded job key -> owner; retention removes
        self.retention: Retention | None = None
        self.dormant: dict[str, Dormant] = {}   # released from memory, waiting in the database
        self._resumable: dict[str, str] = {}    # FAILED by an interruption: job id -> owner
        self._waking: set[str] = set()          # being restored right now
        self._stop_on_wake: set[str] = set()
        self.wakeups = Wakeups(self._deadline)  # released jobs' deadlines
        self._sweeper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._stopping = False
        # What a job without variables renders and masks with: both are immutable, so the
        # jobs share one pair instead of compiling an empty one each.
        self._plain = (Renderer({}), Masker([]))
        self.graphs = GraphCache()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def durable(self) -> bool:
        return self.services.limits.checkpoints

    async def start(self) -> None:
        self.store = JobsStore(self.services.db, self.services.sealer)
        self.recorder = HistoryRecorder(self.store)
        self.recorder.start()
        now = time.time()
        for job_id, address, preset_name, start_time in (await self.store.mark_interrupted(now))[-REMEMBER_INTERRUPTED:]:
            self._interrupted[job_id] = (address, {
                "type": "workflow_status_update", "job_id": job_keys.wire_id(job_id),
                "status_data": {"status": JobStatus.FAILED.value, "start_time": start_time,
                                "end_time": now, "preset_name": preset_name,
                                "error": INTERRUPTED_ERROR}})
        if self._interrupted:
            log.warning("%d job(s) were interrupted by the last shutdown and are now FAILED: %s",
                        len(self._interrupted), ", ".join(self._interrupted))
        self._used_ids = await self.store.job_ids()
        self.retention = Retention(self.store, self.services.settings,
                                   on_deleted=self._forget_deleted)
        self.retention.start()
        await self._restore_all()
        if self.durable:
            self._sweeper = asyncio.create_task(self._sweep(), name="release-waiting-jobs")

    def _forget_deleted(self, job_ids: Any) -> None:
        for job_id in job_ids:
            self._used_ids.pop(job_id, None)
            self._resumable.pop(job_id, None)

    def key_of(self, owner: str, job_id: str) -> str | None:
        """The storage key of `owner`'s job that they call `job_id` (running, waiting or
        recorded), None if they have none; another owner's job of that name does not show."""
        return job_keys.key_of(self._used_ids, owner.lower(), job_id)

    async def stop(self, *, suspend: bool = True) -> None:
        """Stop the runtime, then write out the history. With `suspend` (the default, and
        durable jobs on), no new node starts, running nodes get `stop_grace_s` to finish, and
        every job stays unfinished in its checkpoint for the next start; without, every job
        is stopped (recorded STOPPED, "interrupted")."""
        self._stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.wakeups.close()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        jobs = list(self.jobs.values())
        if suspend and self.durable:
            for job in jobs:
                job.hold()
            deadline = time.monotonic() + self.services.limits.stop_grace_s
            while any(job.activity.busy for job in jobs) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            for job in jobs:
                job.stop(reason="suspend")
            if jobs or self.dormant:
                log.info("%d unfinished job(s) kept for the next start (%d in memory, %d released "
                         "while waiting)", len(jobs) + len(self.dormant), len(jobs), len(self.dormant))
        else:
            for job in jobs:
                job.stop(reason="engine")
        tasks = [job.task for job in jobs if job.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.retention is not None:
            await self.retention.stop()
        if self.store is not None:
            await self.recorder.close()

    def essential_tasks(self) -> dict[str, asyncio.Task[Any]]:
        """The runtime's tasks that must run as long as it does (the Engine watches them)."""
        tasks = {"the history recorder": self.recorder.task,
                 "history retention": self.retention.task if self.retention else None}
        return {what: task for what, task in tasks.items() if task is not None}

    def running_job_count(self) -> int:
        """Unfinished jobs: running, paused or waiting (released from memory included)."""
        return len(self.jobs) + len(self.dormant)

    def released_job_count(self) -> int:
        """Waiting jobs kept only in the database (released from memory)."""
        return len(self.dormant)

    def snapshot(self, owner: str) -> list[dict[str, Any]]:
        """What a connection of `owner` that just signed in must hear: the status of each of
        their running jobs, pending approvals, and jobs a crash interrupted. The caller (the
        Engine, for the server) sends them."""
        owner = owner.lower()
        frames = [job.status_frame() for job in self.jobs.values() if job.owner == owner]
        frames += [d.status_frame() for d in self.dormant.values() if d.owner == owner]
        frames += self.approvals.frames_for(owner)
        frames += [frame for address, frame in self._interrupted.values() if address == owner]
        return frames

    # -- starting jobs -----------------------------------------------------------------------

    async def start_job(self, owner: str, job_id: str, workflow: Any, *, mode: str = "EXECUTE",
                        initial_payload: Any = None, preset_name: str | None = None,
                        start_node_id: str | None = None,
                        started_by: dict[str, Any] | None = None) -> StartTicket:
        """Check the workflow, record the job and hold it until its acknowledgement is out
        (the StartTicket). EngineError for anything wrong. Keyword options only, so that a new
        one (where a run came from, D6) fits without touching the callers."""
        job = await self._create(owner, job_id, workflow, mode=mode, initial_payload=initial_payload,
                                 preset_name=preset_name, start_node_id=start_node_id,
                                 started_by=started_by, hold=True)
        committed = asyncio.ensure_future(self._committed(job))
        return StartTicket(job.wire_id, committed, job.released.set)

    async def execute(self, owner: str, job_id: str, workflow: Any, **options: Any) -> Job:
        """Start a job right away, without an acknowledgement to wait for (automations, tests).
        `started_by` says what started it ({"kind": "gui" | "schedule" | "webhook" |
        "file_watch" | "error_workflow", "rule_id"?}); a client's run is "gui"."""
        return await self._create(owner, job_id, workflow, hold=False, **options)

    async def _committed(self, job: Job) -> None:
        try:
            await self.recorder.committed(job.create_op)
        except HistoryWriteError as exc:
            # The client must not hear "started" of a job that is not on disk; whatever it
            # hears, nothing of the job runs (it ends FAILED with this text). The store's own
            # sentence says what is wrong (a full disk, a read-only folder) and what to do.
            cause = exc.cause
            message = (cause.message if isinstance(cause, EngineError) else
                       f"The engine could not record the job '{job.job_id}' ({exc}); nothing of it "
                       f"ran. Check the disk holding the data folder, then run it again.")
            job.refused = message
            job.released.set()
            raise EngineError(ErrorCode.STORAGE, message, job_id=job.wire_id) from None

    async def _create(self, owner: str, job_id: str, workflow: Any, *, mode: str = "EXECUTE",
                      initial_payload: Any = None, preset_name: str | None = None,
                      start_node_id: str | None = None, started_by: dict[str, Any] | None = None,
                      hold: bool) -> Job:
        owner = sys.intern(owner.lower())  # one copy for all of an owner's jobs and approvals
        mode = mode.upper()
        if mode not in MODES:
            raise EngineError.invalid("mode", "must be 'EXECUTE' or 'SIMULATE'")
        await self.recorder.room()
        key = self._new_key(owner, job_id)
        self._starting[key] = owner
        try:
            graph, workflow_json = self.graphs.parse(workflow)
            graph.start_nodes(start_node_id)  # checks start_node_id
            modules = await self._load_modules(graph, "workflow_data")
            assert self.store is not None
            if key in self._used_ids:  # recorded meanwhile (never by this call: it holds the key)
                raise job_id_taken(job_id)
            renderer, masker, settings = await self._owner_context(owner, uses_variables(graph))
            spec = JobSpec(owner=owner, job_id=key, graph=graph, modules=modules, mode=mode,
                           initial_payload=initial_payload, preset_name=preset_name,
                           start_node_id=start_node_id, started_by=started_by)
            job = Job(spec, self._job_services(spec, masker, is_child=False), renderer=renderer,
                      masker=masker, settings=settings)
            # Recorded with the job's first batch of history (no write of its own to wait for).
            job.create_op = job.reporter.created(preset_name, job.start_time, None,
                                                 _preview_bytes(settings), job.started_by)
            job.checkpoints.spec(_spec_of(spec, None), workflow_json, Snapshot(as_payload(initial_payload)))
            if hold:
                job.released.clear()
            self._launch(job)
        finally:
            self._starting.pop(key, None)
        return job

    def _new_key(self, owner: str, job_id: str) -> str:
        """The storage key for a new job of `owner` called `job_id` (CONFLICT if they already
        have one, running, starting or recorded)."""
        key = job_keys.new_key(self._used_ids, owner, job_id, self._starting)
        if key is None:
            raise job_id_taken(job_id)
        return key

    def _launch(self, job: Job) -> None:
        """A top-level job, new or restored, becomes one of the runtime's and starts its task."""
        self._used_ids[job.job_id] = job.owner
        self.jobs[job.job_id] = job
        job.task = asyncio.create_task(self._run_top(job), name=f"job-{job.job_id}")

    def _job_services(self, spec: JobSpec, masker: Masker, *, is_child: bool) -> JobServices:
        reporter = JobReporter(self.services.publish, self.recorder, job_id=spec.job_id,
                               owner=spec.owner, mode=spec.mode, masker=masker, is_child=is_child)
        limits = self.services.limits
        return JobServices(reporter=reporter, executor=self.executor, approvals=self.approvals,
                           shared_folders=self.services.shared_folders,
                           run_child=self.run_child, flushed=self.recorder.flushed,
                           datasets_for=self.services.datasets_for,
                           max_node_runs=limits.max_node_runs,
                           approval_timeout_s=limits.approval_timeout_s,
                           checkpoints=limits.checkpoints)

    async def _run_top(self, job: Job) -> None:
        try:
            await job.run()
        finally:
            self.jobs.pop(job.job_id, None)
            if job.discards_record:
                self._used_ids.pop(job.job_id, None)  # no record left to collide with
            if job.keep_checkpoint:
                self._resumable[job.job_id] = job.owner
                self._interrupted[job.job_id] = (job.owner, job.status_frame())
                while len(self._interrupted) > REMEMBER_INTERRUPTED:
                    self._interrupted.pop(next(iter(self._interrupted)))
            if self.retention is not None:
                self.retention.poke()

    async def _owner_context(self, owner: str, with_variables: bool) -> tuple[Renderer, Masker, dict[str, Any]]:
        """The job's view of its owner. Variables are read (and sequential ones advanced) only
        when the workflow can use them: without a `{{vars.` placeholder no secret can enter
        the job, so there is nothing to mask either."""
        settings = await self.services.settings.get(owner)
        if not with_variables:
            return self._plain[0], self._plain[1], settings
        variables = await self.services.variables.resolve(owner)
        secrets = await self.services.variables.secret_values(owner)
        return Renderer(variables), Masker(secrets), settings

    async def _load_modules(self, graph: Graph, field: str) -> dict[str, LoadedModule]:
        for node in graph.nodes.values():
            if self.loader.find(node.module_id) is None:
                raise EngineError(ErrorCode.NOT_FOUND,
                                  f"Node '{node.name}' uses the module '{node.module_id}', which is "
                                  f"not installed in this engine.", field=field, node_id=node.id)
        module_ids = graph.module_ids()
        return self.loader.cached(module_ids) or await self.services.workers.run(self.loader.load_many, module_ids)

    async def run_child(self, parent: Job, ctx: NodeContext, preset_name: str,
                        payload: dict[str, Any]) -> dict[str, Any]:
        """A sub-workflow: one of the owner's presets as a child job, awaited by its node.
        Durable: the child's id is in the node's token, so after a restart the node finds the
        child it started (restored from its own checkpoint, or its result if it had ended)."""
        token: Token | None = ctx.token
        wait = token.wait if token is not None and token.wait and token.wait.get("kind") == "child" else None
        stored: StoredJob | None = parent.tree.get(wait["child_id"]) if wait else None
        if stored is not None and stored.status == JobStatus.SUCCEEDED.value and stored.final is not None:
            ctx.log(f"The sub-job {job_keys.wire_id(stored.job_id)} had finished before the restart; taking its result.")
            return as_payload(decode(stored.final))
        if stored is not None:
            child = await self._rebuild(stored, parent=parent)
            ctx.log(f"Resuming the sub-job {child.wire_id} of the preset '{child.preset_name}'.")
        else:
            child = await self._new_child(parent, ctx, preset_name, payload, token)
        parent.frontier.children.append(child.job_id)
        parent.activity.leave()  # the child's own nodes are the work now
        try:
            await child.run()
        finally:
            parent.activity.enter()
            parent.frontier.children.remove(child.job_id)
        if child.status is not JobStatus.SUCCEEDED:
            raise ModuleError(f"the sub-workflow '{child.preset_name}' {child.status.value.lower()}: "
                              f"{child.error or 'no details'}")
        return child.final_payload or {"data": {}, "history": []}

    async def _new_child(self, parent: Job, ctx: NodeContext, preset_name: str,
                         payload: dict[str, Any], token: Token | None) -> Job:
        if parent.depth + 1 >= MAX_SUB_WORKFLOW_DEPTH:
            raise ModuleError(f"sub-workflows are nested deeper than {MAX_SUB_WORKFLOW_DEPTH} "
                              f"levels; does the preset '{preset_name}' call itself?")
        found = await self.services.presets.load(parent.owner, preset_name)
        if found is None:
            raise ModuleError(f"the preset '{preset_name}' was not found among your presets")
        try:
            graph, workflow_json = self.graphs.parse(found[1], f"preset '{preset_name}'")
            graph.start_nodes(None)
            modules = await self._load_modules(graph, f"preset '{preset_name}'")
        except EngineError as exc:
            raise ModuleError(f"the preset '{preset_name}' cannot run: {exc.message}") from None
        parent.child_seq += 1
        child_id = f"{parent.job_id}/{ctx.node_id}/{parent.child_seq}"
        spec = JobSpec(owner=parent.owner, job_id=child_id, graph=graph, modules=modules,
                       mode=parent.mode, initial_payload=payload, preset_name=preset_name,
                       started_by=parent.started_by)
        child = Job(spec, self._job_services(spec, parent.masker, is_child=True),
                    renderer=parent.renderer, masker=parent.masker, settings=parent.settings,
                    parent=parent)
        child.reporter.created(preset_name, child.start_time, parent.top.job_id,
                               _preview_bytes(parent.settings), child.started_by)
        child.checkpoints.spec(_spec_of(spec, parent.top.job_id), workflow_json,
                               Snapshot(as_payload(payload)))
        if token is not None:
            token.wait = {"kind": "child", "child_id": child_id}
            parent.checkpoints.write(token)
        ctx.log(f"Running the preset '{preset_name}' as sub-job {child.wire_id}.")
        return child

    # -- control -----------------------------------------------------------------------------

    def jobs_of(self, owner: str, job_id: str | None) -> list[Job]:
        """The named running job of `owner` (EngineError if none), or all of theirs."""
        owner = owner.lower()
        if job_id:
            key = self.key_of(owner, job_id)
            job = self.jobs.get(key) if key is not None else None
            if job is None:
                raise EngineError(ErrorCode.NOT_FOUND, f"No running job '{job_id}' was found; "
                                  f"it may have finished already.", job_id=job_id)
            return [job]
        return [job for job in self.jobs.values() if job.owner == owner]

    def _targets(self, owner: str, job_id: str | None) -> tuple[list[Job], list[Dormant]]:
        """Live and released jobs a control message names (EngineError if it names none of
        the owner's: another owner's job reads exactly like an unknown one)."""
        owner = owner.lower()
        key = self.key_of(owner, job_id) if job_id else None
        if key is not None and key not in self.jobs:
            dormant = self.dormant.get(key)
            if dormant is not None:
                return [], [dormant]
        live = self.jobs_of(owner, job_id)
        dormant_all = [] if job_id else [d for d in self.dormant.values() if d.owner == owner]
        return live, dormant_all

    def pause(self, owner: str, job_id: str | None) -> list[str]:
        live, dormant = self._targets(owner, job_id)
        done = [job.wire_id for job in live if job.pause()]
        return done + [d.wire_id for d in dormant if self._move_released(d, JobStatus.RUNNING, JobStatus.PAUSED)]

    def resume(self, owner: str, job_id: str | None) -> list[str]:
        live, dormant = self._targets(owner, job_id)
        done = [job.wire_id for job in live if job.resume()]
        for d in dormant:
            if self._move_released(d, JobStatus.PAUSED, JobStatus.RUNNING):
                self._wake(d.job_id)
                done.append(d.wire_id)
        return done

    def _move_released(self, dormant: Dormant, old: JobStatus, new: JobStatus) -> bool:
        """Pause or resume a job released from memory: recorded and told like a live one's."""
        if dormant.status != old.value:
            return False
        dormant.status = new.value
        self.recorder.job_status(dormant.job_id, dormant.status, None, None, None)
        self.services.publish(_status_event(dormant))
        return True

    def stop_jobs(self, owner: str, job_id: str | None) -> list[str]:
        live, dormant = self._targets(owner, job_id)
        done = [job.wire_id for job in live if job.stop()]
        for d in dormant:
            self._stop_on_wake.add(d.job_id)
            for approval_id in d.approvals:  # dialogs close; this wakes the job too
                self.approvals.withdraw(approval_id, "the job was stopped")
            self._wake(d.job_id)
            done.append(d.wire_id)
        return done

    async def job_status(self, owner: str, job_id: str) -> dict[str, Any] | None:
        """status_data of a running, waiting or recorded job of `owner`, None if there is none."""
        owner = owner.lower()
        key = self.key_of(owner, job_id)
        job = self.jobs.get(key) if key is not None else None
        if job is not None:
            return job.status_frame()["status_data"]
        dormant = self.dormant.get(key) if key is not None else None
        if dormant is not None:
            return dormant.status_data()
        record = await self.record_of(owner, job_id)
        if record is None:
            return None
        data = record.status_data()
        if self._resumable.get(record.job_id) == owner:
            data["resumable"] = True
        return data

    async def record_of(self, owner: str, job_id: str) -> JobRecord | None:
        """The stored record of `owner`'s job that they call `job_id` (its `job_id` is the
        storage key), None if they have none: another owner's record of that name reads as
        absent. Read from the database, whatever this runtime remembers."""
        owner = owner.lower()
        for key in job_keys.candidates(owner, job_id):
            record = await self.services.history.job(key)
            if record is not None and record.address == owner:
                return record
        return None

    async def resume_job(self, owner: str, job_id: str) -> None:
        """Continue a job that ended FAILED by an interruption from its checkpoint, running
        the interrupted node again. EngineError NOT_FOUND (unknown, or another owner's: the
        same answer) or CONFLICT (running, or not resumable)."""
        owner = owner.lower()
        wire, job_id = job_id, self.key_of(owner, job_id) or ""
        if job_id in self.jobs or job_id in self.dormant:
            raise EngineError(ErrorCode.CONFLICT, f"The job '{wire}' has not ended; there is "
                              f"nothing to resume.", job_id=wire)
        if self._resumable.get(job_id) != owner:
            record = await self.record_of(owner, wire)
            if record is None:
                raise EngineError(ErrorCode.NOT_FOUND, f"No job '{wire}' was found.", job_id=wire)
            raise EngineError(ErrorCode.CONFLICT, f"The job '{wire}' cannot be resumed: only a "
                              f"job that an engine stop interrupted keeps a checkpoint to resume "
                              f"from (this one is {record.status}).", job_id=wire)
        del self._resumable[job_id]
        self._interrupted.pop(job_id, None)
        await self.recorder.flush()
        tree = await self._load_tree(job_id)
        again = [j.job_id for j in tree.values() if j.status == JobStatus.FAILED.value]
        await self.services.db.transaction(stored_checkpoints.set_status, again,
                                           JobStatus.RUNNING.value, None, None)
        for stored in tree.values():
            if stored.job_id in again:
                stored.status, stored.error = JobStatus.RUNNING.value, None
        await self._restore_live(job_id, tree=tree, forced=True)

    # -- durable jobs: restoring, releasing, waking -------------------------------------------

    async def _load_tree(self, job_id: str) -> dict[str, StoredJob]:
        tree = await self.services.db.run(stored_checkpoints.load_tree, job_id, self.services.sealer)
        reserve_entry_ids(max((j.max_entry_id for j in tree.values()), default=0))
        return tree

    async def _restore_all(self) -> None:
        """At start: every unfinished job back, as a waiting (released) job or running again."""
        tops = await self.services.db.run(stored_checkpoints.resumable_tops)
        restored = 0
        for job_id, address, status in tops:
            if status in ACTIVE_TEXTS:
                try:
                    await self._bring_back(job_id)
                    restored += 1
                except Exception:  # noqa: BLE001 - one broken checkpoint must not stop the engine
                    log.exception("job %s could not be restored", job_id)
            elif status == JobStatus.FAILED.value:
                self._resumable[job_id] = address
        if restored:
            log.info("%d unfinished job(s) restored from their checkpoints (%d waiting in the "
                     "database, %d running)", restored, len(self.dormant), len(self.jobs))

    async def _bring_back(self, job_id: str) -> None:
        """Restore one job from its checkpoint: released (Dormant) when it only waits, else
        running. Everything it waits for is taken from its tokens."""
        tree = await self._load_tree(job_id)
        top = tree.get(job_id)
        if top is None:
            return
        found = released_from(job_id, tree, top, decided=self.approvals.decided,
                              pending=self.approvals.find)
        if found is None:
            await self._restore_live(job_id, tree=tree)
            return
        dormant, asks = found
        self.dormant[job_id] = dormant
        for wait in asks:  # answered (or withdrawn): ApprovalCenter's on_answer wakes the job
            self.approvals.ask(request_from_wait(wait), wait["context_id"])
        for approval_id in dormant.approvals:
            request = self.approvals.find(approval_id)
            if request is not None:
                self.wakeups.at(request.deadline, job_id)
        if dormant.delay_until is not None:
            self.wakeups.at(dormant.delay_until, job_id)

    def _deadline(self, job_id: str, now: float) -> None:
        """A released job's time has come (Wakeups): approvals that timed out take their
        default answer (which wakes it), a delay that ended wakes it."""
        dormant = self.dormant.get(job_id)
        if dormant is None:
            return
        for approval_id in dormant.approvals:
            request = self.approvals.find(approval_id)
            if request is not None and request.deadline <= now:
                self.approvals.resolve(approval_id, request.default_decision, decided_by="timeout")
        if dormant.delay_until is not None and dormant.delay_until <= now:
            self._wake(job_id)

    def _wake(self, job_id: str) -> None:
        if self._stopping or self.dormant.pop(job_id, None) is None:
            return
        self._spawn_background(self._restore_live(job_id), f"wake-{job_id}")

    def _spawn_background(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _restore_live(self, job_id: str, *, tree: dict[str, StoredJob] | None = None,
                            forced: bool = False) -> None:
        """Build the job again from its checkpoint and run it from where its branches were."""
        self._waking.add(job_id)
        try:
            if tree is None:
                await self.recorder.flush()  # a pause or an answer queued meanwhile is read back
                tree = await self._load_tree(job_id)
            top = tree.get(job_id)
            if top is None:
                return
            try:
                job = await self._rebuild(top, tree=tree, forced=forced)
            except (EngineError, ModuleError, ValueError, KeyError) as exc:
                self._fail_unrestorable(top, exc)
                return
            self._launch(job)
            if job_id in self._stop_on_wake:
                self._stop_on_wake.discard(job_id)
                job.stop()
        finally:
            self._waking.discard(job_id)

    async def _rebuild(self, stored: StoredJob, *, parent: Job | None = None,
                       tree: dict[str, StoredJob] | None = None, forced: bool = False) -> Job:
        """A Job object from a checkpointed one (top-level, or a sub-workflow of `parent`)."""
        spec_data = decode(stored.spec)
        where = "workflow_data" if parent is None else f"preset '{spec_data.get('preset_name')}'"
        graph, _ = self.graphs.parse(spec_data["workflow"], where)
        modules = await self._load_modules(graph, where)
        owner = spec_data["owner"]
        spec = JobSpec(owner=owner, job_id=stored.job_id, graph=graph, modules=modules,
                       mode=spec_data.get("mode", "EXECUTE"), initial_payload=spec_data.get("initial_payload"),
                       preset_name=spec_data.get("preset_name"), start_node_id=spec_data.get("start_node_id"),
                       started_by=spec_data.get("started_by"))
        if parent is None:
            renderer, masker, settings = await self._owner_context(owner, uses_variables(graph))
        else:
            renderer, masker, settings = parent.renderer, parent.masker, parent.settings
            forced = bool(parent.top.restored and parent.top.restored.forced)
        restored = _restored_tokens(stored, modules, graph, forced)
        job = Job(spec, self._job_services(spec, masker, is_child=parent is not None),
                  renderer=renderer, masker=masker, settings=settings, parent=parent,
                  restored=restored, tree=tree)
        job.start_time = stored.start_time
        job.frontier.run_seq = stored.run_seq
        job.frontier.node_runs = stored.node_runs
        job.reporter.resume_numbering(stored.crossing_seq)
        job.child_seq = len(stored.child_ids)
        job.checkpoints.token_seq = max((t.token_id for t in restored.tokens), default=0)
        job.take_final(stored.final)
        job.reporter.recorder.set_preview_bytes(stored.job_id, _preview_bytes(settings))
        if stored.status == JobStatus.PAUSED.value and parent is None:
            job.status = JobStatus.PAUSED
            job.gate.clear()
        return job

    def _fail_unrestorable(self, stored: StoredJob, exc: BaseException) -> None:
        message = getattr(exc, "message", None) or str(exc)
        text = (f"The job could not be resumed after the engine restarted: {message}. "
                f"Run the workflow again.")
        log.warning("job %s could not be restored: %s", stored.job_id, message)
        now = time.time()
        self.recorder.job_status(stored.job_id, JobStatus.FAILED.value, now, text, None)
        self.recorder.checkpoint(DoneWrite(stored.job_id, stored.job_id))
        try:
            owner = decode(stored.spec)["owner"]
        except Exception:  # noqa: BLE001
            return
        self._interrupted[stored.job_id] = (owner, {
            "type": "workflow_status_update", "job_id": job_keys.wire_id(stored.job_id),
            "status_data": {"status": JobStatus.FAILED.value, "start_time": stored.start_time,
                            "end_time": now, "error": text}})

    async def _sweep(self) -> None:
        """Release jobs that have had nothing busy for `suspend_after_s` from memory."""
        after = self.services.limits.suspend_after_s
        period = min(5.0, max(after / 4, 0.05))
        released_before = 0
        while True:
            await asyncio.sleep(period)
            if len(self.dormant) > released_before:  # jobs were released: their pages go back
                await asyncio.to_thread(give_back_free_memory)
            released_before = len(self.dormant)
            now = time.monotonic()
            for job in list(self.jobs.values()):
                if (job.begun and job.task is not None and not job.task.done()
                        and job.stop_reason is None and job.activity.idle_for(now) >= after):
                    self._spawn_background(self._release(job), f"release-{job.job_id}")

    async def _release(self, job: Job) -> None:
        if not job.stop(reason="suspend"):
            return
        assert job.task is not None
        await asyncio.gather(job.task, return_exceptions=True)
        # The task ended by cancellation: its CancelledError's traceback holds the job's
        # frames, which hold the job. Let go of the task, or every released job is a cycle.
        job.task = None
        await self.recorder.flush()
        self.recorder.forget(job.job_id)  # its preview size is set again when it wakes
        if job.status.is_final() or self._stopping:
            return
        log.debug("job %s released from memory while it waits", job.job_id)
        await self._bring_back(job.job_id)

def _restored_tokens(stored: StoredJob, modules: dict[str, LoadedModule], graph: Graph,
                     forced: bool) -> Restored:
    tokens: list[Token] = []
    interrupted: Token | None = None
    name = ""
    for row in stored.tokens:
        if row.node_id not in graph.nodes:
            raise ValueError(f"its checkpoint names a node ({row.node_id!r}) its workflow does not have")
        snapshots = tuple(Snapshot(as_payload(p)) for p in decode(row.payloads))
        token = Token(row.token_id, row.node_id, row.iteration, snapshots, edge_id=row.edge_id,
                      state=row.state, wait=wait_of(row.wait))
        token.moves = row.moves
        node = graph.nodes[row.node_id]
        if (row.edge_id is None and row.state == "running" and not modules[node.module_id].idempotent
                and interrupted is None):
            interrupted, name = token, node.name
        tokens.append(token)
    return Restored(tokens, interrupted, name, forced)


def _spec_of(spec: JobSpec, top_job_id: str | None) -> dict[str, Any]:
    """What a checkpoint keeps of a job's start (SpecWrite adds its workflow and its initial
    payload)."""
    return {"owner": spec.owner, "mode": spec.mode,
            "preset_name": spec.preset_name, "start_node_id": spec.start_node_id,
            "started_by": spec.started_by or {"kind": "gui"}, "top_job_id": top_job_id}


def _status_event(dormant: Dormant) -> Event:
    return Event(dormant.owner, dormant.status_frame(), Delivery.ESSENTIAL)


def uses_variables(graph: Graph) -> bool:
    """Whether any node config mentions `{{vars.` (or may run another preset that does)."""
    for node in graph.nodes.values():
        if node.module_id == "sub_workflow":
            return True
        # A string holding both is in the compact JSON text as it is (orjson escapes neither
        # braces nor letters): a config without both cannot mention a variable, unread.
        raw = node.config_json
        if b"{{" in raw and b"vars." in raw and _mentions_vars(node.config):
            return True
    return False


def _mentions_vars(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value and "vars." in value
    if isinstance(value, dict):
        return any(_mentions_vars(k) or _mentions_vars(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_mentions_vars(v) for v in value)
    return False


def _preview_bytes(settings: Any) -> int:
    return settings["history_payload_preview_bytes"]  # typed and in range (engine/store/settings.py)
