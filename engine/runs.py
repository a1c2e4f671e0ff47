"""`engine.runs`: what ran, what runs now and how, for the desktop window (and any in-process
user): paged run listings, a run's node timings, connections, log lines and graph, and the
controls Stop / Pause / Resume / Run again.

Stored facts come from the history store (engine/store/history.py, the read side of the tables
the runtime records into); facts only the running engine knows (a paused job's status before its
record is written, nodes done so far, the log lines of recent runs) come from the runtime and the
engine's own events. Everything stored is read on the database thread: callers await, nothing
here blocks the loop. Log lines are not stored by the engine: the last LOG_LINES of each of the
last LOG_RUNS runs are kept in memory from the `log` events, since the engine started.
"""

from __future__ import annotations

import json
import time
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, NamedTuple, Sequence

from engine.events import Event
from engine.protocol.errors import EngineError, ErrorCode
from engine.runtime.job_keys import new_wire_id, wire_id
from engine.store.history import (ConnectionRow, Cursor, HistoryStore, NodeRunRow, RunFilter,
                                  RunRow)

LOG_RUNS = 300          # runs whose log lines are kept
LOG_LINES = 500         # lines kept per run (the newest)
VIEWS_KEPT = 256        # views of runtime graphs kept (each graph is shared by its runs)
GRAPHS_KEPT = 1000      # graphs (node names, connection ends) kept of runs seen running
DONE_KEPT = 1000        # past this many, finished-node sets of jobs not in memory are dropped
PRESET_CACHE_S = 30.0   # how long a preset's graph is reused for node counts and names
ACTIVE = ("RUNNING", "PAUSED")

__all__ = ["Run", "RunGraph", "LogLine", "NodeRunRow", "ConnectionRow", "RunFilter", "Cursor",
           "RunQueries"]


@dataclass(frozen=True)
class Run:
    """One top-level run as a person sees it."""

    job_id: str
    owner: str
    workflow: str | None      # the preset name the run was started with
    mode: str
    status: str
    started_at: float
    ended_at: float | None
    error: str | None
    started_by: dict[str, Any]  # {"kind": "gui"|"schedule"|...}; "gui" where nothing was recorded
    nodes_done: int
    nodes_total: int | None   # None when neither the run nor its preset says
    node_runs: int

    @property
    def cursor(self) -> Cursor:
        return (self.started_at, self.job_id)

    @property
    def wire_id(self) -> str:
        """The id its owner knows it by (`job_id` is the engine's key: engine/runtime/job_keys.py)."""
        return wire_id(self.job_id)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class LogLine(NamedTuple):
    """A tuple of plain values: the garbage collector stops tracking it (a busy engine keeps
    150,000 of them, which full collections would otherwise walk every time)."""

    timestamp: float
    level: str
    source: str
    message: str
    node_id: str | None = None


@dataclass(frozen=True)
class RunGraph:
    """Node names and connection ends, from the running job or the preset's latest version
    (`exact` False: the run may have used an older version)."""

    nodes: dict[str, str] = field(default_factory=dict)            # node id -> name
    edges: dict[str, tuple[str, str]] = field(default_factory=dict)  # edge id -> (source, target)
    exact: bool = False


