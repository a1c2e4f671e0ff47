"""Durable jobs inside one test process: an engine stopped gracefully (its jobs suspended) and a
new engine on the same data folder that restores them; jobs released from memory while they
wait and woken by an answer, a delay's end or a resume. The real-process SIGKILL cases are in
tests/durable/."""

from __future__ import annotations

import asyncio
import time

from engine.client import EngineClient
from tests.conftest import Wallet
from tests.runtime_support import collect, edge, final, node, start, workflow


def approval_flow(timeout_s: float = 600) -> dict:
    return workflow([node("t", "manual_trigger"), node("before", "set_data", data={"before": 1}),
                     node("ask", "manual_approval", "Ask", message="Go on?", timeout_s=timeout_s),
                     node("after", "set_data", data={"after": 2}),
                     node("no", "set_data", data={"after": "rejected"})],
                    [edge("t", "before"), edge("before", "ask"), edge("ask", "after", "APPROVED"),
                     edge("ask", "no", "REJECTED")])


def delay_flow(seconds: float) -> dict:
    return workflow([node("t", "manual_trigger"), node("before", "set_data", data={"before": 1}),
                     node("wait", "delay", seconds=seconds), node("after", "set_data", data={"after": 2})],
                    [edge("t", "before"), edge("before", "wait"), edge("wait", "after")])


async def signed_in(url: str, owner: Wallet) -> EngineClient:
    """A connection that has sent its first signed frame (which signs it in)."""
    client = await EngineClient.connect(url, owner.key)
    await client.request("request_settings")
    return client


async def status_of(client: EngineClient, job_id: str) -> dict:
    reply = await client.request("request_job_status", job_id=job_id)
    return reply["status_data"]


