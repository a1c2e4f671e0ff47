"""Durable jobs on disk: the checkpoint rows a restart rebuilds unfinished jobs from.

Two tables (engine/store/db.py): `job_checkpoints`, one row per unfinished job (what it runs:
its spec; and, once one of its branches reached an end node, that final payload), and
`job_tokens`, one row per branch position (the node a branch is at or runs, the payloads it
carries, the durable wait of that node: an approval, a delay's end, a sub-workflow).

The runtime never writes here itself: it queues checkpoint writes beside its history writes
(engine/runtime/history.py) and they are applied in the same transaction, so a checkpoint costs
no commit of its own (`apply` below folds them: a token moved many times in one batch is
written once). Reading happens once per restart (`load_tree`) and when a released job wakes.

Payload texts are joined on the database thread from the runtime's snapshots, and sealed
(Fernet, the engine's key) for jobs that hold secrets: the history masks secrets, but a
checkpoint must restore the real values, so it keeps them encrypted instead.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol



class Sealer(Protocol):
    def encrypt(self, data: bytes) -> bytes: ...
    def decrypt(self, token: bytes) -> bytes: ...


class CheckpointWrite(Protocol):
    """What the runtime queues (engine/runtime/checkpoint.py): each knows its row."""

    kind: str
    job_id: str
    top_job_id: str


@dataclass(slots=True)
class StoredToken:
    token_id: int
    node_id: str
    edge_id: str | None
    state: str
    iteration: int
    payloads: bytes       # JSON list of payloads, opened (decrypted) already
    wait: str | None      # JSON
    moves: int = 0


@dataclass(slots=True)
class StoredJob:
    """One job of a restored tree, as the checkpoint rows and the jobs table have it."""

    job_id: str
    top_job_id: str
    spec: bytes           # JSON, opened
    final: bytes | None   # JSON payload, opened
    status: str           # the jobs table's status (RUNNING, PAUSED, or FAILED when interrupted)
    start_time: float
    error: str | None
    tokens: list[StoredToken] = field(default_factory=list)
    run_seq: int = 0      # the highest node run number recorded
    crossing_seq: int = 0  # the highest crossing number recorded
    node_runs: int = 0
    child_ids: list[str] = field(default_factory=list)
    max_entry_id: int = 0  # the highest history entry number recorded for it


_IDS_PER_STATEMENT = 500  # well below SQLite's limit of bound parameters per statement


def apply(conn: sqlite3.Connection, writes: Iterable[Any], sealer: Sealer | None) -> None:
    """Fold queued checkpoint writes (in order) into the fewest statements."""
    # The writes themselves, turned into rows (joined, sealed) only for jobs that are still
    # unfinished at the end of the batch: most jobs start and end within one.
    specs: dict[str, Any] = {}
    finals: dict[str, Any] = {}
    tokens: dict[tuple[str, int], Any] = {}   # the last write per token: its row, or its delete
    done: set[str] = set()
    born: set[str] = set()  # top-level jobs whose first write (their spec) is in this batch
    # What each tree has pending, so that its end drops exactly that: scanning every pending
    # write at each end cost a batch of n ending jobs n² steps.
    pending_of: dict[str, list[tuple[dict[Any, Any], Any]]] = {}
    now = time.time()
    for write in writes:
        kind = write.kind
        if kind == "spec":
            pending, key = specs, write.job_id
            if write.job_id == write.top_job_id:
                born.add(write.job_id)
        elif kind == "final":
            pending, key = finals, write.job_id
        elif kind == "token" or kind == "token_done":
            pending, key = tokens, (write.job_id, write.token_id)
        elif kind == "done":  # the top-level job ended: its whole tree goes
            top = write.top_job_id
            done.add(top)
            # Its token rows go with one delete by top_job_id below, not one by one.
            for pending, key in pending_of.pop(top, ()):
                pending.pop(key, None)
            continue
        else:
            raise ValueError(f"unknown checkpoint write {kind!r}")
        pending[key] = write
        pending_of.setdefault(write.top_job_id, []).append((pending, key))
    # Statements per batch, not per job: a busy engine ends hundreds per batch. A tree whose
    # top-level job was born in this batch has no checkpoint or token row on the disk (its
    # sub-workflows start after it); its idempotency keys are written by the dataset store,
    # outside the batch, so those are deleted for every ended tree.
    _delete_by_top(conn, ("job_tokens", "job_checkpoints"), sorted(done - born))
    _delete_by_top(conn, ("dataset_append_keys",), sorted(done))
    if specs:
        conn.executemany("INSERT OR REPLACE INTO job_checkpoints (job_id, top_job_id, spec, "
                         "final, updated_at) VALUES (?, ?, ?, NULL, ?)",
                         [(w.job_id, w.top_job_id, w.row_blob(sealer), now) for w in specs.values()])
    if finals:
        conn.executemany("UPDATE job_checkpoints SET final = ?, updated_at = ? WHERE job_id = ?",
                         [(w.row_blob(sealer), now, w.job_id) for w in finals.values()])
    upserts = [w.row(sealer) for w in tokens.values() if w.kind == "token"]
    deletes = [key for key, w in tokens.items() if w.kind == "token_done"]
    if deletes:
        conn.executemany("DELETE FROM job_tokens WHERE job_id = ? AND token_id = ?", deletes)
    if upserts:
        conn.executemany("INSERT OR REPLACE INTO job_tokens (job_id, token_id, top_job_id, node_id, "
                         "edge_id, state, iteration, payload, wait, moves) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", upserts)


def _delete_by_top(conn: sqlite3.Connection, tables: tuple[str, ...], tops: list[str]) -> None:
    for start in range(0, len(tops), _IDS_PER_STATEMENT):
        chunk = tops[start:start + _IDS_PER_STATEMENT]
        marks = ",".join("?" * len(chunk))
        for table in tables:
            conn.execute(f"DELETE FROM {table} WHERE top_job_id IN ({marks})", chunk)


def resumable_tops(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(job_id, address, status) of every top-level job with a checkpoint: the unfinished
    (RUNNING, PAUSED) ones a start restores, and the FAILED-by-interruption ones that
    resume_job may continue."""
    return conn.execute(
        "SELECT j.job_id, j.address, j.status FROM jobs j JOIN job_checkpoints c "
        "ON c.job_id = j.job_id WHERE j.parent_job_id IS NULL ORDER BY j.start_time").fetchall()


