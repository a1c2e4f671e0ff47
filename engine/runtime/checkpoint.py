"""Checkpoints at node boundaries: where each branch of a job is, as writes the recorder batches.

A branch of a running job is a `Token`: the node it is at (about to run, or running), the
payloads it carries there (one; a merge's run carries one per input), the loop iteration, and
the durable wait of the node it runs (an approval's id and deadline, a delay's wall-clock end,
a sub-workflow's job id). Each time a branch moves, `JobCheckpoints` queues the token's new
row with the history writes of the same node (engine/runtime/history.py), so a checkpoint
rides on the group commit the history already pays for; rows that a batch overwrites are
written once (engine/store/checkpoints.py `apply`). A token's payload is referenced as the
runtime's `Snapshot` (engine/runtime/payload.py): its JSON text is joined on the database
thread, never on the loop.

What a restart needs beyond tokens is the job's spec (what it runs: written once, at creation)
and, once a branch reached an end node, the job's final payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from engine.runtime.payload import Snapshot, encode

if TYPE_CHECKING:
    from engine.runtime.history import HistoryRecorder
    from engine.store.checkpoints import Sealer


class Token:
    """One branch's position. `state` is "ready" (at a node boundary) or "running" (a node
    that is not safe to repeat has started: its start was committed before it ran)."""

    __slots__ = ("token_id", "node_id", "edge_id", "state", "iteration", "snapshots", "wait",
                 "moves")

    def __init__(self, token_id: int, node_id: str, iteration: int,
                 snapshots: tuple[Snapshot, ...], *, edge_id: str | None = None,
                 state: str = "ready", wait: dict[str, Any] | None = None) -> None:
        self.token_id = token_id
        self.node_id = node_id
        self.edge_id = edge_id
        self.state = state
        self.iteration = iteration
        self.snapshots = snapshots
        self.wait = wait
        self.moves = 0  # how often it moved on: with the job and its id, names one node run

    def run_key(self, top_job_id: str, job_id: str) -> str:
        """Names the node run this token is at, the same when it runs again after a restart:
        what a module keys its side effects in the engine's own storage by (dataset_append).
        Starts with the top-level job's id, whose end removes the keys."""
        return f"{top_job_id}#{job_id}#{self.token_id}.{self.moves}"


def _payload_list(snapshots: tuple[Snapshot, ...]) -> bytes:
    return b"[" + b",".join(s.text().encode("utf-8", "surrogatepass") for s in snapshots) + b"]"


def _seal(raw: bytes, sealer: "Sealer | None", sealed: bool) -> bytes | str:
    if sealed and sealer is not None:
        return sealer.encrypt(raw)
    return raw.decode("utf-8", "surrogatepass")


class TokenWrite:
    """A token's row as it was when queued (the token moves on; this does not)."""

    __slots__ = ("kind", "job_id", "top_job_id", "token_id", "node_id", "edge_id", "state",
                 "iteration", "snapshots", "wait", "moves", "sealed")

    def __init__(self, kind: str, job_id: str, top_job_id: str, token: Token, sealed: bool) -> None:
        self.kind = kind
        self.job_id = job_id
        self.top_job_id = top_job_id
        self.token_id = token.token_id
        self.node_id = token.node_id
        self.edge_id = token.edge_id
        self.state = token.state
        self.iteration = token.iteration
        self.snapshots = token.snapshots
        self.wait = orjson.dumps(token.wait).decode() if token.wait else None
        self.moves = token.moves
        self.sealed = sealed

    def row(self, sealer: "Sealer | None") -> tuple[Any, ...]:
        return (self.job_id, self.token_id, self.top_job_id, self.node_id, self.edge_id,
                self.state, self.iteration, _seal(_payload_list(self.snapshots), sealer, self.sealed),
                self.wait, self.moves)


