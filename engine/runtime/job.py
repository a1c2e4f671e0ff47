"""One job: a workflow graph run (or simulated) from its start nodes to its last branch.

Scheduling: every node run is a task; a node's output is copied once per outgoing edge and each
copy starts the edge's target, so independent branches run concurrently while each branch's
events stay in order (node RUNNING, its logs, SUCCESS/ERROR, then its edges ACTIVE, then the
next node). A node with several incoming edges runs once per arrival, except modules whose
manifest says `wait_for_all_inputs` (merge): those run once every connected input has arrived
(or, when nothing else can arrive any more, with what did).

Control: pausing closes a gate that nodes pass before they start (running nodes finish);
stopping cancels the job's tasks (sync modules see `ctx.cancelled`). Per-job state lives here,
nothing global.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import logging
import random
import time
import traceback
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from engine.components.properties import prepare_config
from engine.events import Delivery, Event
from engine.runtime.context import JobCancelled, ModuleError, NodeContext
from engine.runtime.graph import ERROR_PORT, Edge, Graph, Node
from engine.runtime.loader import LoadedModule
from engine.runtime.templating import Masker, Renderer, TemplateError

if TYPE_CHECKING:
    from engine.runtime.runtime import Runtime
    from engine.store.settings import SettingsView

log = logging.getLogger("engine.jobs")

T = TypeVar("T")
HISTORY_KEEP = 100          # payload["history"] keeps the latest entries only
MAX_RETRIES = 100
ACTIVE = ("RUNNING", "PAUSED")
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


class JobFailure(Exception):
    """Ends the job FAILED with this text as `status_data.error`."""

    def __init__(self, message: str, node_id: str | None = None) -> None:
        super().__init__(message)
        self.node_id = node_id


def encode_payload(payload: Any, masker: Masker, copies_needed: int) -> tuple[str, int, list[Any]]:
    """(masked JSON text, size in bytes of the full JSON, one private copy per edge).
    CPU work: called in a worker thread."""
    lossy = False

    def fallback(value: Any) -> str:
        nonlocal lossy
        lossy = True
        return str(value)

    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=fallback)
    if lossy or copies_needed > 1:
        copies = [json.loads(raw) for _ in range(copies_needed - (0 if lossy else 1))]
        if not lossy:
            copies.append(payload)
    else:
        copies = [payload] if copies_needed else []
    return masker.json_text(raw), len(raw.encode("utf-8")), copies


def is_small(value: Any, budget: int = 2000) -> bool:
    """Cheaply: is this JSON-like value small enough to serialize on the loop? Walks at most
    `budget` steps, counting string lengths, so the check itself stays cheap."""
    stack = [value]
    while stack:
        item = stack.pop()
        budget -= 1
        if isinstance(item, str):
            budget -= len(item) // 64
        elif isinstance(item, dict):
            budget -= len(item)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            budget -= len(item)
            stack.extend(item)
        if budget < 0:
            return False
    return True


SMALL_INPUT_BYTES = 64 * 1024


def output_is_small(out: dict[str, Any], input_size: int) -> bool:
    """Is a node's output small enough to encode on the loop? Its history list is the input's
    (whose encoded size we already know) plus one engine-made entry, so only the rest of the
    payload is walked: walking the whole history on every node cost more than encoding it."""
    history = out.get("history")
    if input_size > SMALL_INPUT_BYTES or not isinstance(history, list) or len(history) > HISTORY_KEEP:
        return is_small(out)
    return is_small([v for k, v in out.items() if k != "history"])


async def off_loop(workers: Any, small: bool, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` right here when the input is small (a thread hop costs more than the work),
    else on the engine's CPU worker thread (engine/workers.py)."""
    if small:
        return fn(*args)
    return await workers.run(fn, *args)


