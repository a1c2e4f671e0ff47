"""Running one node: its config rendered, its module called (through the executor) with retries
and a timeout, its failure sent through its error port or turned into the job's failure, its
output normalized, stamped into the history and snapshotted for the edges it leaves by.

What it reports (the node's metrics, log lines, the history's node-run records) goes through
the job's reporter; which nodes run next is the scheduler's business (engine/runtime/scheduler.py).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
import weakref
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.components.api import JobCancelled, ModuleError, NodeContext, NodeHost
from engine.components.properties import prepare_config
from engine.runtime.executor import Executor
from engine.runtime.graph import ERROR_PORT, Edge, Graph, Node
from engine.runtime.loader import LoadedModule
from engine.runtime.payload import HistoryEntry, PayloadNotJSON, Snapshot, as_payload, normalize
from engine.runtime.reporter import JobReporter
from engine.runtime.templating import Masker, Renderer, TemplateError

if TYPE_CHECKING:
    from engine.runtime.checkpoint import JobCheckpoints, Token
    from engine.runtime.scheduler import Frontier, Latch

log = logging.getLogger("engine.jobs")

MAX_RETRIES = 100


class JobFailure(Exception):
    """Ends the job FAILED with this text as `status_data.error`."""

    def __init__(self, message: str, node_id: str | None = None) -> None:
        super().__init__(message)
        self.node_id = node_id


@dataclass(slots=True)
class NodeOutcome:
    out: dict[str, Any]       # the output payload
    edges: list[Edge]         # the edges it leaves by
    snapshot: Snapshot        # its bytes: what each crossing records, what extra branches copy


class Activity:
    """How many node runs of one top-level job (its sub-workflows included) are busy, i.e.
    running and not in a durable wait (an approval, a delay, a sub-workflow's own nodes), and
    since when none is: a job with nothing busy for long enough is released from memory
    (engine/runtime/runtime.py)."""

    __slots__ = ("busy", "idle_since")

    def __init__(self) -> None:
        self.busy = 0
        self.idle_since = time.monotonic()

    def enter(self) -> None:
        self.busy += 1

    def leave(self) -> None:
        self.busy -= 1
        if self.busy <= 0:
            self.busy = 0
            self.idle_since = time.monotonic()

    def idle_for(self, now: float) -> float:
        return now - self.idle_since if self.busy == 0 else 0.0


class NodeRunner:
    """Runs the nodes of one job (one runner per job; the frontier holds the counters)."""

    __slots__ = ("host", "graph", "modules", "executor", "renderer", "masker", "reporter",
                 "frontier", "loop_guard", "max_node_runs", "gate", "mode", "contexts",
                 "checkpoints", "activity")

    def __init__(self, *, host: NodeHost, graph: Graph, modules: dict[str, LoadedModule],
                 executor: Executor, renderer: Renderer, masker: Masker, reporter: JobReporter,
                 frontier: "Frontier", loop_guard: "Frontier", max_node_runs: int,
                 gate: "Latch", mode: str, checkpoints: "JobCheckpoints",
                 activity: Activity) -> None:
        # Weak: the job owns its runner, so a strong reference back would make every job a
        # reference cycle, freed only by the cyclic collector (whose full passes stall the
        # loop). The job outlives its runs: it awaits them.
        self.host = weakref.ref(host)
        self.graph = graph
        self.modules = modules
        self.executor = executor
        self.renderer = renderer
        self.masker = masker
        self.reporter = reporter
        self.frontier = frontier
        self.loop_guard = loop_guard  # the top job's frontier: sub-workflows count there too
        self.max_node_runs = max_node_runs
        self.gate = gate
        self.mode = mode
        self.contexts: set[NodeContext] = set()
        self.checkpoints = checkpoints
        self.activity = activity

    def _host(self) -> NodeHost:
        host = self.host()
        assert host is not None, "a job's runner runs only while its job does"
        return host

    def _config(self, node: Node, module: LoadedModule, data: Any) -> dict[str, Any]:
        """The module's view of the node's config: declared properties parsed and checked
        (engine/components/properties.py), placeholders resolved; a fresh copy each run."""
        if b"{{" not in node.config_json:  # nothing to fill in: the same every run
            return module.plain_config(node)
        render = self.renderer.render
        return prepare_config(module.component.manifest.get("properties") or (), node.config,
                              lambda value: render(value, data))

    async def run(self, node: Node, payload: dict[str, Any], input_size: int,
                  inputs: list[dict[str, Any]] | None = None,
                  token: "Token | None" = None) -> NodeOutcome:
        guard = self.loop_guard
        guard.node_runs += 1
        if guard.node_runs > self.max_node_runs:
            raise JobFailure(
                f"The workflow was stopped after {self.max_node_runs} node runs (loop guard): it "
                f"probably loops forever (node '{node.name}' was about to run again). Add a "
                f"condition that ends the loop, or raise max_node_runs in the engine settings.",
                node.id)
        module = self.modules[node.module_id]
        if token is not None and not module.idempotent and self.checkpoints.enabled and self.mode == "EXECUTE":
            # Its side effects happen at most once: its start is on disk before it runs, so
            # a crash during it is known after the restart (and it is not run again).
            token.state = "running"
            try:
                await self.checkpoints.committed(self.checkpoints.write(token))
            except Exception as exc:  # noqa: BLE001 - HistoryWriteError: the disk refused
                raise JobFailure(f"Node '{node.name}' ({node.module_id}) was not started: the engine "
                                 f"could not record its start ({exc}). Check the disk holding the "
                                 f"data folder, then run the workflow again.", node.id) from None
        frontier = self.frontier
        frontier.run_seq += 1
        run_seq = frontier.run_seq
        frontier.running[run_seq] = node.id
        started = time.time()
        reporter = self.reporter
        reporter.node_running(node, run_seq, input_size, started)
        clock = time.perf_counter()
        failed: str | None = None
        activity = self.activity
        activity.enter()
        try:
            result = await self._attempts(node, module, payload, inputs, run_seq, token)
        except asyncio.CancelledError:
            reporter.node_stopped(run_seq)
            raise
        except JobFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - a module's failure, reported
            failed = self.masker.text(describe(exc))
            if not isinstance(exc, (ModuleError, TemplateError, TimeoutError, JobCancelled)):
                # The traceback's text, masked: it quotes the exception's message.
                trace = ("\n" + self.masker.text("".join(traceback.format_exception(exc)))
                         if log.isEnabledFor(logging.DEBUG) else "")
                log.info("job %s node %s (%s) raised%s", frontier.job_id, node.id, node.module_id, trace)
        finally:
            activity.leave()
            frontier.running.pop(run_seq, None)
            frontier.attempts.pop(run_seq, None)
        elapsed_ms = (time.perf_counter() - clock) * 1000.0
        if failed is not None:
            reporter.node_failed(node, run_seq, input_size, elapsed_ms, failed)
            edges = self.graph.edges_from(node.id, ERROR_PORT)
            if not edges:
                reporter.line(node.name, node.id, f"Failed: {failed}", "ERROR")
                raise JobFailure(f"Node '{node.name}' ({node.module_id}) failed: {failed}", node.id)
            reporter.line(node.name, node.id, f"Failed: {failed}. Continuing through its error port.",
                          "ERROR")
            out = as_payload(_private_copy(payload))
            out["data"]["error"] = {"message": failed, "node_id": node.id, "node_name": node.name,
                                   "module_id": node.module_id}
            port: str | None = ERROR_PORT
        else:
            out, port = normalize(result, payload)
            edges = self.graph.edges_from(node.id, port)
        out["history"].add(HistoryEntry(node.id, node.name, node.module_id,
                                        "ERROR" if failed else "SUCCESS", port, started))
        try:
            snapshot = Snapshot(out)
        except PayloadNotJSON as exc:
            # The module handed over something JSON cannot hold (a circular value, nesting past
            # the interpreter's limit): the module's failure, not the engine's.
            problem = self.masker.text(f"its output cannot be represented as JSON ({exc})")
            reporter.node_failed(node, run_seq, input_size, elapsed_ms, problem)
            reporter.line(node.name, node.id, f"Failed: {problem}", "ERROR")
            raise JobFailure(f"Node '{node.name}' ({node.module_id}) failed: {problem}", node.id) from None
        if failed is None:
            reporter.node_succeeded(node, run_seq, input_size, elapsed_ms, snapshot.size, port)
        return NodeOutcome(out, edges, snapshot)

    async def _attempts(self, node: Node, module: LoadedModule, payload: dict[str, Any],
                        inputs: list[dict[str, Any]] | None, run_seq: int,
                        token: "Token | None") -> Any:
        config = self._config(node, module, payload.get("data"))
        retries = int(min(max(number_or(config.get("retry_max"), 0), 0), MAX_RETRIES))
        delay = max(number_or(config.get("retry_delay_s"), 0), 0)
        timeout = None if module.component.manifest.get("own_timeout") else number_or(config.get("timeout_s"), 0) or None
        backup = Snapshot(payload) if retries else None
        for attempt in range(retries + 1):
            # Without checkpoints a branch position is not kept: the node run has no key.
            ctx = NodeContext(self._host(), node.id, node.name, node.module_id, config,
                              inputs if inputs is not None else [payload],
                              token=token if self.checkpoints.enabled else None)
            if not module.is_async:
                ctx.cancelled  # noqa: B018 - made now: the module's thread will look at it
            self.contexts.add(ctx)
            try:
                call = self.executor.call(module, ctx, payload)
                try:
                    if timeout:
                        return await asyncio.wait_for(call, timeout)
                    return await call
                except TimeoutError:
                    raise ModuleError(f"timed out after {timeout:g} s") from None
            except asyncio.CancelledError:
                ctx.cancel()
                raise
            except Exception as exc:
                ctx.cancel()
                if attempt >= retries:
                    raise
                self.frontier.attempts[run_seq] = attempt + 1
                self.reporter.line(node.name, node.id, f"Attempt {attempt + 1} of {retries + 1} failed: "
                                   f"{describe(exc)}. Retrying in {delay:g} s.", "WARN")
                if delay and self.mode != "SIMULATE":
                    await asyncio.sleep(delay)
                await self.gate.wait()
                assert backup is not None
                payload = backup.copy()
                if inputs is not None:
                    inputs = [payload] + inputs[1:]
            finally:
                self.contexts.discard(ctx)
        raise AssertionError("unreachable")

    def cancel_running(self) -> None:
        for ctx in list(self.contexts):
            ctx.cancel()


def _private_copy(payload: dict[str, Any]) -> dict[str, Any]:
    try:
        return Snapshot(as_payload(payload)).copy()
    except PayloadNotJSON:
        return {"data": {}, "history": as_payload(payload)["history"].copy_for_branch()}


def number_or(value: Any, default: float) -> float:
    """A config value as a number, else `default` (empty, not a number, NaN)."""
    if value is None or value == "" or isinstance(value, bool):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number == number else default  # NaN -> default


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, (ModuleError, TemplateError, JobCancelled)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
