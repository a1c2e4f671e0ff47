"""The runtime: starts jobs, controls them, records them, and answers for them after a restart.

The Engine creates one Runtime and calls start/stop; handlers call execute/pause/resume/stop;
the desktop app reaches approvals through `engine.approvals`. The runtime knows no socket: it
publishes events on the engine's bus.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from engine.protocol.errors import EngineError, ErrorCode
from engine.runtime.approvals import ApprovalCenter
from engine.runtime.context import ModuleError, NodeContext
from engine.runtime.graph import Graph, parse_workflow
from engine.runtime.history import HistoryRecorder
from engine.runtime.job import Job
from engine.runtime.loader import LoadedModule, ModuleLoader
from engine.runtime.retention import Retention
from engine.runtime.templating import Masker, Renderer
from engine.runtime.threads import ModuleThreads
from engine.store.jobs import INTERRUPTED_ERROR, JobsStore

if TYPE_CHECKING:
    from engine.app import Engine

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


class Runtime:
    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self.approvals = ApprovalCenter(engine.bus)
        self.loader = ModuleLoader(engine.components)
        self.jobs: dict[str, Job] = {}          # top-level jobs still running or paused
        self._starting: set[str] = set()
        self.store: JobsStore | None = None
        self.recorder: HistoryRecorder
        self.retention: Retention
        self.module_threads = ModuleThreads(MODULE_THREADS)
        self._interrupted: dict[str, tuple[str, dict[str, Any]]] = {}
        self._used_ids: set[str] = set()  # every recorded job id; retention removes from it
        self.retention: Retention | None = None  # type: ignore[assignment]

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        assert self.engine.db is not None
        self.store = JobsStore(self.engine.db)
        self.recorder = HistoryRecorder(self.store)
        self.recorder.start()
        now = time.time()
        for job_id, address, preset_name, start_time in (await self.store.mark_interrupted(now))[-REMEMBER_INTERRUPTED:]:
            self._interrupted[job_id] = (address, {
                "type": "workflow_status_update", "job_id": job_id,
                "status_data": {"status": "FAILED", "start_time": start_time, "end_time": now,
                                "preset_name": preset_name, "error": INTERRUPTED_ERROR}})
        if self._interrupted:
            log.warning("%d job(s) were interrupted by the last shutdown and are now FAILED: %s",
                        len(self._interrupted), ", ".join(self._interrupted))
        self._used_ids = await self.store.job_ids()
        self.retention = Retention(self.store, self.engine.settings, on_deleted=self._used_ids.difference_update)
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

    def on_owner_connected(self, owner: str, conn: Any) -> None:
        """A connection of `owner` authenticated: bring it up to date."""
        owner = owner.lower()
        for job in self.jobs.values():
            if job.owner == owner:
                conn.send(job.status_frame())
        for frame in self.approvals.frames_for(owner):
            conn.send(frame)
        for address, frame in self._interrupted.values():
            if address == owner:
                conn.send(frame)

    # -- starting jobs -----------------------------------------------------------------------

    async def execute(self, owner: str, job_id: str, workflow: Any, *, mode: str = "EXECUTE",
                      initial_payload: Any = None, preset_name: str | None = None,
                      start_node_id: str | None = None, hold: bool = False,
                      started_by: dict[str, Any] | None = None) -> Job:
        """Check the workflow, record the job and start it. EngineError for anything wrong.
        With hold, the job waits for `job.released` (set once its start is acknowledged).
        `started_by` says what started it ({"kind": "gui" | "schedule" | "webhook" |
        "file_watch" | "error_workflow", "rule_id"?}); a client's run is "gui"."""
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
            job = Job(self, owner=owner, job_id=job_id, graph=graph, modules=modules, mode=mode,
                      initial_payload=initial_payload, preset_name=preset_name,
                      start_node_id=start_node_id, renderer=renderer, masker=masker,
                      settings=settings, started_by=started_by or {"kind": "gui"})
            # Recorded with the job's first batch of history (no write of its own to wait for).
            self.recorder.set_preview_bytes(job_id, _preview_bytes(settings))
            self.recorder.job_create(job_id, owner, preset_name, mode, job.start_time, None,
                                     job.started_by)
            if hold:
                job.released.clear()
            self._used_ids.add(job_id)
            self.jobs[job_id] = job
        finally:
            self._starting.discard(job_id)
        job.task = asyncio.create_task(self._run_top(job), name=f"job-{job_id}")
        return job

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
        settings = await self.engine.settings.get(owner)
        if not with_variables:
            return Renderer({}), Masker([]), settings
        variables = await self.engine.variables.resolve(owner)
        secrets = await self.engine.variables.secret_values(owner)
        return Renderer(variables), Masker(secrets), settings

    async def _load_modules(self, graph: Graph, field: str) -> dict[str, LoadedModule]:
        for node in graph.nodes.values():
            if self.loader.find(node.module_id) is None:
                raise EngineError(ErrorCode.NOT_FOUND,
                                  f"Node '{node.name}' uses the module '{node.module_id}', which is "
                                  f"not installed in this engine.", field=field, node_id=node.id)
        module_ids = graph.module_ids()
        return self.loader.cached(module_ids) or await self.engine.workers.run(self.loader.load_many, module_ids)

    async def run_child(self, parent: Job, ctx: NodeContext, preset_name: str,
                        payload: dict[str, Any], seq: int) -> dict[str, Any]:
        """A sub-workflow: one of the owner's presets as a child job, awaited by its node."""
        if parent.depth + 1 >= MAX_SUB_WORKFLOW_DEPTH:
            raise ModuleError(f"sub-workflows are nested deeper than {MAX_SUB_WORKFLOW_DEPTH} "
                              f"levels; does the preset '{preset_name}' call itself?")
        found = await self.engine.presets.load(parent.owner, preset_name)
        if found is None:
            raise ModuleError(f"the preset '{preset_name}' was not found among your presets")
        try:
            graph = parse_workflow(found[1], f"preset '{preset_name}'")
            graph.start_nodes(None)
            modules = await self._load_modules(graph, f"preset '{preset_name}'")
        except EngineError as exc:
            raise ModuleError(f"the preset '{preset_name}' cannot run: {exc.message}") from None
        child_id = f"{parent.job_id}/{ctx.node_id}/{seq}"
        child = Job(self, owner=parent.owner, job_id=child_id, graph=graph, modules=modules,
                    mode=parent.mode, initial_payload=payload, preset_name=preset_name,
                    start_node_id=None, renderer=parent.renderer, masker=parent.masker,
                    settings=parent.settings, parent=parent, started_by=parent.started_by)
        self.recorder.set_preview_bytes(child_id, _preview_bytes(parent.settings))
        self.recorder.job_create(child_id, parent.owner, preset_name, parent.mode,
                                 child.start_time, parent.top.job_id, child.started_by)
        ctx.log(f"Running the preset '{preset_name}' as sub-job {child_id}.")
        await child.run()
        if child.status != "SUCCEEDED":
            raise ModuleError(f"the sub-workflow '{preset_name}' {child.status.lower()}: "
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
        record = await self.engine.history.job(job_id)
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
