"""The runtime: starts jobs, controls them, records them, and answers for them after a restart.

The Engine creates one Runtime with the few services it uses (engine/runtime/services.py) and
calls start/stop. Handlers call `start` (which owns the start handshake: the job begins once
its acknowledgement is out, and the acknowledgement waits for the job's record to be on disk),
`pause`/`resume`/`stop_jobs` and `job_status`; the Engine asks `snapshot(owner)` for what a
newly signed-in connection must hear. The runtime knows no socket: it publishes events on the
engine's bus. Where a node runs sits behind the executor (engine/runtime/executor.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from engine.components.api import ModuleError, NodeContext
from engine.protocol.errors import EngineError, ErrorCode
from engine.runtime.approvals import ApprovalCenter
from engine.runtime.executor import Executor, LocalExecutor
from engine.runtime.graph import Graph, parse_workflow
from engine.runtime.history import HistoryRecorder, HistoryWriteError
from engine.runtime.job import Job, JobServices, JobSpec
from engine.runtime.loader import LoadedModule, ModuleLoader
from engine.runtime.reporter import JobReporter
from engine.runtime.retention import Retention
from engine.runtime.services import RuntimeServices
from engine.runtime.state import JobStatus
from engine.runtime.templating import Masker, Renderer
from engine.runtime.threads import ModuleThreads
from engine.store.jobs import INTERRUPTED_ERROR, JobsStore

log = logging.getLogger(__name__)

MODES = ("EXECUTE", "SIMULATE")
MAX_SUB_WORKFLOW_DEPTH = 8
MODULE_THREADS = 32
REMEMBER_INTERRUPTED = 100


def job_id_taken(job_id: str) -> EngineError:
    """The one answer for a job id that cannot start a run, whoever's it is and whether it runs
    or ran: job ids are global, but whether another owner's job exists (or still runs) is not
    for the asker to learn."""
    return EngineError(ErrorCode.CONFLICT, f"The job id '{job_id}' cannot start a new run; every "
                       f"run needs a new job_id.", job_id=job_id)


@dataclass(frozen=True)
class StartTicket:
    """A job that was checked and recorded, waiting for its acknowledgement. The caller sends
    "started" once `committed` is done (it raises EngineError if the job's record could not be
    written: then the job never begins) and calls `release` once that reply is queued."""

    job_id: str
    committed: Awaitable[None]
    release: Callable[[], None]


class Runtime:
    def __init__(self, services: RuntimeServices, *, executor: Executor | None = None) -> None:
        self.services = services
        self.approvals = ApprovalCenter(services.publish)
        self.loader = ModuleLoader(services.components)
        self.jobs: dict[str, Job] = {}          # top-level jobs still running or paused
        self._starting: set[str] = set()
        self.store: JobsStore | None = None
        self.recorder: HistoryRecorder
        self.module_threads = ModuleThreads(MODULE_THREADS)
        self.executor: Executor = executor or LocalExecutor(self.module_threads)
        self._interrupted: dict[str, tuple[str, dict[str, Any]]] = {}
        self._used_ids: set[str] = set()  # every recorded job id; retention removes from it
        self.retention: Retention | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.store = JobsStore(self.services.db)
        self.recorder = HistoryRecorder(self.store)
        self.recorder.start()
        now = time.time()
        for job_id, address, preset_name, start_time in (await self.store.mark_interrupted(now))[-REMEMBER_INTERRUPTED:]:
            self._interrupted[job_id] = (address, {
                "type": "workflow_status_update", "job_id": job_id,
                "status_data": {"status": JobStatus.FAILED.value, "start_time": start_time,
                                "end_time": now, "preset_name": preset_name,
                                "error": INTERRUPTED_ERROR}})
        if self._interrupted:
            log.warning("%d job(s) were interrupted by the last shutdown and are now FAILED: %s",
                        len(self._interrupted), ", ".join(self._interrupted))
        self._used_ids = await self.store.job_ids()
        self.retention = Retention(self.store, self.services.settings,
                                   on_deleted=self._used_ids.difference_update)
        self.retention.start()

    async def stop(self) -> None:
        """Stop every job (recorded STOPPED, "interrupted"), then write out the history."""
        jobs = list(self.jobs.values())
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
        return len(self.jobs)

    def snapshot(self, owner: str) -> list[dict[str, Any]]:
        """What a connection of `owner` that just signed in must hear: the status of each of
        their running jobs, pending approvals, and jobs a crash interrupted. The caller (the
        Engine, for the server) sends them."""
        owner = owner.lower()
        frames = [job.status_frame() for job in self.jobs.values() if job.owner == owner]
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
        return StartTicket(job.job_id, committed, job.released.set)

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
            raise EngineError(ErrorCode.STORAGE, message, job_id=job.job_id) from None

    async def _create(self, owner: str, job_id: str, workflow: Any, *, mode: str = "EXECUTE",
                      initial_payload: Any = None, preset_name: str | None = None,
                      start_node_id: str | None = None, started_by: dict[str, Any] | None = None,
                      hold: bool) -> Job:
        owner = owner.lower()
        mode = mode.upper()
        if mode not in MODES:
            raise EngineError.invalid("mode", "must be 'EXECUTE' or 'SIMULATE'")
        if job_id in self.jobs or job_id in self._starting:
            raise job_id_taken(job_id)
        self._starting.add(job_id)
        try:
            graph = parse_workflow(workflow)
            graph.start_nodes(start_node_id)  # checks start_node_id
            modules = await self._load_modules(graph, "workflow_data")
            assert self.store is not None
            if job_id in self._used_ids:
                raise job_id_taken(job_id)
            renderer, masker, settings = await self._owner_context(owner, uses_variables(graph))
            spec = JobSpec(owner=owner, job_id=job_id, graph=graph, modules=modules, mode=mode,
                           initial_payload=initial_payload, preset_name=preset_name,
                           start_node_id=start_node_id, started_by=started_by)
            job = Job(spec, self._job_services(spec, masker, is_child=False), renderer=renderer,
                      masker=masker, settings=settings)
            # Recorded with the job's first batch of history (no write of its own to wait for).
            job.create_op = job.reporter.created(preset_name, job.start_time, None,
                                                 _preview_bytes(settings), job.started_by)
            if hold:
                job.released.clear()
            self._used_ids.add(job_id)
            self.jobs[job_id] = job
        finally:
            self._starting.discard(job_id)
        job.task = asyncio.create_task(self._run_top(job), name=f"job-{job_id}")
        return job

    def _job_services(self, spec: JobSpec, masker: Masker, *, is_child: bool) -> JobServices:
        reporter = JobReporter(self.services.publish, self.recorder, job_id=spec.job_id,
                               owner=spec.owner, mode=spec.mode, masker=masker, is_child=is_child)
        limits = self.services.limits
        return JobServices(reporter=reporter, executor=self.executor, approvals=self.approvals,
                           shared_folders=self.services.shared_folders,
                           run_child=self.run_child, flush=self.recorder.flush,
                           datasets_for=self.services.datasets_for,
                           max_node_runs=limits.max_node_runs,
                           approval_timeout_s=limits.approval_timeout_s)

    async def _run_top(self, job: Job) -> None:
        try:
            await job.run()
        finally:
            self.jobs.pop(job.job_id, None)
            if self.retention is not None:
                self.retention.poke()

    async def _owner_context(self, owner: str, with_variables: bool) -> tuple[Renderer, Masker, dict[str, Any]]:
        """The job's view of its owner. Variables are read (and sequential ones advanced) only
        when the workflow can use them: without a `{{vars.` placeholder no secret can enter
        the job, so there is nothing to mask either."""
        settings = await self.services.settings.get(owner)
        if not with_variables:
            return Renderer({}), Masker([]), settings
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
        """A sub-workflow: one of the owner's presets as a child job, awaited by its node."""
        if parent.depth + 1 >= MAX_SUB_WORKFLOW_DEPTH:
            raise ModuleError(f"sub-workflows are nested deeper than {MAX_SUB_WORKFLOW_DEPTH} "
                              f"levels; does the preset '{preset_name}' call itself?")
        found = await self.services.presets.load(parent.owner, preset_name)
        if found is None:
            raise ModuleError(f"the preset '{preset_name}' was not found among your presets")
        try:
            graph = parse_workflow(found[1], f"preset '{preset_name}'")
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
        ctx.log(f"Running the preset '{preset_name}' as sub-job {child_id}.")
        parent.frontier.children.append(child_id)
        try:
            await child.run()
        finally:
            parent.frontier.children.remove(child_id)
        if child.status is not JobStatus.SUCCEEDED:
            raise ModuleError(f"the sub-workflow '{preset_name}' {child.status.value.lower()}: "
                              f"{child.error or 'no details'}")
        return child.final_payload or {"data": {}, "history": []}

    # -- control -----------------------------------------------------------------------------

    def jobs_of(self, owner: str, job_id: str | None) -> list[Job]:
        """The named running job of `owner` (EngineError if none), or all of theirs."""
        owner = owner.lower()
        if job_id:
            job = self.jobs.get(job_id)
            if job is None or job.owner != owner:
                raise EngineError(ErrorCode.NOT_FOUND, f"No running job '{job_id}' was found; "
                                  f"it may have finished already.", job_id=job_id)
            return [job]
        return [job for job in self.jobs.values() if job.owner == owner]

    def pause(self, owner: str, job_id: str | None) -> list[str]:
        return [job.job_id for job in self.jobs_of(owner, job_id) if job.pause()]

    def resume(self, owner: str, job_id: str | None) -> list[str]:
        return [job.job_id for job in self.jobs_of(owner, job_id) if job.resume()]

    def stop_jobs(self, owner: str, job_id: str | None) -> list[str]:
        return [job.job_id for job in self.jobs_of(owner, job_id) if job.stop()]

    async def job_status(self, owner: str, job_id: str) -> dict[str, Any] | None:
        """status_data of a running or recorded job of `owner`, None if there is none."""
        job = self.jobs.get(job_id)
        if job is not None and job.owner == owner.lower():
            return job.status_frame()["status_data"]
        record = await self.services.history.job(job_id)
        if record is None or record.address != owner.lower():
            return None
        return record.status_data()


def uses_variables(graph: Graph) -> bool:
    """Whether any node config mentions `{{vars.` (or may run another preset that does)."""
    for node in graph.nodes.values():
        if node.module_id == "sub_workflow" or _mentions_vars(node.config):
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