async def wait_status(client: EngineClient, job_id: str, wanted: set[str], timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = await status_of(client, job_id)
        if data["status"] in wanted:
            return data
        assert time.monotonic() < deadline, data
        await asyncio.sleep(0.05)


async def released(engine, job_id: str) -> None:
    deadline = time.monotonic() + 10
    while job_id not in engine.runtime.dormant:
        assert time.monotonic() < deadline, "the job was not released from memory"
        await asyncio.sleep(0.05)


async def test_an_approval_survives_a_graceful_restart(make_engine, owner: Wallet) -> None:
    first = await make_engine()
    client = await signed_in(first.url, owner)
    job_id = await start(client, approval_flow())
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    await client.close()
    await first.stop()  # graceful: the job is kept

    second = await make_engine()
    assert [r.approval_id for r in second.runtime.approvals.pending()] == [asked["approval_id"]]
    client = await signed_in(second.url, owner)
    again = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    assert again["approval_id"] == asked["approval_id"]
    assert again["requested_at"] == asked["requested_at"] and again["timeout_s"] <= asked["timeout_s"]
    await client.request("manual_approval_response", approval_id=asked["approval_id"], decision="APPROVED")
    data = await wait_status(client, job_id, {"SUCCEEDED", "FAILED", "STOPPED"})
    assert data["status"] == "SUCCEEDED", data
    assert data["result"]["data"]["before"] == 1 and data["result"]["data"]["after"] == 2
    assert data["result"]["data"]["approval"]["approval_id"] == asked["approval_id"]
    await client.close()


async def test_a_waiting_job_is_released_from_memory_and_woken_by_the_answer(make_engine, owner: Wallet) -> None:
    engine = await make_engine(suspend_after_s=0.2)
    client = await signed_in(engine.url, owner)
    job_id = await start(client, approval_flow())
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    await released(engine, job_id)
    assert job_id not in engine.runtime.jobs
    assert (await status_of(client, job_id))["status"] == "RUNNING"
    await client.request("manual_approval_response", approval_id=asked["approval_id"], decision="REJECTED")
    events = await collect(client, job_id)
    assert final(events)["status"] == "SUCCEEDED"
    assert final(events)["result"]["data"]["after"] == "rejected"
    resumed = [e for e in events if e.get("type") == "workflow_status_update"
               and e["status_data"].get("resumed")]
    assert resumed and resumed[0]["status_data"]["status"] == "RUNNING"
    await client.close()


async def test_a_delay_ends_at_its_original_time_after_a_restart(make_engine, owner: Wallet) -> None:
    first = await make_engine()
    client = await signed_in(first.url, owner)
    began = time.time()
    job_id = await start(client, delay_flow(2.0))
    await asyncio.sleep(0.5)
    await client.close()
    await first.stop()
    await asyncio.sleep(0.5)
    second = await make_engine()
    client = await signed_in(second.url, owner)
    data = await wait_status(client, job_id, {"SUCCEEDED", "FAILED", "STOPPED"})
    assert data["status"] == "SUCCEEDED", data
    assert data["result"]["data"] == {"before": 1, "after": 2}
    # It ended at its original end (about 2 s after the start), not 2 s after the restart.
    assert data["end_time"] - began < 2.0 + 1.0 + 0.9
    await client.close()


async def test_a_paused_job_stays_paused_across_a_restart(make_engine, owner: Wallet) -> None:
    first = await make_engine()
    client = await signed_in(first.url, owner)
    job_id = await start(client, delay_flow(0.5))
    await client.request("pause_workflow", job_id=job_id)
    await asyncio.sleep(0.8)
    await client.close()
    await first.stop()
    second = await make_engine()
    client = await signed_in(second.url, owner)
    assert (await status_of(client, job_id))["status"] == "PAUSED"
    await client.request("resume_workflow", job_id=job_id)
    data = await wait_status(client, job_id, {"SUCCEEDED", "FAILED", "STOPPED"})
    assert data["status"] == "SUCCEEDED", data
    assert data["result"]["data"] == {"before": 1, "after": 2}
    await client.close()


async def test_a_sub_workflow_waiting_for_an_approval_survives_a_restart(make_engine, owner: Wallet) -> None:
    first = await make_engine()
    client = await signed_in(first.url, owner)
    child = workflow([node("ct", "manual_trigger"), node("ask", "manual_approval", message="child?", timeout_s=600),
                      node("cdone", "set_data", data={"child": "done"})],
                     [edge("ct", "ask"), edge("ask", "cdone", "APPROVED")])
    await client.request("save_preset", name="child-flow", workflow_data=child,
                         signature=client.signer.sign_workflow(child))
    parent = workflow([node("t", "manual_trigger"), node("p1", "set_data", data={"parent": 1}),
                       node("sub", "sub_workflow", preset_name="child-flow"),
                       node("p2", "set_data", data={"parent_after": 2})],
                      [edge("t", "p1"), edge("p1", "sub"), edge("sub", "p2")])
    job_id = await start(client, parent)
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    await client.close()
    await first.stop()
    second = await make_engine()
    client = await signed_in(second.url, owner)
    again = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    assert again["approval_id"] == asked["approval_id"]
    await client.request("manual_approval_response", approval_id=asked["approval_id"], decision="APPROVED")
    data = await wait_status(client, job_id, {"SUCCEEDED", "FAILED", "STOPPED"})
    assert data["status"] == "SUCCEEDED", data
    assert data["result"]["data"]["child"] == "done"
    assert data["result"]["data"]["parent"] == 1 and data["result"]["data"]["parent_after"] == 2
    await client.close()


async def test_stop_without_suspend_still_stops_jobs(make_engine, owner: Wallet) -> None:
    first = await make_engine()
    client = await signed_in(first.url, owner)
    job_id = await start(client, approval_flow())
    await client.next_event("MANUAL_APPROVAL_REQUESTED")
    await client.close()
    await first.stop(suspend=False)
    second = await make_engine()
    client = await signed_in(second.url, owner)
    assert (await status_of(client, job_id))["status"] == "STOPPED"
    assert second.runtime.approvals.pending() == []
    await client.close()


async def test_a_checkpoint_keeps_secrets_encrypted_and_restores_their_values(
        make_engine, owner: Wallet, data_dir, shared_dir) -> None:
    secret = "s3cr3t-" + "q" * 20
    first = await make_engine()
    client = await signed_in(first.url, owner)
    await client.request("update_variable", name="API_KEY",
                         data={"value": secret, "is_secret": True, "is_enabled": True, "mode": "single"})
    target = shared_dir / "token.txt"
    wf = workflow([node("t", "manual_trigger"), node("s", "set_data", data={"token": "{{vars.API_KEY}}"}),
                   node("ask", "manual_approval", message="write it?", timeout_s=600),
                   node("w", "write_file", path=str(target), content="{{data.token}}")],
                  [edge("t", "s"), edge("s", "ask"), edge("ask", "w", "APPROVED")])
    job_id = await start(client, wf)
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    await client.close()
    await first.stop()
    raw = b"".join(p.read_bytes() for p in data_dir.iterdir() if p.name.startswith("engine.sqlite3"))
    assert secret.encode() not in raw  # the checkpoint is sealed, the history masked

    second = await make_engine()
    client = await signed_in(second.url, owner)
    await client.request("manual_approval_response", approval_id=asked["approval_id"], decision="APPROVED")
    data = await wait_status(client, job_id, {"SUCCEEDED", "FAILED", "STOPPED"})
    assert data["status"] == "SUCCEEDED", data
    assert target.read_text() == secret  # the restored job had the real value
    await client.close()


async def test_a_released_job_can_be_stopped_and_its_approval_is_withdrawn(make_engine, owner: Wallet) -> None:
    engine = await make_engine(suspend_after_s=0.2)
    client = await signed_in(engine.url, owner)
    job_id = await start(client, approval_flow())
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    await released(engine, job_id)
    await client.request("stop_workflow", job_id=job_id)
    resolved = await client.next_event("MANUAL_APPROVAL_RESOLVED")
    assert resolved["approval_id"] == asked["approval_id"] and resolved["decided_by"] == "cancelled"
    data = await wait_status(client, job_id, {"SUCCEEDED", "FAILED", "STOPPED"})
    assert data["status"] == "STOPPED", data
    assert engine.runtime.approvals.pending() == [] and not engine.runtime.dormant
    await client.close()


async def test_a_released_job_paused_then_answered_goes_on_only_when_resumed(make_engine, owner: Wallet) -> None:
    engine = await make_engine(suspend_after_s=0.2)
    client = await signed_in(engine.url, owner)
    job_id = await start(client, approval_flow())
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    await released(engine, job_id)
    await client.request("pause_workflow", job_id=job_id)
    assert (await status_of(client, job_id))["status"] == "PAUSED"
    await client.request("manual_approval_response", approval_id=asked["approval_id"], decision="APPROVED")
    await asyncio.sleep(0.8)  # woken by the answer, still paused, released again
    assert (await status_of(client, job_id))["status"] == "PAUSED"
    await client.request("resume_workflow", job_id=job_id)
    data = await wait_status(client, job_id, {"SUCCEEDED", "FAILED", "STOPPED"})
    assert data["status"] == "SUCCEEDED" and data["result"]["data"]["after"] == 2, data
    assert data["result"]["data"]["approval"]["decision"] == "APPROVED"
    await client.close()


async def test_an_approval_that_expired_while_the_engine_was_down_takes_its_default(make_engine, owner: Wallet) -> None:
    first = await make_engine()
    client = await signed_in(first.url, owner)
    job_id = await start(client, approval_flow(timeout_s=1))
    await client.next_event("MANUAL_APPROVAL_REQUESTED")
    await client.close()
    await first.stop()
    await asyncio.sleep(1.2)
    second = await make_engine()
    client = await signed_in(second.url, owner)
    data = await wait_status(client, job_id, {"SUCCEEDED", "FAILED", "STOPPED"})
    assert data["status"] == "SUCCEEDED", data
    approval = data["result"]["data"]["approval"]
    assert approval["decided_by"] == "timeout" and approval["decision"] == "REJECTED"
    assert data["result"]["data"]["after"] == "rejected"
    await client.close()


async def test_a_released_job_says_who_started_it(make_engine, owner: Wallet) -> None:
    engine = await make_engine(suspend_after_s=0.2)
    client = await signed_in(engine.url, owner)
    job_id = await start(client, approval_flow())
    await client.next_event("MANUAL_APPROVAL_REQUESTED")
    live = await status_of(client, job_id)
    await released(engine, job_id)
    assert (await status_of(client, job_id))["started_by"] == live["started_by"] == {"kind": "gui"}
    await client.close()
