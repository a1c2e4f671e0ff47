"""An automation's `keep_history`: with `failed_or_stopped`, a run that succeeds leaves no record
(its sub-workflows neither), whether it ended within one history batch or across several;
failed runs are kept in full, and the default keeps every run. Real webhook requests, real
SQLite rows counted in the engine's own database."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import aiohttp
import pytest

from engine.client import EngineReplyError
from tests.runtime_support import edge, node, workflow
from tests.triggers_support import next_run_end, save, triggered, triggers, wait_for

TABLES = ("jobs", "node_runs", "connection_history", "history_entries", "job_tokens", "job_checkpoints")


@pytest.fixture
async def engine(make_engine):
    return await make_engine(webhook_port=0)


async def rows_of(engine: Any, job_id: str) -> dict[str, int]:
    """Rows each history table holds for `job_id` and its sub-workflows."""
    def count(conn: Any) -> dict[str, int]:
        return {table: conn.execute(f"SELECT count(*) FROM {table} WHERE job_id = ? OR job_id LIKE ?",
                                    (job_id, job_id + "/%")).fetchone()[0] for table in TABLES}
    return await engine.db.run(count)


async def url_of(client: Any, name: str) -> str:
    return next(r["webhook_url"] for r in await triggers(client) if r["preset_name"] == name)


async def post(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"n": 1}) as response:
            return response.status, await response.json()


async def test_a_succeeded_run_leaves_no_record_a_failed_one_is_kept(engine, client) -> None:
    await save(client, "Lean", triggered("t", "webhook_trigger", respond="when_finished",
                                         keep_history="failed_or_stopped"))
    failing = workflow([node("t", "webhook_trigger", respond="when_finished", keep_history="failed_or_stopped"),
                        node("x", "stop_and_error", message="broken on purpose")], [edge("t", "x")])
    await save(client, "Lean fails", failing)
    status, data = await post(await url_of(client, "Lean"))
    assert status == 200 and data["marked"] is True
    end = await next_run_end(client, kind="webhook")  # still announced to the owner, with its data
    assert end["status_data"]["status"] == "SUCCEEDED"
    assert end["status_data"]["result"]["data"]["marked"] is True
    assert await rows_of(engine, end["job_id"]) == dict.fromkeys(TABLES, 0)
    with pytest.raises(EngineReplyError):
        await client.request("request_job_status", job_id=end["job_id"])
    # The rule still says how its last run went.
    rule = next(r for r in await triggers(client) if r["preset_name"] == "Lean")
    assert rule["last_run"]["job_id"] == end["job_id"] and rule["last_run"]["status"] == "SUCCEEDED"

    status, body = await post(await url_of(client, "Lean fails"))
    assert status == 500
    failed = await next_run_end(client, kind="webhook")
    assert failed["job_id"] == body["job_id"] and failed["status_data"]["status"] == "FAILED"
    kept = await rows_of(engine, failed["job_id"])
    assert kept["jobs"] == 1 and kept["node_runs"] == 2 and kept["connection_history"] == 1
    record = await client.request("request_job_status", job_id=failed["job_id"])
    assert record["status_data"]["status"] == "FAILED"
    assert record["status_data"]["started_by"]["keep"] == "failed_or_stopped"


async def test_the_default_keeps_every_run(engine, client) -> None:
    await save(client, "Kept", triggered("t", "webhook_trigger", respond="when_finished"))
    status, _ = await post(await url_of(client, "Kept"))
    assert status == 200
    end = await next_run_end(client, kind="webhook")
    rows = await rows_of(engine, end["job_id"])
    assert rows["jobs"] == 1 and rows["node_runs"] == 2 and rows["connection_history"] == 1
    assert "keep" not in end["status_data"]["started_by"]


async def test_a_run_recorded_before_it_succeeded_is_deleted_with_its_sub_workflow(engine, client) -> None:
    """A run that outlives several history batches (its start and its nodes are on disk while
    it waits) is deleted once it succeeds, its sub-workflow job and checkpoint with it."""
    await save(client, "Child", workflow([node("c", "set_data", data={"child": True})], []))
    slow = workflow([node("t", "webhook_trigger", keep_history="failed_or_stopped"),
                     node("s", "sub_workflow", preset_name="Child"),
                     node("d", "delay", seconds=1.0)],
                    [edge("t", "s"), edge("s", "d")])
    await save(client, "Slow lean", slow)
    status, answer = await post(await url_of(client, "Slow lean"))
    assert status == 202
    job_id = answer["job_id"]
    # While it waits, its record is there like any run's (a crash now keeps it, and it resumes).
    during = await wait_for(lambda: _recorded_with_child(engine, job_id), timeout=5)
    assert during["jobs"] == 2 and during["job_checkpoints"] >= 1
    end = await next_run_end(client, kind="webhook", job_id=job_id)
    assert end["status_data"]["status"] == "SUCCEEDED"
    assert await rows_of(engine, job_id) == dict.fromkeys(TABLES, 0)


async def _recorded_with_child(engine: Any, job_id: str) -> dict[str, int] | None:
    rows = await rows_of(engine, job_id)
    return rows if rows["jobs"] == 2 and rows["job_checkpoints"] else None


async def test_many_lean_runs_in_parallel_leave_nothing_and_free_their_ids(engine, client) -> None:
    await save(client, "Busy", triggered("t", "webhook_trigger", respond="when_finished",
                                         overlap="parallel", max_parallel="32",
                                         keep_history="failed_or_stopped"))
    url = await url_of(client, "Busy")
    before = len(engine.runtime._used_ids)
    # 16 connections at most: never more runs at once than the rule's 32 (no 429)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as http:
        async def one(i: int) -> int:
            async with http.post(url, json={"n": i}) as response:
                return response.status
        statuses = await asyncio.gather(*(one(i) for i in range(60)))
    assert statuses == [200] * 60
    await engine.runtime.recorder.flush()  # everything the runs queued is committed
    counts = await engine.db.run(lambda c: {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                            for t in TABLES})
    assert counts == dict.fromkeys(TABLES, 0)
    # The runtime does not keep the ids of records that are gone (memory of a busy webhook).
    assert len(engine.runtime._used_ids) == before


async def test_a_bad_keep_history_is_refused(engine, client) -> None:
    with pytest.raises(EngineReplyError) as refused:
        await save(client, "Bad", triggered("t", "schedule_trigger", schedule_type="interval",
                                            interval_value="5", interval_unit="seconds",
                                            keep_history="never"))
    assert refused.value.frame["field"] == "keep_history"
    assert "failed_or_stopped" in refused.value.frame["error"]
    assert await triggers(client) == []


async def test_a_lean_run_is_announced_without_waiting_for_a_commit(engine, client) -> None:
    """A lean run none of whose writes reached the writer says SUCCEEDED at once; a kept run
    says it only once its record is committed. The database is held by another connection
    (a real write lock on the real file) while both run."""
    await save(client, "Kept", triggered("t", "webhook_trigger", respond="immediately"))
    await save(client, "Lean", triggered("t", "webhook_trigger", respond="when_finished",
                                         keep_history="failed_or_stopped"))
    recorder = engine.runtime.recorder
    await recorder.flush()
    blocker = sqlite3.connect(engine.db.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the engine's writer now waits (busy timeout 5 s)
    try:
        status, body = await post(await url_of(client, "Kept"))
        assert status == 202
        kept = next(job for job in engine.runtime.jobs.values() if job.wire_id == body["job_id"])
        # The kept run's batch is with the writer, which is stuck: nothing new reaches it.
        await wait_for(lambda: not recorder.queued(kept.create_op) and kept.status.is_final(), timeout=2.0)
        status, data = await post(await url_of(client, "Lean"))
        assert status == 200 and data["marked"] is True
        first = await next_run_end(client, kind="webhook", timeout=2.0)
        assert first["job_id"] != body["job_id"], "the lean run waited for the stuck commit"
        assert first["status_data"]["status"] == "SUCCEEDED"
        assert kept.job_id in engine.runtime.jobs  # still waiting for its commit
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    second = await next_run_end(client, kind="webhook")
    assert second["job_id"] == body["job_id"] and second["status_data"]["status"] == "SUCCEEDED"
    await recorder.flush()
    assert await rows_of(engine, first["job_id"]) == dict.fromkeys(TABLES, 0)
    assert (await rows_of(engine, body["job_id"]))["jobs"] == 1
