"""Checkpoint writes folded per batch (engine/store/checkpoints.py `apply`), on a real SQLite
file: a job that starts and ends within one batch leaves no row and costs no sealing; a job's
end removes its whole tree's rows, from earlier batches too, and nothing of another job."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet

from engine.runtime.checkpoint import DoneWrite, FinalWrite, SpecWrite, Token, TokenWrite
from engine.runtime.payload import Snapshot, as_payload
from engine.store.checkpoints import apply
from engine.store.db import Database
from tests.durable.support import query


class CountingSealer:
    def __init__(self) -> None:
        self._fernet = Fernet(Fernet.generate_key())
        self.sealed = 0

    def encrypt(self, data: bytes) -> bytes:
        self.sealed += 1
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        return self._fernet.decrypt(token)


def snapshot(value: int) -> Snapshot:
    return Snapshot(as_payload({"n": value}))


def started(job_id: str, top: str) -> list[object]:
    """A job's spec and its first branch at node a, sealed (as for a job with secrets)."""
    token = Token(1, "a", 0, (snapshot(1),))
    return [SpecWrite(job_id, top, {"owner": "0xabc"}, b'{"nodes":[]}', snapshot(0), True),
            TokenWrite("token", job_id, top, token, True)]


def rows(db_path: Path) -> dict[str, list[tuple[str, ...]]]:
    return {"checkpoints": sorted(query(db_path, "SELECT job_id, top_job_id FROM job_checkpoints")),
            "tokens": sorted(query(db_path, "SELECT job_id, node_id FROM job_tokens"))}


async def test_a_job_started_and_ended_in_one_batch_writes_and_seals_nothing(tmp_path: Path) -> None:
    db = Database(tmp_path / "e.sqlite3")
    await db.open()
    sealer = CountingSealer()
    try:
        writes = started("j1", "j1") + [FinalWrite("j1", "j1", snapshot(2), True), DoneWrite("j1", "j1")]
        await db.transaction(apply, writes, sealer)
        assert rows(tmp_path / "e.sqlite3") == {"checkpoints": [], "tokens": []}
        assert sealer.sealed == 0
    finally:
        await db.close()


async def test_an_end_removes_its_tree_from_earlier_batches_and_nothing_else(tmp_path: Path) -> None:
    db = Database(tmp_path / "e.sqlite3")
    await db.open()
    sealer = CountingSealer()
    try:
        await db.transaction(apply, started("top", "top") + started("top/1", "top")
                             + started("other", "other"), sealer)
        assert sealer.sealed == 6
        assert rows(tmp_path / "e.sqlite3")["checkpoints"] == [("other", "other"), ("top", "top"),
                                                               ("top/1", "top")]
        # The top job ends; in the same batch, after its end, another job's branch moves on.
        moved = Token(1, "b", 0, (snapshot(3),))
        moved.moves = 1
        await db.transaction(apply, [DoneWrite("top", "top"),
                                     TokenWrite("token", "other", "other", moved, True)], sealer)
        assert rows(tmp_path / "e.sqlite3") == {"checkpoints": [("other", "other")],
                                                "tokens": [("other", "b")]}
    finally:
        await db.close()


async def test_many_ends_in_one_batch(tmp_path: Path) -> None:
    """More ended jobs than one statement's list of ids takes."""
    db = Database(tmp_path / "e.sqlite3")
    await db.open()
    try:
        ids = [f"job-{i}" for i in range(1200)]
        await db.transaction(apply, [w for job in ids for w in started(job, job)], None)
        await db.transaction(apply, [DoneWrite(job, job) for job in ids[1:]], None)
        assert rows(tmp_path / "e.sqlite3") == {"checkpoints": [("job-0", "job-0")],
                                                "tokens": [("job-0", "a")]}
    finally:
        await db.close()


async def test_a_tree_born_in_the_batch_costs_no_delete_but_its_append_keys_go(tmp_path: Path) -> None:
    """Nearly every automation run starts and ends within one batch: nothing of it is on the
    disk to delete, except the idempotency keys its dataset_append nodes wrote themselves."""
    db = Database(tmp_path / "e.sqlite3")
    await db.open()
    statements: list[str] = []

    def traced(conn, writes, sealer) -> None:
        conn.set_trace_callback(statements.append)
        try:
            apply(conn, writes, sealer)
        finally:
            conn.set_trace_callback(None)

    def append_key(conn, run_key: str, top: str) -> None:
        conn.execute("INSERT INTO dataset_append_keys (run_key, top_job_id, row_id) "
                     "VALUES (?, ?, 1)", (run_key, top))

    try:
        await db.transaction(apply, started("old", "old"), None)
        await db.transaction(append_key, "new:t:1", "new")
        await db.transaction(traced, started("new", "new") + started("new/1", "new")
                             + [DoneWrite("new", "new")], None)
        deletes = [s for s in statements if s.startswith("DELETE")]
        assert deletes == ["DELETE FROM dataset_append_keys WHERE top_job_id IN ('new')"]
        assert query(tmp_path / "e.sqlite3", "SELECT run_key FROM dataset_append_keys") == []
        statements.clear()
        await db.transaction(traced, started("newer", "newer") + [DoneWrite("newer", "newer"),
                                                                  DoneWrite("old", "old")], None)
        assert sorted(s for s in statements if s.startswith("DELETE")) == [
            "DELETE FROM dataset_append_keys WHERE top_job_id IN ('newer','old')",
            "DELETE FROM job_checkpoints WHERE top_job_id IN ('old')",
            "DELETE FROM job_tokens WHERE top_job_id IN ('old')"]
        assert rows(tmp_path / "e.sqlite3") == {"checkpoints": [], "tokens": []}
    finally:
        await db.close()
