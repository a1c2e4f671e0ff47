"""A job waiting for a manual approval survives a SIGKILL of the engine: after the restart the
approval is pending again with the same approval_id, a signed client answers it, and the job
ends with the data of the nodes before and after the approval."""

from __future__ import annotations

import asyncio
import time

from engine.client import EngineClient
from tests.conftest import Wallet
from tests.durable.support import (POSIX_ONLY, approval_flow, expect_event, sign_in, wait_for_history,
                                   wait_status)
from tests.runtime_support import collect, start

pytestmark = POSIX_ONLY

DOWN_S = 2.0


async def test_an_approval_pending_at_a_kill_is_pending_again_and_answered_after_the_restart(
        start_engine, restart, owner: Wallet, stranger: Wallet) -> None:
    first = start_engine(owners=[owner, stranger])
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, approval_flow(timeout_s=600), preset_name="Deploy")
        asked = await expect_event(client, "MANUAL_APPROVAL_REQUESTED", what="before the kill")
        before = await wait_for_history(client, job_id, "c2")
        first.kill()
        await asyncio.wait_for(client.closed.wait(), 30)
    await asyncio.sleep(DOWN_S)  # down for a while, so what is left of the wait is visibly less

    second = restart(first)
    async with await EngineClient.connect(second.url, owner.key) as client:
        await sign_in(client)
        # The owner's connection hears that the job is going on.
        told = await expect_event(client, "workflow_status_update", where=lambda e: e["job_id"] == job_id,
                                  what="for the restored job")
        assert told["status_data"]["status"] == "RUNNING", told
        again = await expect_event(client, "MANUAL_APPROVAL_REQUESTED", where=lambda e: e["job_id"] == job_id,
                                   what="re-sent after the restart")
        assert again["approval_id"] == asked["approval_id"]
        assert (again["node_id"], again["message"]) == ("ask", "Go on?")
        assert abs(again["requested_at"] - asked["requested_at"]) < 0.01  # the original time, not the restart's
        assert 0 < again["timeout_s"] <= 600 - DOWN_S + 1  # what is left of it, not a fresh 600 s
        status = await client.request("request_job_status", job_id=job_id)
        assert status["status_data"]["status"] == "RUNNING"
        assert status["status_data"]["preset_name"] == "Deploy"

    # Another owner of the same engine is not asked, and cannot answer.
    async with await EngineClient.connect(second.url, stranger.key) as other:
        await sign_in(other)  # its reply comes after what sign-in sends
        assert not [e for e in other.pending_events() if e.get("type") == "MANUAL_APPROVAL_REQUESTED"]
        refused = await other.request("manual_approval_response", approval_id=asked["approval_id"],
                                      decision="REJECTED", check=False)
        assert refused.get("code") == "not_found", refused

    # Answered from another signed connection, as from a second browser tab.
    async with await EngineClient.connect(second.url, owner.key) as answering:
        reply = await answering.request("manual_approval_response", approval_id=asked["approval_id"],
                                        decision="APPROVED", comment="after the restart")
        assert reply["decision"] == "APPROVED"
        events = await collect(answering, job_id)
        updates = [e["status_data"] for e in events if e["type"] == "workflow_status_update"]
        # Woken by the answer, it says it resumed; then it ends.
        assert any(u["status"] == "RUNNING" and u.get("resumed") is True for u in updates), updates
        done = await wait_status(answering, job_id)
        assert done["status"] == "SUCCEEDED", done
        data = done["result"]["data"]
        assert data["before"] == 1 and data["after"] == 2 and "rejected" not in data
        assert data["approval"]["comment"] == "after the restart"
        # History written before the kill is still there, and the rest after it.
        history = await answering.request("request_connection_history", job_id=job_id, connection_id="c2")
        assert history["history"] == before
        after = await wait_for_history(answering, job_id, "c3")
        assert after[-1]["payload"]["data"]["before"] == 1
        assert (await answering.request("manual_approval_response", approval_id=asked["approval_id"],
                                        decision="REJECTED", check=False))["code"] == "not_found"
    assert second.terminate() == 0


async def test_an_approval_whose_deadline_passed_while_the_engine_was_down_takes_its_default(
        start_engine, restart, owner: Wallet) -> None:
    first = start_engine()
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, approval_flow(timeout_s=2))
        asked = await expect_event(client, "MANUAL_APPROVAL_REQUESTED", what="before the kill")
        first.kill()  # right after the announcement: an announced approval is already on disk
    # Down for longer than the approval had left.
    await asyncio.sleep(max(0.0, asked["requested_at"] + 2.5 - time.time()))
    second = restart(first)
    async with await EngineClient.connect(second.url, owner.key) as client:
        done = await wait_status(client, job_id)
        assert done["status"] == "SUCCEEDED", done
        data = done["result"]["data"]
        assert data["before"] == 1 and data["rejected"] is True and "after" not in data  # default: REJECTED
        assert (await client.request("manual_approval_response", approval_id=asked["approval_id"],
                                     decision="APPROVED", check=False))["code"] == "not_found"