class RunQueries:
    """The Engine's run queries and run controls; made by Engine.start, `engine.runs`."""

    EVENT_TYPES = ("NODE_EXECUTION_METRIC", "workflow_status_update", "log")  # what on_event reads

    def __init__(self, history: HistoryStore, presets: Any, runtime: Callable[[], Any]) -> None:
        self._history = history
        self._presets = presets
        self._runtime = runtime
        self._logs: OrderedDict[str, deque[LogLine]] = OrderedDict()
        self._done: dict[str, set[str]] = {}              # active job -> nodes finished
        self._graphs: OrderedDict[str, RunGraph] = OrderedDict()
        self._preset_graphs: dict[tuple[str, str], tuple[float, RunGraph | None]] = {}
        # The view of each runtime graph (shared by every run of one preset version, see
        # engine/runtime/graph.py GraphCache), made once: an automation's runs would otherwise
        # build the same node and edge maps for every run, and keep a thousand copies.
        self._views: dict[int, tuple[weakref.ref[Any], RunGraph]] = {}

    # -- following the engine's events (on the loop, cheap) ----------------------------------

    def run_key(self, event: Event) -> str | None:
        """The run (its `Run.job_id`, the storage key) a job event is about. Frames carry the
        id the owner knows, which two owners may share (engine/runtime/job_keys.py)."""
        if event.job_key is not None:
            return event.job_key
        frame = event.frame
        wire = frame.get("job_id") or frame.get("workflow_context_id")
        if not wire:
            return None
        runtime = self._runtime()
        key = runtime.key_of(event.owner, str(wire)) if runtime is not None and event.owner else None
        return key or str(wire)

    def on_event(self, event: Event) -> None:
        frame = event.frame
        kind = frame.get("type")
        if kind == "NODE_EXECUTION_METRIC":
            if frame.get("status") in ("SUCCESS", "ERROR"):
                done = self._done.get(self.run_key(event) or "")
                if done is not None:
                    done.add(str(frame.get("node_id")))
        elif kind == "workflow_status_update":
            job_id = self.run_key(event) or ""
            status = (frame.get("status_data") or {}).get("status")
            if status in ACTIVE:
                if job_id not in self._done:
                    if len(self._done) >= DONE_KEPT:
                        self._forget_not_live()
                    self._done[job_id] = set()
                    graph = self._live_graph(self._live_job(job_id))
                    if graph is not None:
                        self._remember_graph(job_id, graph)
            else:
                self._done.pop(job_id, None)
        elif kind == "log":
            job_id = self.run_key(event)
            if job_id:
                self._log(job_id, frame)

    def _forget_not_live(self) -> None:
        """Drop the finished-node sets of jobs not in memory (released while they wait, or
        ended unseen): the database's node runs count for them (`_run_of`)."""
        runtime = self._runtime()
        live = runtime.jobs if runtime is not None else {}
        for job_id in [j for j in self._done if j not in live]:
            del self._done[job_id]

    def _log(self, job_id: str, frame: dict[str, Any]) -> None:
        lines = self._logs.get(job_id)
        if lines is None:
            lines = self._logs[job_id] = deque(maxlen=LOG_LINES)
            while len(self._logs) > LOG_RUNS:
                self._logs.popitem(last=False)
        try:
            stamp = float(frame.get("timestamp") or time.time())
        except (TypeError, ValueError):
            stamp = time.time()
        node_id = frame.get("node_id")
        lines.append(LogLine(stamp, str(frame.get("level") or "INFO"), str(frame.get("source") or ""),
                             str(frame.get("message") or ""), str(node_id) if node_id else None))

    def _remember_graph(self, job_id: str, graph: RunGraph) -> None:
        self._graphs[job_id] = graph
        while len(self._graphs) > GRAPHS_KEPT:
            self._graphs.popitem(last=False)

    # -- listings ----------------------------------------------------------------------------

    async def page(self, where: RunFilter = RunFilter(), *, before: Cursor | None = None,
                   after: Cursor | None = None, limit: int = 100) -> list[Run]:
        """Top-level runs newest first (keyset paging: pass the last run's `cursor` as
        `before` for the next page, or the first run's as `after` for newer ones)."""
        rows = await self._history.runs_page(where, before=before, after=after, limit=limit)
        return await self._runs(rows)

    async def get(self, job_ids: Iterable[str]) -> list[Run]:
        """These runs as they are now (unknown ids are left out)."""
        return await self._runs(await self._history.runs_by_id(job_ids))

    async def run(self, job_id: str) -> Run | None:
        found = await self.get([job_id])
        return found[0] if found else None

    async def count(self, statuses: Sequence[str] = ()) -> int:
        return await self._history.count_runs(statuses)

    async def _runs(self, rows: list[RunRow]) -> list[Run]:
        runs = []
        for row in rows:
            runs.append(await self._run_of(row))
        return runs

    async def _run_of(self, row: RunRow) -> Run:
        status, done = row.status, row.nodes_done
        job = self._live_job(row.job_id)
        if job is not None:  # the runtime knows better than a record written up to 0.2 s ago
            status = str(getattr(job, "status", status))
            done = max(done, len(self._done.get(row.job_id, ())))
        known = self._graphs.get(row.job_id) or (self._live_graph(job) if job is not None else None)
        total = len(known.nodes) if known is not None else None
        if total is None and row.preset_name:
            graph = await self._preset_graph(row.address, row.preset_name)
            if graph is not None and len(graph.nodes) >= done:
                total = len(graph.nodes)
        return Run(job_id=row.job_id, owner=row.address, workflow=row.preset_name, mode=row.mode,
                   status=status, started_at=row.start_time, ended_at=row.end_time,
                   error=row.error, started_by=row.started_by or {"kind": "gui"},
                   nodes_done=done, nodes_total=total, node_runs=row.node_runs)

    # -- one run -----------------------------------------------------------------------------

    async def node_runs(self, job_id: str) -> list[NodeRunRow]:
        """Every node run of the job in start order: the timeline's bars."""
        return await self._history.node_runs(job_id)

    async def connections(self, job_id: str) -> list[ConnectionRow]:
        return await self._history.connections(job_id)

    async def connection_history(self, job_id: str, connection_id: str) -> list[dict[str, Any]]:
        """The payloads that crossed the connection, oldest first, as stored: masked by the
        runtime before they were recorded; a large one is a preview."""
        return await self._history.connection_history(job_id, connection_id)

    def log_lines(self, job_id: str) -> list[LogLine] | None:
        """The run's log lines, or None when none are kept (a run from before this engine
        started, or one of more than LOG_RUNS ago)."""
        lines = self._logs.get(job_id)
        return list(lines) if lines is not None else None

    async def graph(self, job_id: str) -> RunGraph:
        """The run's own graph when it was seen running (since the engine started), else its
        preset's latest version (not `exact`), else nothing known."""
        known = self._graphs.get(job_id) or self._live_graph(self._live_job(job_id))
        if known is not None:
            return known
        record = await self._history.job(job_id)
        if record is None or not record.preset_name:
            return RunGraph()
        return await self._preset_graph(record.address, record.preset_name) or RunGraph()

    async def _preset_graph(self, owner: str, name: str) -> RunGraph | None:
        key = (owner, name)
        cached = self._preset_graphs.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < PRESET_CACHE_S:
            return cached[1]
        found = await self._presets.load(owner, name)
        graph = _parse_graph(found[1]) if found is not None else None
        if len(self._preset_graphs) > 1000:
            self._preset_graphs.clear()
        self._preset_graphs[key] = (now, graph)
        return graph

    # -- controls ----------------------------------------------------------------------------

    def stop(self, job_id: str) -> bool:
        return self._control("stop_jobs", job_id)

    def pause(self, job_id: str) -> bool:
        return self._control("pause", job_id)

    def resume(self, job_id: str) -> bool:
        return self._control("resume", job_id)

    def _control(self, verb: str, job_id: str) -> bool:
        """As the job's owner would from the GUI: everyone of theirs hears the change."""
        runtime = self._runtime()
        job = self._live_job(job_id)
        if runtime is None or job is None:
            return False
        try:
            return job.wire_id in getattr(runtime, verb)(job.owner, job.wire_id)
        except EngineError:  # it ended meanwhile
            return False

    async def run_again(self, job_id: str) -> str:
        """Start the run's preset again (its latest version), as its owner; the new job id.
        EngineError (not_found) when the run or its preset is gone."""
        record = await self._history.job(job_id)
        if record is None:
            raise EngineError.not_found(f"The run '{job_id}'")
        if not record.preset_name:
            raise EngineError(ErrorCode.NOT_FOUND, "This run has no workflow name, so there is "
                              "no saved workflow to run again; run it from the web GUI.")
        found = await self._presets.load(record.address, record.preset_name)
        if found is None:
            raise EngineError(ErrorCode.NOT_FOUND, f"The workflow '{record.preset_name}' is not "
                              f"saved as a preset, so it cannot be run again from here; run it "
                              f"from the web GUI.")
        runtime = self._runtime()
        if runtime is None:
            raise EngineError("internal_error", "The engine is not running.")
        new_id = new_wire_id("desktop")
        await runtime.execute(record.address, new_id, found[1], mode=record.mode,
                              preset_name=record.preset_name)
        return new_id

    def _live_job(self, job_id: str) -> Any:
        runtime = self._runtime()
        return runtime.jobs.get(job_id) if runtime is not None else None

    def _live_graph(self, job: Any) -> RunGraph | None:
        """The running job's own graph (`exact`), one view per runtime graph object."""
        graph = job.spec.graph if job is not None else None
        if graph is None:
            return None
        known = self._views.get(id(graph))
        if known is not None and known[0]() is graph:
            return known[1]
        view = RunGraph({n.id: n.name for n in graph.nodes.values()},
                        {e.id: (e.source, e.target) for e in graph.edges}, exact=True)
        if len(self._views) >= VIEWS_KEPT:
            self._views = {key: entry for key, entry in self._views.items() if entry[0]() is not None}
            if len(self._views) >= VIEWS_KEPT:
                self._views.clear()
        self._views[id(graph)] = (weakref.ref(graph), view)
        return view


def _parse_graph(workflow: Any) -> RunGraph | None:
    """Node names and edge ends of a stored workflow, read leniently (only for display)."""
    if isinstance(workflow, str):
        try:
            workflow = json.loads(workflow)
        except ValueError:
            return None
    if not isinstance(workflow, dict):
        return None
    nodes: dict[str, str] = {}
    for node in workflow.get("nodes") or []:
        if isinstance(node, dict) and node.get("id") is not None:
            nodes[str(node["id"])] = str(node.get("name") or node["id"])
    edges: dict[str, tuple[str, str]] = {}
    for edge in workflow.get("connections") or []:
        if isinstance(edge, dict) and edge.get("id") is not None:
            edges[str(edge["id"])] = (str(edge.get("source")), str(edge.get("target")))
    return RunGraph(nodes, edges, exact=False)

