"""Scheduling one job's graph: which nodes run, on which branch, with which copy of the payload.

A branch is one task that walks the graph: it runs a node, and if the node leaves by one edge
to an ordinary node it runs that node next, in the same task (a chain of `async def` modules
with nothing to wait for costs no scheduler hop per node; the branch yields to the loop every
YIELD_EVERY_S so a long chain never starves other clients). Each further edge starts its own
branch with its own copy of the payload, so independent branches run concurrently while each
branch's events stay in order (node RUNNING, its logs, SUCCESS/ERROR, its edges ACTIVE, then the
next node). A node with several incoming edges runs once per arrival, except modules whose
manifest says `wait_for_all_inputs` (merge): those run once every connected input has arrived
(or, when nothing else can arrive any more, with what did).

Each branch is a `Token` (engine/runtime/checkpoint.py) that is checkpointed as it moves: the
node it goes to and the payload it carries there, written with the history of the node that
sent it. An arrival waiting in a merge's inbox is a token too. A restored job (`run(...,
restored=...)`) starts its branches from its tokens instead of its start nodes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from engine.runtime.checkpoint import JobCheckpoints, Token
from engine.runtime.graph import Edge, Graph, LoopConfig, Node
from engine.runtime.loader import LoadedModule
from engine.runtime.payload import Snapshot, fork
from engine.runtime.reporter import JobReporter
from engine.runtime.runner import JobFailure, NodeRunner

log = logging.getLogger("engine.jobs")

YIELD_EVERY_S = 0.002


class Latch:
    """asyncio.Event's set/clear/is_set/wait at a fraction of its size: an Event starts with a
    deque of 64 slots (about 600 bytes), and a job keeps two of these (its start hold and its
    pause gate, which every branch of the job waits on while it is paused), so a thousand
    waiting jobs keep two thousand. Waiters are a list made when someone waits. Unlike an
    Event, a waiter woken by `set` waits again if `clear` came before it ran."""

    __slots__ = ("_open", "_waiters")

    def __init__(self, open_: bool = False) -> None:
        self._open = open_
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        self._open = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._open = False

    def future(self) -> "asyncio.Future[None]":
        """A future done at the next `set` (at once if set now): for a done callback where
        a task that waits would cost more. Unlike `wait`, a later `clear` does not undo it."""
        if self._open:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiter.set_result(None)
            return waiter
        return self._enqueue()

    async def wait(self) -> None:
        while not self._open:
            # One future per waiter: a cancelled waiter cancels only its own.
            waiter = self._enqueue()
            try:
                await waiter
            finally:
                if self._waiters is not None and waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _enqueue(self) -> "asyncio.Future[None]":
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        return waiter


@dataclass(slots=True)
class Frontier:
    """Where one job is, as plain data."""

    job_id: str
    iteration: int = 0
    node_runs: int = 0          # the loop guard (on the top job: sub-workflows count too)
    run_seq: int = 0            # the last node run's number
    running: dict[int, str] = field(default_factory=dict)       # run_seq -> node id, running now
    attempts: dict[int, int] = field(default_factory=dict)      # run_seq -> retries so far
    # merge node id -> edge id -> arrivals that wait (payload, size, snapshot, token)
    inbox: dict[str, dict[str, deque["Arrival"]]] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)           # sub-workflow jobs running


Arrival = tuple[dict[str, Any], int, Snapshot, "Token | None"]


class Scheduler:
    __slots__ = ("graph", "modules", "runner", "reporter", "frontier", "gate", "mode", "final",
                 "checkpoints", "_tasks", "_idle", "_failure")

    def __init__(self, *, graph: Graph, modules: dict[str, LoadedModule], runner: NodeRunner,
                 reporter: JobReporter, frontier: Frontier, gate: Latch, mode: str,
                 checkpoints: JobCheckpoints) -> None:
        self.graph = graph
        self.modules = modules
        self.runner = runner
        self.reporter = reporter
        self.frontier = frontier
        self.gate = gate
        self.mode = mode
        self.checkpoints = checkpoints
        self.final: tuple[dict[str, Any], Snapshot] | None = None  # the last end node's output
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = Latch()
        self._failure: BaseException | None = None

    # -- the job's iterations ---------------------------------------------------------------

    async def run(self, initial: dict[str, Any], start_node_id: str | None,
                  restored: list[Token] | None = None) -> None:
        """The job's iterations; a restored job goes on in its tokens' iteration."""
        loop = self.graph.loop
        snapshot = Snapshot(initial) if loop.iterations > 1 else None
        first = max((t.iteration for t in restored), default=self.frontier.iteration) if restored is not None else 0
        for index in range(first, loop.iterations):
            self.frontier.iteration = index
            if restored is not None and index == first:
                await self._resume_graph(restored)
                continue
            if index > 0:
                await self._between_iterations(loop)
            if loop.iterations > 1:
                self.reporter.line("Workflow", None, f"Iteration {index + 1} of {loop.iterations}.")
            payload = snapshot.copy() if snapshot is not None and index < loop.iterations - 1 else initial
            await self._run_graph(payload, start_node_id)

    async def _between_iterations(self, loop: LoopConfig) -> None:
        # Let the loop run between two iterations (a chain's iteration never leaves the job's
        # task: without this, 600 quick iterations would hold the loop, and the clients'
        # writers with it, until the last one).
        await asyncio.sleep(0)
        await self.gate.wait()
        if loop.delay_type is None or self.mode == "SIMULATE":
            return
        if loop.delay_type == "random_range":
            seconds = random.uniform(loop.delay_min, loop.delay_max)
        else:
            seconds = loop.delay_static
        if seconds > 0:
            self.reporter.line("Workflow", None, f"Waiting {seconds:.2f} s before the next iteration.")
            await asyncio.sleep(seconds)

    async def _run_graph(self, payload: dict[str, Any], start_node_id: str | None) -> None:
        self.frontier.inbox = {}
        self._failure = None
        starts = self.graph.start_nodes(start_node_id)
        if not starts:
            return
        snapshot = Snapshot(payload)
        iteration = self.frontier.iteration
        # One branch that can never fork runs here, in the job's task (a task fewer per run):
        # failure, stop and timeout reach it as they reach the job, and what it may leave (a
        # merge waiting for a connection that never fires) is handled by _until_done.
        inline = len(starts) == 1 and self.graph.chain
        for index, node in enumerate(starts):
            own = payload if index == 0 and not snapshot.lossy else snapshot.copy()
            token = self.checkpoints.new_token(node.id, iteration, (snapshot,))
            branch = self._branch(token, node, own, snapshot.size)
            if inline:
                await branch
            else:
                self._spawn(branch)
        await self._until_done()

    async def _resume_graph(self, tokens: list[Token]) -> None:
        """Branches from checkpointed tokens: arrivals back into their merges' inboxes, the
        others run the node they were at (the runtime checked that it may run again)."""
        self.frontier.inbox = {}
        self._failure = None
        graph = self.graph
        for token in tokens:
            node = graph.nodes[token.node_id]
            payloads = [s.copy() for s in token.snapshots]
            if token.edge_id is not None:
                inbox = self.frontier.inbox.setdefault(node.id, {})
                inbox.setdefault(token.edge_id, deque()).append(
                    (payloads[0], token.snapshots[0].size, token.snapshots[0], token))
                continue
            inputs = payloads if len(payloads) > 1 or self.modules[node.module_id].waits_for_all_inputs else None
            size = sum(s.size for s in token.snapshots)
            self._spawn(self._branch(token, node, payloads[0], size, inputs))
        await self._until_done()

    async def _until_done(self) -> None:
        try:
            while True:
                if self._tasks:
                    await self._idle.wait()
                if self._failure is not None:
                    self._raise_failure()
                if not self._fire_partial_merges():
                    return
        finally:
            await self.cancel()

    def _raise_failure(self) -> None:
        """Raise the failure a branch ended with, and let go of it: its traceback holds this
        scheduler's frames, so keeping it would make the job a reference cycle."""
        failure, self._failure = self._failure, None
        try:
            raise failure  # type: ignore[misc]
        finally:
            del failure

    # -- branches ---------------------------------------------------------------------------

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
                    log.error("job %s: a branch failed unexpectedly", self.frontier.job_id, exc_info=exc)
                self._failure = exc
                for other in list(self._tasks):
                    other.cancel()
        if not self._tasks:
            self._idle.set()

    async def cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _branch(self, token: Token, node: Node, payload: dict[str, Any], size: int,
                      inputs: list[dict[str, Any]] | None = None) -> None:
        """Run `node`, then keep walking this branch while it leads to one ordinary node."""
        gate, runner, graph, checkpoints = self.gate, self.runner, self.graph, self.checkpoints
        slice_start = time.perf_counter()
        current: Node | None = node
        while current is not None:
            if not gate.is_set():
                await gate.wait()
            outcome = await runner.run(current, payload, size, inputs, token)
            edges, snapshot = outcome.edges, outcome.snapshot
            if not edges:
                self.final = (outcome.out, snapshot)
                checkpoints.final(snapshot)
                checkpoints.drop(token)
                return
            current, inputs = None, None
            size = snapshot.size
            out = outcome.out
            iteration = token.iteration
            # Every extra branch gets its own copy, made now, before any of them runs.
            owns = ([snapshot.copy()] if snapshot.lossy else [out]) + fork(out, snapshot, len(edges) - 1)
            for edge, own in zip(edges, owns):
                self.reporter.crossed(edge, snapshot)
                target = graph.nodes[edge.target]
                if self.modules[target.module_id].waits_for_all_inputs:
                    arrived = self._arrive(target, edge, own, size, snapshot, iteration)
                    if arrived is None:
                        continue
                    merged = (arrived[0][0], sum(a[1] for a in arrived), [a[0] for a in arrived])
                    snapshots = tuple(a[2] for a in arrived)
                    for arrival in arrived:
                        if arrival[3] is not None:
                            checkpoints.drop(arrival[3])
                    if current is None:  # this branch goes on with the merge
                        current, (payload, size, inputs) = target, merged
                        checkpoints.move(token, target.id, snapshots)
                    else:
                        other = checkpoints.new_token(target.id, iteration, snapshots)
                        self._spawn(self._branch(other, target, *merged))
                elif current is None:
                    current, payload = target, own
                    checkpoints.move(token, target.id, (snapshot,))
                else:
                    other = checkpoints.new_token(target.id, iteration, (snapshot,))
                    self._spawn(self._branch(other, target, own, size))
            if current is None:
                checkpoints.drop(token)
                return
            if time.perf_counter() - slice_start > YIELD_EVERY_S:
                await asyncio.sleep(0)  # a long chain lets the loop serve everyone else
                slice_start = time.perf_counter()

    # -- merge (wait for all inputs) ---------------------------------------------------------

    def _arrive(self, target: Node, edge: Edge, payload: dict[str, Any], size: int,
                snapshot: Snapshot, iteration: int) -> list[Arrival] | None:
        """Queue an arrival (a token of its own while it waits); every input's first arrival
        once all have arrived, else None."""
        inbox = self.frontier.inbox.setdefault(target.id, {})
        queue = inbox.setdefault(edge.id, deque())
        expected = list(dict.fromkeys(e.id for e in self.graph.incoming.get(target.id, [])))
        fire = all(inbox.get(edge_id) or edge_id == edge.id for edge_id in expected)
        if fire and not queue:  # taken at once: no need to checkpoint the arrival
            queue.append((payload, size, snapshot, None))
        else:
            token = self.checkpoints.new_token(target.id, iteration, (snapshot,), edge_id=edge.id)
            queue.append((payload, size, snapshot, token))
        return [inbox[edge_id].popleft() for edge_id in expected] if fire else None

    def _fire_partial_merges(self) -> bool:
        """Nothing else can arrive: run waiting merges with what did arrive."""
        fired = False
        for node_id, inbox in self.frontier.inbox.items():
            waiting = [(edge_id, queue) for edge_id, queue in inbox.items() if queue]
            if not waiting:
                continue
            arrived = [queue.popleft() for _, queue in waiting]
            node = self.graph.nodes[node_id]
            expected = len({e.id for e in self.graph.incoming.get(node_id, [])})
            self.reporter.line(node.name, node.id, f"Only {len(arrived)} of {expected} inputs arrived; "
                               f"the other branches ended before reaching this node. Merging what arrived.",
                               "WARN")
            for arrival in arrived:
                if arrival[3] is not None:
                    self.checkpoints.drop(arrival[3])
            token = self.checkpoints.new_token(node.id, self.frontier.iteration, tuple(a[2] for a in arrived))
            self._spawn(self._branch(token, node, arrived[0][0], sum(a[1] for a in arrived),
                                     [a[0] for a in arrived]))
            fired = True
        return fired
