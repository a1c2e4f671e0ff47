"""What a job leaves behind: connection history (truncated when large), job and node-run
records, retention by count, age and bytes, and a database file that shrinks again."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from engine.app import Engine
from engine.client import EngineClient, EngineReplyError
from tests.conftest import Wallet
from tests.runtime_support import edge, final, node, run, workflow


def chain(**data) -> dict:
    return workflow([node("t", "manual_trigger"), node("s", "set_data", data=data),
                     node("l", "log_message", message="done")],
                    [edge("t", "s", edge_id="c1"), edge("s", "l", edge_id="c2")])


async def history(client: EngineClient, job_id: str, connection_id: str) -> list[dict]:
    reply = await client.request("request_connection_history", job_id=job_id, connection_id=connection_id)
    assert reply["job_id"] == job_id and reply["connection_id"] == connection_id
    return reply["history"]


async def test_connection_history_after_the_job(client: EngineClient) -> None:
    job_id, events = await run(client, chain(city="Oslo"), initial_payload={"start": True})
    assert final(events)["status"] == "SUCCEEDED"
    first = await history(client, job_id, "c1")
    second = await history(client, job_id, "c2")
    assert [h["connection_id"] for h in first] == ["c1"] and len(second) == 1
    assert first[0]["payload"]["data"] == {"start": True}
    assert second[0]["payload"]["data"] == {"start": True, "city": "Oslo"}
    assert [h["node_id"] for h in second[0]["payload"]["history"]] == ["t", "s"]
    assert first[0]["seq"] < second[0]["seq"] and first[0]["timestamp"] <= second[0]["timestamp"]
    assert await history(client, job_id, "no-such-edge") == []


async def test_a_loop_records_every_crossing_oldest_first(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger"), node("a", "set_data", data={"k": 1})],
                  [edge("t", "a", edge_id="e")])
    wf["global_loop_config"] = {"isEnabled": True, "iterations": 3}
    job_id, _ = await run(client, wf)
    items = await history(client, job_id, "e")
    assert len(items) == 3 and [i["seq"] for i in items] == sorted(i["seq"] for i in items)


async def test_large_payloads_are_kept_as_a_preview_with_their_size(client: EngineClient) -> None:
    await client.request("save_settings", settings={"history_payload_preview_bytes": 1000})
    job_id, events = await run(client, chain(big="x" * 50_000))
    item = (await history(client, job_id, "c2"))[0]
    assert item["truncated"] is True and item["size"] > 50_000
    assert item["payload"]["truncated"] is True and len(item["payload"]["preview"]) <= 1000
    assert item["payload"]["preview"].startswith('{"data":')
    assert final(events)["result"]["truncated"] is True  # the status frame stays small too


async def test_history_is_private_to_the_jobs_owner(make_engine, owner: Wallet, stranger: Wallet) -> None:
    engine = await make_engine(owners=(owner.address, stranger.address))
    async with await EngineClient.connect(engine.url, owner.key) as mine, \
            await EngineClient.connect(engine.url, stranger.key) as theirs:
        job_id, _ = await run(mine, chain(a=1))
        with pytest.raises(EngineReplyError) as caught:
            await theirs.request("request_connection_history", job_id=job_id, connection_id="c1")
        assert caught.value.code == "not_found"


def _rows(db_file: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db_file)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_jobs_and_node_runs_are_recorded(engine: Engine, client: EngineClient) -> None:
    ok, _ = await run(client, chain(a=1))
    bad, _ = await run(client, workflow([node("x", "stop_and_error", message="nope")], []))
    db_file = engine.config.data_dir / "engine.sqlite3"
    jobs = dict(_rows(db_file, "SELECT job_id, status FROM jobs"))
    assert jobs == {ok: "SUCCEEDED", bad: "FAILED"}
    runs = _rows(db_file, f"SELECT node_id, status, error FROM node_runs WHERE job_id = '{ok}' ORDER BY run_seq")
    assert runs == [("t", "SUCCESS", None), ("s", "SUCCESS", None), ("l", "SUCCESS", None)]
    assert _rows(db_file, f"SELECT node_id, status, error FROM node_runs WHERE job_id = '{bad}'") == [("x", "ERROR", "nope")]
    assert _rows(db_file, f"SELECT error FROM jobs WHERE job_id = '{bad}'")[0][0] == "Node 'x' (stop_and_error) failed: nope"
    # A node and a job that outlive one history batch: recorded running, then updated.
    slow, _ = await run(client, workflow([node("d", "delay", seconds=0.5)], []))
    (status, start, end, error), = _rows(db_file, f"SELECT status, start_time, end_time, error FROM node_runs WHERE job_id = '{slow}'")
    assert status == "SUCCESS" and end - start >= 0.5 and error is None
    (status, start, end), = _rows(db_file, f"SELECT status, start_time, end_time FROM jobs WHERE job_id = '{slow}'")
    assert status == "SUCCEEDED" and end - start >= 0.5


async def test_retention_by_count_and_age(engine: Engine, client: EngineClient) -> None:
    await client.request("save_settings", settings={"history_max_jobs": 2})
    job_ids = [(await run(client, chain(i=i)))[0] for i in range(4)]
    result = await engine.runtime.retention.enforce_now()
    assert result.jobs_deleted == 2
    for job_id in job_ids[:2]:
        with pytest.raises(EngineReplyError):
            await client.request("request_connection_history", job_id=job_id, connection_id="c1")
    for job_id in job_ids[2:]:
        assert len(await history(client, job_id, "c1")) == 1
    # By age: with 0 days, every finished job is too old.
    await client.request("save_settings", settings={"history_retention_days": 0})
    assert (await engine.runtime.retention.enforce_now()).jobs_deleted == 2


async def test_retention_runs_by_itself_after_jobs(engine: Engine, client: EngineClient) -> None:
    await client.request("save_settings", settings={"history_max_jobs": 1})
    engine.runtime.retention.min_interval_s = 0
    first, _ = await run(client, chain(i=1))
    second, _ = await run(client, chain(i=2))
    for _ in range(200):  # retention runs in the background after the job ends
        reply = await client.request("request_job_status", job_id=first, check=False)
        if reply.get("code") == "not_found":
            break
        await asyncio.sleep(0.02)
    assert reply.get("code") == "not_found"
    assert (await client.request("request_job_status", job_id=second))["status_data"]["status"] == "SUCCEEDED"


async def test_retention_by_bytes_and_the_file_shrinks(engine: Engine, client: EngineClient) -> None:
    await client.request("save_settings", settings={"history_payload_preview_bytes": 2_000_000})
    big = "y" * 600_000
    job_ids = [(await run(client, chain(blob=big, n=i)))[0] for i in range(4)]
    db_file = engine.config.data_dir / "engine.sqlite3"
    await engine.db.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
    before = db_file.stat().st_size
    assert before > 4 * 600_000
    # Each job stores ~1.2 MB (two crossings); keep at most ~3 MB: the oldest two go.
    await client.request("save_settings", settings={"history_payload_preview_bytes": 2_000_000,
                                                    "history_max_bytes": 3_000_000})
    result = await engine.runtime.retention.enforce_now()
    assert result.jobs_deleted == 2 and result.pages_freed > 0
    after = db_file.stat().st_size
    assert after < before - 2 * 1_000_000
    assert len(await history(client, job_ids[-1], "c2")) == 1
    with pytest.raises(EngineReplyError):
        await history(client, job_ids[0], "c2")


async def test_a_long_chain_stores_each_history_entry_once(engine: Engine, client: EngineClient) -> None:
    """A crossing records its payload's history by entry numbers: a 150-node chain writes 150
    entries, not 100 per crossing, and every crossing still reads back whole (the last 100)."""
    nodes = [node(f"n{i}", "set_data", data={"step": i}) for i in range(150)]
    edges = [edge(f"n{i}", f"n{i + 1}", edge_id=f"e{i}") for i in range(149)]
    job_id, events = await run(client, workflow(nodes, edges))
    assert final(events)["status"] == "SUCCEEDED"
    late = (await history(client, job_id, "e140"))[0]["payload"]
    assert late["data"]["step"] == 140
    assert [h["node_id"] for h in late["history"]] == [f"n{i}" for i in range(41, 141)]
    assert (await history(client, job_id, "e0"))[0]["payload"]["history"][0]["node_id"] == "n0"
    db_file = engine.config.data_dir / "engine.sqlite3"
    assert _rows(db_file, f"SELECT count(*) FROM history_entries WHERE job_id = '{job_id}'") == [(149,)]
    (stored,), = _rows(db_file, f"SELECT max(length(payload) + length(history_refs)) FROM connection_history WHERE job_id = '{job_id}'")
    assert stored < 1500  # the payload and 100 entry numbers, not 100 entries