class SpecWrite:
    """The job's spec: everything needed to build it again (the workflow as given, how it was
    started, its initial payload)."""

    __slots__ = ("kind", "job_id", "top_job_id", "spec", "initial", "sealed")

    def __init__(self, job_id: str, top_job_id: str, spec: dict[str, Any], workflow_json: bytes,
                 initial: Snapshot, sealed: bool) -> None:
        self.kind = "spec"
        self.job_id = job_id
        self.top_job_id = top_job_id
        # On the loop: the spec is small and may change later. The workflow comes as the text
        # the runtime's GraphCache wrote (with `encode`, not orjson alone: a workflow may hold
        # an integer past 64 bits, and the GUI writes 1e20 as 21 digits).
        self.spec = encode(spec)[0][:-1] + b',"workflow":' + workflow_json + b"}"
        self.initial = initial
        self.sealed = sealed

    def row_blob(self, sealer: "Sealer | None") -> bytes | str:
        raw = self.spec[:-1] + b',"initial_payload":' + self.initial.text().encode("utf-8", "surrogatepass") + b"}"
        return _seal(raw, sealer, self.sealed)


class FinalWrite:
    __slots__ = ("kind", "job_id", "top_job_id", "snapshot", "sealed")

    def __init__(self, job_id: str, top_job_id: str, snapshot: Snapshot, sealed: bool) -> None:
        self.kind = "final"
        self.job_id = job_id
        self.top_job_id = top_job_id
        self.snapshot = snapshot
        self.sealed = sealed

    def row_blob(self, sealer: "Sealer | None") -> bytes | str:
        return _seal(self.snapshot.text().encode("utf-8", "surrogatepass"), sealer, self.sealed)


@dataclass(frozen=True, slots=True)
class DoneWrite:
    """The top-level job ended: its tree's checkpoint rows go."""

    job_id: str
    top_job_id: str
    kind: str = "done"


class JobCheckpoints:
    """One job's checkpoint writer (a sub-workflow has its own, with its top job's id).
    Disabled (checkpoints off in the engine config), every method is a no-op."""

    __slots__ = ("recorder", "job_id", "top_job_id", "sealed", "enabled", "token_seq")

    def __init__(self, recorder: "HistoryRecorder", *, job_id: str, top_job_id: str,
                 sealed: bool, enabled: bool) -> None:
        self.recorder = recorder
        self.job_id = job_id
        self.top_job_id = top_job_id
        self.sealed = sealed
        self.enabled = enabled
        self.token_seq = 0

    def new_token(self, node_id: str, iteration: int, snapshots: tuple[Snapshot, ...], *,
                  edge_id: str | None = None) -> Token:
        self.token_seq += 1
        token = Token(self.token_seq, node_id, iteration, snapshots, edge_id=edge_id)
        self.write(token)
        return token

    def move(self, token: Token, node_id: str, snapshots: tuple[Snapshot, ...]) -> None:
        """The branch goes on to `node_id` carrying `snapshots`."""
        token.node_id = node_id
        token.edge_id = None
        token.state = "ready"
        token.snapshots = snapshots
        token.wait = None
        token.moves += 1
        self.write(token)

    def write(self, token: Token) -> int:
        if not self.enabled:
            return 0
        return self.recorder.checkpoint(TokenWrite("token", self.job_id, self.top_job_id, token, self.sealed))

    def drop(self, token: Token) -> None:
        if self.enabled:
            self.recorder.checkpoint(TokenWrite("token_done", self.job_id, self.top_job_id, token, False))

    def spec(self, spec: dict[str, Any], workflow_json: bytes, initial: Snapshot) -> None:
        if self.enabled:
            self.recorder.checkpoint(SpecWrite(self.job_id, self.top_job_id, spec, workflow_json,
                                               initial, self.sealed))

    def final(self, snapshot: Snapshot) -> None:
        if self.enabled:
            self.recorder.checkpoint(FinalWrite(self.job_id, self.top_job_id, snapshot, self.sealed))

    def done(self) -> None:
        if self.enabled:
            self.recorder.checkpoint(DoneWrite(self.job_id, self.top_job_id))

    async def committed(self, op: int) -> None:
        if op:
            await self.recorder.committed(op)