def load_tree(conn: sqlite3.Connection, top_job_id: str, sealer: Sealer | None) -> dict[str, StoredJob]:
    """Every checkpointed job of one top-level job's tree (itself and its sub-workflows)."""
    jobs: dict[str, StoredJob] = {}
    for job_id, spec, final, status, start, error in conn.execute(
            "SELECT c.job_id, c.spec, c.final, j.status, j.start_time, j.error FROM job_checkpoints c "
            "JOIN jobs j ON j.job_id = c.job_id WHERE c.top_job_id = ?", (top_job_id,)):
        jobs[job_id] = StoredJob(job_id, top_job_id, _open(spec, sealer),
                                 _open(final, sealer) if final is not None else None,
                                 status, start, error)
    for job_id, token_id, node_id, edge_id, state, iteration, payload, wait, moves in conn.execute(
            "SELECT job_id, token_id, node_id, edge_id, state, iteration, payload, wait, moves "
            "FROM job_tokens WHERE top_job_id = ? ORDER BY job_id, token_id", (top_job_id,)):
        stored = jobs.get(job_id)
        if stored is not None:
            stored.tokens.append(StoredToken(token_id, node_id, edge_id, state, iteration,
                                             _open(payload, sealer), wait, moves))
    for stored in jobs.values():
        row = conn.execute("SELECT coalesce(max(run_seq), 0), count(*) FROM node_runs WHERE job_id = ?",
                           (stored.job_id,)).fetchone()
        stored.run_seq, stored.node_runs = int(row[0]), int(row[1])
        stored.crossing_seq = int(conn.execute(
            "SELECT coalesce(max(seq), 0) FROM connection_history WHERE job_id = ?",
            (stored.job_id,)).fetchone()[0])
        stored.max_entry_id = int(conn.execute(
            "SELECT coalesce(max(entry_id), 0) FROM history_entries WHERE job_id = ?",
            (stored.job_id,)).fetchone()[0])
        stored.child_ids = [r[0] for r in conn.execute(
            "SELECT job_id FROM jobs WHERE parent_job_id = ?", (stored.job_id,))]
    return jobs


def set_status(conn: sqlite3.Connection, job_ids: list[str], status: str, error: str | None,
               end_time: float | None) -> None:
    """A restored tree's status change made before any of it runs (an interruption found at
    start, or resume_job bringing a FAILED job back to RUNNING)."""
    conn.executemany("UPDATE jobs SET status = ?, error = ?, end_time = ? WHERE job_id = ?",
                     [(status, error, end_time, job_id) for job_id in job_ids])


def _open(blob: bytes | str, sealer: Sealer | None) -> bytes:
    raw = blob.encode("utf-8") if isinstance(blob, str) else bytes(blob)
    if raw[:1] in (b"{", b"["):
        return raw
    if sealer is None:
        raise ValueError("a sealed checkpoint and no key to open it")
    return sealer.decrypt(raw)
