"""What a checkpoint must hold besides the waiting node: a merge keeps the input that already
arrived, and a repeated run (global_loop_config) keeps its iteration; after a kill and a
restart neither starts over."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.client import EngineClient
from tests.conftest import Wallet
from tests.durable.support import POSIX_ONLY, expect_event, query, running, sign_in, wait_for_history, wait_status
from tests.runtime_support import edge, node, start, workflow

pytestmark = POSIX_ONLY


def node_runs(db_path: Path, job_id: str) -> list[str]:
    return [row[0] for row in query(db_path, "SELECT node_id FROM node_runs WHERE job_id = ? ORDER BY run_seq", job_id)]


async def test_a_merge_keeps_the_input_that_arrived_before_the_kill(start_engine, restart, owner: Wallet) -> None:
    wf = workflow([node("t", "manual_trigger"), node("a", "set_data", data={"a": 1}),
                   node("ask", "manual_approval", message="Other branch?", timeout_s=600),
                   node("b", "set_data", data={"b": 2}), node("m", "merge"),
                   node("after", "set_data", data={"after": True})],
                  [edge("t", "a", edge_id="ta"), edge("t", "ask", edge_id="tq"), edge("a", "m", edge_id="am"),
                   edge("ask", "b", "APPROVED", edge_id="qb"), edge("b", "m", edge_id="bm"),
                   edge("m", "after", edge_id="mx")])
    first = start_engine()
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, wf)
        asked = await expect_event(client, "MANUAL_APPROVAL_REQUESTED")
        await wait_for_history(client, job_id, "am")  # branch a is at the merge, which waits for b
        first.kill()
    second = restart(first)
    async with await EngineClient.connect(second.url, owner.key) as client:
        await sign_in(client)
        await client.request("manual_approval_response", approval_id=asked["approval_id"], decision="APPROVED")
        done = await wait_status(client, job_id)
        assert done["status"] == "SUCCEEDED", done
        data = done["result"]["data"]
        assert (data["a"], data["b"], data["after"]) == (1, 2, True), data
        merged = await client.request("request_connection_history", job_id=job_id, connection_id="mx")
        assert len(merged["history"]) == 1  # the merge ran once, with both inputs
    assert await asyncio.to_thread(second.terminate, 30) == 0  # the history is written out
    runs = node_runs(second.db_path, job_id)
    assert runs.count("a") == 1 and runs.count("m") == 1, runs  # branch a was not run again


async def test_a_repeated_run_goes_on_with_its_iteration_after_a_kill(start_engine, restart, owner: Wallet) -> None:
    wf = workflow([node("t", "manual_trigger"), node("d", "delay", seconds=1),
                   node("x", "set_data", data={"x": 1})],
                  [edge("t", "d"), edge("d", "x")])
    wf["global_loop_config"] = {"isEnabled": True, "iterations": 3, "isDelayEnabled": False,
                                "delayType": "static", "delayStatic": 0, "delayRandomMin": 0, "delayRandomMax": 0}
    first = start_engine()
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, wf)
        for _ in range(2):  # the second iteration's delay is running
            await expect_event(client, "NODE_EXECUTION_METRIC", where=running("d", job_id), what="for the delay")
        await asyncio.sleep(0.3)
        first.kill()
    second = restart(first)
    async with await EngineClient.connect(second.url, owner.key) as client:
        done = await wait_status(client, job_id)
        assert done["status"] == "SUCCEEDED", done
    assert await asyncio.to_thread(second.terminate, 30) == 0  # the history is written out
    runs = node_runs(second.db_path, job_id)
    # Three iterations in all: the first before the kill, the rest after it (not three more).
    assert runs.count("t") == 3 and runs.count("x") == 3, runs