def public_result(masked_text: str, limit: int) -> Any:
    """The final payload as shown in `status_data.result`: whole, or a preview when large."""
    size = len(masked_text.encode("utf-8"))
    if size <= limit:
        return json.loads(masked_text)
    return {"truncated": True, "size": size,
            "preview": masked_text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")}


def as_payload(value: Any) -> dict[str, Any]:
    """`{"data": {...}, "history": [...]}` from whatever a client or module handed over."""
    if isinstance(value, dict) and ("data" in value or "history" in value):
        data = value.get("data")
        history = value.get("history")
        out = dict(value)
        out["data"] = data if isinstance(data, dict) else ({} if data is None else {"value": data})
        out["history"] = history if isinstance(history, list) else []
        return out
    if isinstance(value, dict):
        return {"data": value, "history": []}
    return {"data": {} if value is None else {"value": value}, "history": []}


class Job:
    def __init__(self, runtime: "Runtime", *, owner: str, job_id: str, graph: Graph,
                 modules: dict[str, LoadedModule], mode: str, initial_payload: Any,
                 preset_name: str | None, start_node_id: str | None, renderer: Renderer,
                 masker: Masker, settings: "SettingsView", parent: "Job | None" = None,
                 started_by: dict[str, Any] | None = None) -> None:
        self.runtime = runtime
        self.loop = asyncio.get_running_loop()
        self.owner = owner
        self.job_id = job_id
        self.graph = graph
        self.modules = modules
        self.mode = mode
        self.initial_payload = as_payload(initial_payload)
        self.preset_name = preset_name
        self.start_node_id = start_node_id
        self.renderer = renderer
        self.masker = masker
        self.settings = settings
        self.parent = parent
        self.started_by: dict[str, Any] = dict(started_by or {"kind": "gui"})
        self.top: Job = parent.top if parent else self
        self.depth = parent.depth + 1 if parent else 0
        self.status = "RUNNING"
        self.start_time = time.time()
        self.end_time: float | None = None
        self.error: str | None = None
        self.result: Any = None
        self.final_payload: dict[str, Any] | None = None
        self.task: asyncio.Task[None] | None = None
        # Cleared while the start's acknowledgement is on its way (Runtime.execute(hold=True)):
        # the client hears "started" before any event of the job.
        self.released = asyncio.Event()
        self.released.set()
        self.begun = False  # past the start gate: from here on, stopping cancels the task
        if parent is not None:
            self.gate = parent.gate  # pausing the job pauses its sub-workflows too
        else:
            self.gate = asyncio.Event()
            self.gate.set()
        self.node_runs = 0
        self._crossing_seq = itertools.count(1)
        self._run_seq = itertools.count(1)
        self._child_seq = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._failure: BaseException | None = None
        self._inbox: dict[str, dict[str, deque[tuple[dict[str, Any], int]]]] = {}
        self._contexts: set[NodeContext] = set()
        self._result_text: str | None = None
        self.stop_reason: str | None = None  # "user" or "engine"

    # -- facts the handlers and the desktop app read -----------------------------------------

    @property
    def is_child(self) -> bool:
        return self.parent is not None

    @property
    def shared_folders(self) -> Any:
        return self.runtime.engine.shared_folders

    @property
    def datasets(self) -> Any:
        """The owner's datasets within the limits of the job's settings (engine.datasets)."""
        return self.runtime.engine.datasets_for(self.owner, self.settings)

    @property
    def max_node_runs(self) -> int:
        return self.runtime.engine.config.max_node_runs

    def status_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status, "start_time": self.start_time,
                                "end_time": self.end_time, "preset_name": self.preset_name,
                                "mode": self.mode, "started_by": self.started_by}
        if self.error is not None:
            data["error"] = self.error
        if self.result is not None:
            data["result"] = self.result
        return data

    def status_frame(self) -> dict[str, Any]:
        return {"type": "workflow_status_update", "job_id": self.job_id,
                "status_data": self.masker.deep(self.status_data())}

    # -- events ------------------------------------------------------------------------------

    def emit(self, frame: dict[str, Any], delivery: Delivery = Delivery.DROPPABLE) -> None:
        self.runtime.engine.bus.publish(Event(self.owner, self.masker.deep(frame), delivery))

    def _publish_status(self) -> None:
        if not self.is_child:
            self.emit(self.status_frame(), Delivery.ESSENTIAL)

    def job_log(self, message: str, level: str = "INFO") -> None:
        self._log_line("Workflow", None, message, level)

    def node_log(self, node_id: str, node_name: str, message: str, level: str = "INFO") -> None:
        self._log_line(node_name, node_id, message, level)

    def _log_line(self, source: str, node_id: str | None, message: str, level: str) -> None:
        message = self.masker.text(message)
        frame = {"type": "log", "level": level, "source": source, "message": message,
                 "timestamp": time.time(), "workflow_context_id": self.job_id,
                 "job_id": self.job_id}
        if node_id is not None:
            frame["node_id"] = node_id
        self.emit(frame, Delivery.DROPPABLE)
        py_level = {"ERROR": logging.ERROR, "CRITICAL": logging.ERROR, "WARN": logging.WARNING,
                    "WARNING": logging.WARNING, "DEBUG": logging.DEBUG}.get(level, logging.INFO)
        log.log(py_level, "job %s [%s] %s", self.job_id, self.masker.text(source), message)

    def popup(self, node_id: str, title: str, content: Any) -> None:
        self.emit({"type": "SHOW_DEBUG_POPUP", "title": title, "content": content,
                   "workflow_context_id": self.job_id, "job_id": self.job_id,
                   "node_id": node_id}, Delivery.ESSENTIAL)

    def _metric(self, node: Node, status: str, *, run_seq: int, elapsed_ms: float | None = None,
                input_size: int | None = None, output_size: int | None = None,
                error: str | None = None, output_name: str | None = None) -> None:
        # A failure's text goes in `error_message`: the GUI drops any frame with a top-level
        # `error` before it reads the type (protocol.md §1), so the node would never turn red.
        frame: dict[str, Any] = {
            "type": "NODE_EXECUTION_METRIC", "workflow_context_id": self.job_id,
            "job_id": self.job_id, "node_id": node.id, "node_name": node.name,
            "module_id": node.module_id, "status": status, "timestamp": time.time(),
            "mode": self.mode, "run_seq": run_seq, "input_size_bytes": input_size}
        if elapsed_ms is not None:
            frame["execution_time_ms"] = round(elapsed_ms, 3)
        if output_size is not None:
            frame["output_size_bytes"] = output_size
        if output_name is not None:
            frame["output_name"] = output_name
        if error is not None:
            frame["error_message"] = error
        self.emit(frame, Delivery.DROPPABLE)

    async def _encode(self, payload: Any, copies_needed: int,
                      small: bool | None = None) -> tuple[str, int, list[Any]]:
        return await off_loop(self.runtime.engine.workers,
                              is_small(payload) if small is None else small, encode_payload,
                              payload, self.masker, copies_needed)

    async def _copy(self, value: Any) -> Any:
        return await off_loop(self.runtime.engine.workers, is_small(value), copy.deepcopy, value)

    # -- control -----------------------------------------------------------------------------

    def pause(self) -> bool:
        if self.status != "RUNNING":
            return False
        self.gate.clear()
        self.status = "PAUSED"
        self.runtime.recorder.job_status(self.job_id, "PAUSED", None, None, None)
        self._publish_status()
        self.job_log("Paused: running nodes finish, no new node starts until resumed.")
        return True

    def resume(self) -> bool:
        if self.status != "PAUSED":
            return False
        self.status = "RUNNING"
        self.gate.set()
        self.runtime.recorder.job_status(self.job_id, "RUNNING", None, None, None)
        self._publish_status()
        self.job_log("Resumed.")
        return True

    def stop(self, reason: str = "user") -> bool:
        if self.status not in ACTIVE or self.task is None or self.task.done():
            return False
        self.stop_reason = self.stop_reason or reason
        for ctx in list(self._contexts):
            ctx.cancelled.set()
        if self.begun:
            self.task.cancel()
        else:
            # A task cancelled before its first step never runs its body (no STOPPED status,
            # no record): let run() start and see the stop instead.
            self.released.set()
        return True

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """The whole job, start to terminal status. Never raises for a top-level job; a child
        job re-raises cancellation so its parent node stops too."""
        status, error = "SUCCEEDED", None
        cancelled = False
        try:
            await self.released.wait()
            if self.stop_reason is not None:
                raise asyncio.CancelledError  # stopped before it began
            self.begun = True
            self._publish_status()
            # Start and end go to the engine log only: the status updates already tell the GUI.
            log.debug("job %s started (%s, workflow %r, owner %s)", self.job_id, self.mode,
                      self.preset_name, self.owner)
            if self.graph.timeout_s:
                async with asyncio.timeout(self.graph.timeout_s):
                    await self._iterations()
            else:
                await self._iterations()
        except asyncio.CancelledError:
            cancelled = True
            status = "STOPPED"
            if self.stop_reason == "engine":
                error = "interrupted: the engine was stopped while this job was running"
        except TimeoutError:
            status = "FAILED"
            error = (f"The workflow ran longer than its timeout of {self.graph.timeout_s:g} s "
                     f"and was stopped.")
        except JobFailure as failure:
            status, error = "FAILED", str(failure)
        except Exception as exc:  # noqa: BLE001 - a bug must end the job, visibly
            log.exception("job %s failed unexpectedly", self.job_id)
            status, error = "FAILED", f"The engine failed while running this job ({exc!r}); the engine log has the details."
        await self._cancel_branches()
        await self._finish(status, error)
        if cancelled and self.is_child:
            raise asyncio.CancelledError

    async def _finish(self, status: str, error: str | None) -> None:
        self.status = status
        self.end_time = time.time()
        self.error = self.masker.text(error) if error else None
        for ctx in list(self._contexts):
            ctx.cancelled.set()
        if status == "SUCCEEDED" and self._result_text is not None:
            limit = self.settings["history_payload_preview_bytes"]
            self.result = await off_loop(self.runtime.engine.workers, len(self._result_text) < 16 * 1024,
                                         public_result, self._result_text, limit)
        recorder = self.runtime.recorder
        recorder.job_status(self.job_id, status, self.end_time, self.error,
                            self._result_text if status == "SUCCEEDED" else None)
        try:
            await asyncio.shield(recorder.flush())
        except asyncio.CancelledError:
            pass
        recorder.forget(self.job_id)
        took = self.end_time - self.start_time
        log.log(logging.WARNING if status == "FAILED" else logging.INFO, "job %s %s after %.2f s%s",
                self.job_id, status.lower(), took, f": {self.error}" if self.error else "")
        self._publish_status()

    async def _iterations(self) -> None:
        loop = self.graph.loop
        for index in range(loop.iterations):
            if index > 0:
                await self._between_iterations(loop)
            if loop.iterations > 1:
                self.job_log(f"Iteration {index + 1} of {loop.iterations}.")
            payload = await self._copy(self.initial_payload) if index < loop.iterations - 1 else self.initial_payload
            await self._run_graph(payload)

    async def _between_iterations(self, loop: Any) -> None:
        await self.gate.wait()
        if loop.delay_type is None or self.mode == "SIMULATE":
            return
        if loop.delay_type == "random_range":
            seconds = random.uniform(loop.delay_min, loop.delay_max)
        else:
            seconds = loop.delay_static
        if seconds > 0:
            self.job_log(f"Waiting {seconds:.2f} s before the next iteration.")
            await asyncio.sleep(seconds)

    async def _run_graph(self, payload: dict[str, Any]) -> None:
        self._inbox = {}
        self._failure = None
        starts = self.graph.start_nodes(self.start_node_id)
        _, size, copies = await self._encode(payload, len(starts))
        for node, own in zip(starts, copies):
            self._spawn(self._visit(node, own, size))
        if not starts:
            return
        try:
            while True:
                await self._idle.wait()
                if self._failure is not None:
                    raise self._failure
                if not self._fire_partial_merges():
                    return
        finally:
            await self._cancel_branches()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._branch_done)

    def _branch_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            exc = task.exception()
            if exc is not None and self._failure is None:
                if not isinstance(exc, JobFailure):
                    log.error("job %s: a branch failed unexpectedly", self.job_id, exc_info=exc)
                self._failure = exc
                for other in list(self._tasks):
                    other.cancel()
        if not self._tasks:
            self._idle.set()

    async def _cancel_branches(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- merge (wait for all inputs) ---------------------------------------------------------

    def _arrive(self, target: Node, edge: Edge, payload: dict[str, Any], size: int) -> None:
        inbox = self._inbox.setdefault(target.id, {})
        inbox.setdefault(edge.id, deque()).append((payload, size))
        expected = list(dict.fromkeys(e.id for e in self.graph.incoming.get(target.id, [])))
        if all(inbox.get(edge_id) for edge_id in expected):
            arrived = [inbox[edge_id].popleft() for edge_id in expected]
            self._spawn(self._visit(target, arrived[0][0], sum(s for _, s in arrived),
                                    [p for p, _ in arrived]))

    def _fire_partial_merges(self) -> bool:
        """Nothing else can arrive: run waiting merges with what did arrive."""
        fired = False
        for node_id, inbox in self._inbox.items():
            waiting = [(edge_id, queue) for edge_id, queue in inbox.items() if queue]
            if not waiting:
                continue
            arrived = [queue.popleft() for _, queue in waiting]
            node = self.graph.nodes[node_id]
            expected = len({e.id for e in self.graph.incoming.get(node_id, [])})
            self.node_log(node.id, node.name, f"Only {len(arrived)} of {expected} inputs arrived; "
                          f"the other branches ended before reaching this node. Merging what arrived.",
                          "WARN")
            self._spawn(self._visit(node, arrived[0][0], sum(s for _, s in arrived),
                                    [p for p, _ in arrived]))
            fired = True
        return fired

    # -- one node ----------------------------------------------------------------------------

    async def _visit(self, node: Node, payload: dict[str, Any], input_size: int,
                     inputs: list[dict[str, Any]] | None = None) -> None:
        await self.gate.wait()
        top = self.top
        top.node_runs += 1
        if top.node_runs > self.max_node_runs:
            raise JobFailure(
                f"The workflow was stopped after {self.max_node_runs} node runs (loop guard): it "
                f"probably loops forever (node '{node.name}' was about to run again). Add a "
                f"condition that ends the loop, or raise max_node_runs in the engine settings.",
                node.id)
        module = self.modules[node.module_id]
        run_seq = next(self._run_seq)
        started = time.time()
        self._metric(node, "RUNNING", run_seq=run_seq, input_size=input_size)
        self.runtime.recorder.node_start(self.job_id, run_seq, node.id, node.module_id, started)
        clock = time.perf_counter()
        failed: str | None = None
        try:
            result = await self._attempts(node, module, payload, inputs)
        except asyncio.CancelledError:
            self.runtime.recorder.node_end(self.job_id, run_seq, "STOPPED", time.time(), "stopped")
            raise
        except JobFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - a module's failure, reported
            failed = self.masker.text(_describe(exc))
            if not isinstance(exc, (ModuleError, TemplateError, TimeoutError, JobCancelled)):
                # The traceback's text, masked: it quotes the exception's message.
                trace = ("\n" + self.masker.text("".join(traceback.format_exception(exc)))
                         if log.isEnabledFor(logging.DEBUG) else "")
                log.info("job %s node %s (%s) raised%s", self.job_id, node.id, node.module_id, trace)
        elapsed_ms = (time.perf_counter() - clock) * 1000.0
        if failed is not None:
            self._metric(node, "ERROR", run_seq=run_seq, elapsed_ms=elapsed_ms,
                         input_size=input_size, error=failed)
            self.runtime.recorder.node_end(self.job_id, run_seq, "ERROR", time.time(), failed)
            edges = self.graph.edges_from(node.id, ERROR_PORT)
            if not edges:
                self.node_log(node.id, node.name, f"Failed: {failed}", "ERROR")
                raise JobFailure(f"Node '{node.name}' ({node.module_id}) failed: {failed}", node.id)
            self.node_log(node.id, node.name, f"Failed: {failed}. Continuing through its error port.",
                          "ERROR")
            out = as_payload(await self._copy(payload))
            out["data"]["error"] = {"message": failed, "node_id": node.id, "node_name": node.name,
                                   "module_id": node.module_id}
            port: str | None = ERROR_PORT
        else:
            out, port = _normalize(result, payload)
            edges = self.graph.edges_from(node.id, port)
        history = out["history"]
        history.append({"node_id": node.id, "node_name": node.name, "module_id": node.module_id,
                        "status": "ERROR" if failed else "SUCCESS", "output_name": port,
                        "timestamp": started})
        if len(history) > HISTORY_KEEP:
            del history[:len(history) - HISTORY_KEEP]
        try:
            text, size, copies = await self._encode(out, len(edges), output_is_small(out, input_size))
        except (ValueError, RecursionError) as exc:
            # The module handed over something JSON cannot hold (a circular value, nesting past
            # the interpreter's limit): the module's failure, not the engine's.
            problem = self.masker.text(f"its output cannot be represented as JSON ({exc})")
            self._metric(node, "ERROR", run_seq=run_seq, elapsed_ms=elapsed_ms,
                         input_size=input_size, error=problem)
            self.runtime.recorder.node_end(self.job_id, run_seq, "ERROR", time.time(), problem)
            self.node_log(node.id, node.name, f"Failed: {problem}", "ERROR")
            raise JobFailure(f"Node '{node.name}' ({node.module_id}) failed: {problem}", node.id) from None
        if failed is None:
            self._metric(node, "SUCCESS", run_seq=run_seq, elapsed_ms=elapsed_ms,
                         input_size=input_size, output_size=size, output_name=port)
            self.runtime.recorder.node_end(self.job_id, run_seq, "SUCCESS", time.time(), None)
        if not edges:
            self._result_text = text
            self.final_payload = out if not copies else copies[-1]
        for edge, own in zip(edges, copies):
            self._cross(edge, own, size, text)

    def _cross(self, edge: Edge, payload: dict[str, Any], size: int, text: str) -> None:
        now = time.time()
        self.runtime.recorder.crossing(self.job_id, next(self._crossing_seq), edge.id, text, now)
        self.emit({"type": "CONNECTION_STATUS_UPDATE", "workflow_context_id": self.job_id,
                   "job_id": self.job_id, "connection_id": edge.id, "status": "ACTIVE",
                   "source_node_id": edge.source, "target_node_id": edge.target,
                   "timestamp": now}, Delivery.DROPPABLE)
        target = self.graph.nodes[edge.target]
        if self.modules[target.module_id].waits_for_all_inputs:
            self._arrive(target, edge, payload, size)
        else:
            self._spawn(self._visit(target, payload, size))

    async def _attempts(self, node: Node, module: LoadedModule, payload: dict[str, Any],
                        inputs: list[dict[str, Any]] | None) -> Any:
        data = payload.get("data")
        config = prepare_config(module.component.manifest.get("properties") or (), node.config,
                                lambda value: self.renderer.render(value, data))
        retries = int(min(max(_number(config.get("retry_max"), 0), 0), MAX_RETRIES))
        delay = max(_number(config.get("retry_delay_s"), 0), 0)
        timeout = None if module.component.manifest.get("own_timeout") else _number(config.get("timeout_s"), 0) or None
        backup = await self._copy(payload) if retries else None
        for attempt in range(retries + 1):
            ctx = NodeContext(self, node, config, inputs if inputs is not None else [payload])
            self._contexts.add(ctx)
            try:
                if module.is_async:
                    call = module.run(ctx, payload)
                else:
                    call = self.runtime.module_threads.run(module.run, ctx, payload)
                try:
                    if timeout:
                        return await asyncio.wait_for(call, timeout)
                    return await call
                except TimeoutError:
                    raise ModuleError(f"timed out after {timeout:g} s") from None
            except asyncio.CancelledError:
                ctx.cancelled.set()
                raise
            except Exception as exc:
                ctx.cancelled.set()
                if attempt >= retries:
                    raise
                self.node_log(node.id, node.name, f"Attempt {attempt + 1} of {retries + 1} failed: "
                              f"{_describe(exc)}. Retrying in {delay:g} s.", "WARN")
                if delay and self.mode != "SIMULATE":
                    await asyncio.sleep(delay)
                await self.gate.wait()
                payload = await self._copy(backup)
                if inputs is not None:
                    inputs = [payload] + inputs[1:]
            finally:
                self._contexts.discard(ctx)
        raise AssertionError("unreachable")

    # -- helpers modules reach through their context -----------------------------------------

    async def request_approval(self, node_id: str, node_name: str, module_id: str, message: str,
                               timeout_s: float | None) -> Any:
        timeout = timeout_s if timeout_s and timeout_s > 0 else self.settings["approval_timeout_s"]
        default = self.settings["approval_default_decision"]
        return await self.runtime.approvals.request(
            job_id=self.job_id, context_id=self.top.job_id, owner=self.owner, node_id=node_id,
            node_name=node_name, module_id=module_id, message=self.masker.text(message),
            timeout_s=timeout, default_decision=default, workflow_name=self.top.preset_name)

    async def run_child(self, ctx: NodeContext, preset_name: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.runtime.run_child(self, ctx, preset_name, payload, next(self._child_seq))


def _normalize(result: Any, payload: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    port: str | None = None
    if result is None:
        out: Any = payload
    elif isinstance(result, dict) and "payload" in result and set(result) <= {"payload", "output_name"}:
        out = result["payload"]
        name = result.get("output_name")
        port = str(name) if name not in (None, "") else None
    else:
        out = result
    if isinstance(out, dict) and ("data" in out or "history" in out):
        out = as_payload(out)
    else:
        out = {"data": out if isinstance(out, dict) else ({} if out is None else {"value": out}),
               "history": payload.get("history", [])}
    return out, port


def _number(value: Any, default: float) -> float:
    if value is None or value == "" or isinstance(value, bool):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number == number else default  # NaN -> default


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, (ModuleError, TemplateError, JobCancelled)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
