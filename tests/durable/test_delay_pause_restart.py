"""Delays and pauses survive the engine: a delay killed midway ends at its original wall-clock
time (not started again from zero), a paused job is still paused after a restart and resumes on
request, and a job released from memory while it waits wakes and says so."""

from __future__ import annotations

import asyncio
import time

from engine.app import Engine
from engine.client import EngineClient
from tests.conftest import Wallet
from tests.durable.support import (POSIX_ONLY, approval_flow, delay_flow, expect_event, running,
                                   wait_for_history, wait_status)
from tests.runtime_support import collect, final, node, run, start, workflow

pytestmark = POSIX_ONLY

DELAY_S = 6.0


async def test_a_delay_killed_midway_ends_at_its_original_time(start_engine, restart, owner: Wallet) -> None:
    # Released from memory after 1 s: the kill finds the delay only in the database.
    first = start_engine(args=["--suspend-after-s", "1"])
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, delay_flow(DELAY_S))
        await expect_event(client, "NODE_EXECUTION_METRIC", where=running("d"), what="for the delay")
        deadline = time.time() + DELAY_S  # no earlier than the engine's own deadline
        await asyncio.sleep(DELAY_S / 2)  # midway
        first.kill()
    restarted_at = time.time()
    second = restart(first)
    async with await EngineClient.connect(second.url, owner.key) as client:
        done = await wait_status(client, job_id, timeout=DELAY_S + 20)
        assert done["status"] == "SUCCEEDED", done
        assert done["result"]["data"] == {"before": 1, "after": 2}
    # A delay started again from zero would end DELAY_S after the restart, at the earliest;
    # the original deadline is at least DELAY_S / 2 before that. Judge by the midpoint.
    from_zero = restarted_at + DELAY_S
    assert done["end_time"] >= deadline - 1.0, "the delay ended before its time"
    assert done["end_time"] < (deadline + from_zero) / 2, \
        f"ended {done['end_time'] - deadline:.1f} s after the original deadline: started again after the restart?"


async def test_a_delay_whose_end_passed_while_the_engine_was_down_ends_at_once(
        start_engine, restart, owner: Wallet) -> None:
    first = start_engine()
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, delay_flow(2))
        await expect_event(client, "NODE_EXECUTION_METRIC", where=running("d"), what="for the delay")
        await wait_for_history(client, job_id, "c2")
        first.kill()
    await asyncio.sleep(2.5)
    second = restart(first)
    async with await EngineClient.connect(second.url, owner.key) as client:
        done = await wait_status(client, job_id, timeout=10)
        assert done["status"] == "SUCCEEDED", done
        assert done["result"]["data"] == {"before": 1, "after": 2}


async def test_a_paused_job_stays_paused_across_a_kill_and_resumes_on_request(
        start_engine, restart, owner: Wallet) -> None:
    first = start_engine()
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, delay_flow(0.5))
        await expect_event(client, "NODE_EXECUTION_METRIC", where=running("d"), what="for the delay")
        assert (await client.request("pause_workflow", job_id=job_id))["job_ids"] == [job_id]
        paused = await collect(client, job_id, until=("PAUSED",))
        assert final(paused)["status"] == "PAUSED"
        await wait_for_history(client, job_id, "c2")
        await run(client, workflow([node("x", "set_data", data={})], []))  # one more batch on disk
        first.kill()
    second = restart(first)
    async with await EngineClient.connect(second.url, owner.key) as client:
        status = await client.request("request_job_status", job_id=job_id)
        assert status["status_data"]["status"] == "PAUSED", status
        # It does not go on by itself: another job runs to the end meanwhile, this one stays.
        _, other = await run(client, workflow([node("x", "set_data", data={"y": 1})], []))
        assert final(other)["status"] == "SUCCEEDED"
        assert (await client.request("request_job_status", job_id=job_id))["status_data"]["status"] == "PAUSED"
        assert (await client.request("resume_workflow", job_id=job_id))["job_ids"] == [job_id]
        done = await wait_status(client, job_id)
        assert done["status"] == "SUCCEEDED", done
        assert done["result"]["data"] == {"before": 1, "after": 2}


async def test_a_released_delay_wakes_at_its_end_and_says_it_resumed(make_engine, owner: Wallet) -> None:
    engine: Engine = await make_engine(suspend_after_s=0.3)
    async with await EngineClient.connect(engine.url, owner.key) as client:
        job_id = await start(client, delay_flow(2))
        await expect_event(client, "NODE_EXECUTION_METRIC", where=running("d"), what="for the delay")
        await _released(engine, 1)
        status = await client.request("request_job_status", job_id=job_id)
        assert status["status_data"]["status"] == "RUNNING"  # answered for a released job too
        events = await collect(client, job_id)
        assert final(events)["status"] == "SUCCEEDED"
        assert final(events)["result"]["data"] == {"before": 1, "after": 2}
        updates = [e["status_data"] for e in events if e["type"] == "workflow_status_update"]
        assert any(u["status"] == "RUNNING" and u.get("resumed") is True for u in updates), updates
    assert engine.runtime.released_job_count() == 0


async def test_a_released_approval_is_answered_and_the_job_goes_on(make_engine, owner: Wallet) -> None:
    engine: Engine = await make_engine(suspend_after_s=0.3)
    async with await EngineClient.connect(engine.url, owner.key) as client:
        job_id = await start(client, approval_flow(timeout_s=600))
        asked = await expect_event(client, "MANUAL_APPROVAL_REQUESTED")
        await _released(engine, 1)
        assert [r.approval_id for r in engine.approvals.pending()] == [asked["approval_id"]]
        await client.request("manual_approval_response", approval_id=asked["approval_id"], decision="APPROVED")
        done = await wait_status(client, job_id)
        assert done["status"] == "SUCCEEDED", done
        assert done["result"]["data"]["before"] == 1 and done["result"]["data"]["after"] == 2
    assert engine.runtime.released_job_count() == 0


async def _released(engine: Engine, count: int, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while engine.runtime.released_job_count() != count:
        if loop.time() > end:
            raise AssertionError(f"{engine.runtime.released_job_count()} job(s) released, not {count}")
        await asyncio.sleep(0.05)
