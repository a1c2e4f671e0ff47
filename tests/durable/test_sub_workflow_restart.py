"""A sub-workflow whose child waits for an approval: the engine is killed, restarted, the
approval answered; the child's result reaches the parent, which goes on to its end."""

from __future__ import annotations

from engine.client import EngineClient
from tests.conftest import Wallet
from tests.durable.support import POSIX_ONLY, expect_event, sign_in, wait_status
from tests.runtime_support import edge, node, run, start, workflow

pytestmark = POSIX_ONLY

CHILD = workflow([node("ask", "manual_approval", "Ask", message="Child asks", timeout_s=600),
                  node("yes", "set_data", data={"child": "approved"}),
                  node("no", "set_data", data={"child": "rejected"})],
                 [edge("ask", "yes", "APPROVED"), edge("ask", "no", "REJECTED")])
PARENT = workflow([node("t", "manual_trigger"), node("s", "set_data", data={"before": 1}),
                   node("sub", "sub_workflow", preset_name="child"),
                   node("a", "set_data", data={"after": 2})],
                  [edge("t", "s"), edge("s", "sub"), edge("sub", "a")])


async def test_a_child_waiting_for_an_approval_survives_a_kill_and_its_result_reaches_the_parent(
        start_engine, restart, owner: Wallet) -> None:
    first = start_engine()
    async with await EngineClient.connect(first.url, owner.key) as client:
        await client.request("save_preset", name="child", workflow_data=CHILD,
                             signature=client.signer.sign_workflow(CHILD))
        job_id = await start(client, PARENT, preset_name="Parent")
        asked = await expect_event(client, "MANUAL_APPROVAL_REQUESTED", what="from the child")
        assert asked["workflow_context_id"] == job_id and asked["job_id"] != job_id
        first.kill()

    second = restart(first)
    async with await EngineClient.connect(second.url, owner.key) as client:
        await sign_in(client)
        again = await expect_event(client, "MANUAL_APPROVAL_REQUESTED",
                                   where=lambda e: e["workflow_context_id"] == job_id,
                                   what="of the child, re-sent after the restart")
        assert (again["approval_id"], again["job_id"]) == (asked["approval_id"], asked["job_id"])
        # The child's wait blocks its parent.
        status = (await client.request("request_job_status", job_id=job_id))["status_data"]
        assert status["status"] == "RUNNING", status
        await client.request("manual_approval_response", approval_id=asked["approval_id"], decision="APPROVED")
        done = await wait_status(client, job_id)
        assert done["status"] == "SUCCEEDED", done
        data = done["result"]["data"]
        assert (data["before"], data["child"], data["after"]) == (1, "approved", 2)
        assert data["approval"]["decision"] == "APPROVED"  # the child's approval, in the parent's result


PAUSING_CHILD = workflow([node("d", "delay", seconds=1), node("c", "set_data", data={"child": "done"})],
                         [edge("d", "c")])


async def test_a_paused_parent_and_its_child_stay_paused_across_a_kill_and_resume_together(
        start_engine, restart, owner: Wallet) -> None:
    first = start_engine()
    async with await EngineClient.connect(first.url, owner.key) as client:
        await client.request("save_preset", name="child", workflow_data=PAUSING_CHILD,
                             signature=client.signer.sign_workflow(PAUSING_CHILD))
        job_id = await start(client, PARENT)
        await expect_event(client, "NODE_EXECUTION_METRIC",
                           where=lambda e: e["node_id"] == "d" and e["status"] == "RUNNING"
                           and e["job_id"] != job_id, what="for the child's delay")
        assert job_id in (await client.request("pause_workflow", job_id=job_id))["job_ids"]
        await expect_event(client, "workflow_status_update", what="PAUSED",
                           where=lambda e: e["job_id"] == job_id and e["status_data"]["status"] == "PAUSED")
        await run(client, workflow([node("x", "set_data", data={})], []))  # one more history batch
        first.kill()
    second = restart(first)
    async with await EngineClient.connect(second.url, owner.key) as client:
        status = (await client.request("request_job_status", job_id=job_id))["status_data"]
        assert status["status"] == "PAUSED", status
        await run(client, workflow([node("x", "set_data", data={})], []))  # time passes
        assert (await client.request("request_job_status", job_id=job_id))["status_data"]["status"] == "PAUSED"
        await client.request("resume_workflow", job_id=job_id)
        done = await wait_status(client, job_id)
        assert done["status"] == "SUCCEEDED", done
        data = done["result"]["data"]
        assert (data["before"], data["child"], data["after"]) == (1, "done", 2)
