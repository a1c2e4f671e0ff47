"""Manual approvals answered by a client, by the Python API (the desktop app), by timeout;
re-sent to a connecting owner; withdrawn when the job stops."""

from __future__ import annotations

from engine.app import Engine
from engine.client import EngineClient, EngineReplyError
from engine.runtime.approvals import ApprovalRequest, ApprovalResolution
from tests.runtime_support import collect, edge, final, node, start, workflow

import pytest


def approval_flow(**config) -> dict:
    return workflow([node("t", "manual_trigger"), node("s", "set_data", data={"what": "deploy"}),
                     node("ask", "manual_approval", "Ask", message="Go ahead with {{data.what}}?", **config),
                     node("yes", "set_data", data={"result": "approved"}),
                     node("no", "set_data", data={"result": "rejected"})],
                    [edge("t", "s"), edge("s", "ask"), edge("ask", "yes", "APPROVED"),
                     edge("ask", "no", "REJECTED")])


async def test_a_client_answers_and_the_first_answer_wins(client: EngineClient, make_client) -> None:
    other_tab = await make_client()
    await other_tab.request("request_settings")
    job_id = await start(client, approval_flow(timeout_s=60))
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    assert asked["job_id"] == asked["workflow_context_id"] == job_id
    assert asked["message"] == "Go ahead with deploy?" and asked["node_id"] == "ask"
    assert asked["module_id"] == "manual_approval" and asked["timeout_s"] == 60
    assert isinstance(asked["requested_at"], float) and asked["approval_id"]
    assert (await other_tab.next_event("MANUAL_APPROVAL_REQUESTED"))["approval_id"] == asked["approval_id"]
    reply = await other_tab.request("manual_approval_response", approval_id=asked["approval_id"],
                                    decision="approved", comment="ok")
    assert reply["decision"] == "APPROVED"
    with pytest.raises(EngineReplyError) as caught:
        await client.request("manual_approval_response", approval_id=asked["approval_id"], decision="REJECTED")
    assert caught.value.code == "not_found"
    for conn in (client, other_tab):
        resolved = await conn.next_event("MANUAL_APPROVAL_RESOLVED")
        assert resolved["decision"] == "APPROVED" and resolved["decided_by"] == client.address
        assert resolved["approval_id"] == asked["approval_id"]
    events = await collect(client, job_id)
    assert final(events)["result"]["data"]["result"] == "approved"
    assert final(events)["result"]["data"]["approval"]["comment"] == "ok"


async def test_answer_by_job_and_node_id(client: EngineClient) -> None:
    job_id = await start(client, approval_flow())
    await client.next_event("MANUAL_APPROVAL_REQUESTED")
    with pytest.raises(EngineReplyError) as caught:
        await client.request("manual_approval_response", job_id=job_id, node_id="ask", decision="MAYBE")
    assert caught.value.code == "invalid_field"
    await client.request("manual_approval_response", job_id=job_id, node_id="ask", decision="REJECTED")
    events = await collect(client, job_id)
    assert final(events)["result"]["data"]["result"] == "rejected"


async def test_the_desktop_app_answers_through_the_python_api(engine: Engine, client: EngineClient) -> None:
    requested: list[ApprovalRequest] = []
    resolved: list[ApprovalResolution] = []
    unsubscribe = engine.approvals.subscribe(requested.append, resolved.append)
    job_id = await start(client, approval_flow(), preset_name="Deploy")
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    assert [r.approval_id for r in requested] == [asked["approval_id"]]
    request = requested[0]
    assert (request.job_id, request.node_id, request.node_name, request.workflow_name) == (job_id, "ask", "Ask", "Deploy")
    assert request.owner == client.address.lower() and request.message == "Go ahead with deploy?"
    assert engine.approvals.pending() == [request]
    assert engine.approvals.resolve(request.approval_id, "REJECTED", comment="not today") is True
    assert engine.approvals.resolve(request.approval_id, "APPROVED") is False  # first answer wins
    assert engine.approvals.resolve("unknown", "APPROVED") is False
    assert resolved == [ApprovalResolution(request.approval_id, "REJECTED", "desktop", "not today")]
    note = await client.next_event("MANUAL_APPROVAL_RESOLVED")
    assert note["decided_by"] == "desktop" and note["decision"] == "REJECTED"
    assert final(await collect(client, job_id))["result"]["data"]["result"] == "rejected"
    assert engine.approvals.pending() == []
    unsubscribe()
    await start(client, approval_flow(timeout_s=0.05))
    await client.next_event("MANUAL_APPROVAL_RESOLVED")
    assert len(requested) == 1  # unsubscribed


async def test_a_timeout_answers_with_the_default_decision(client: EngineClient) -> None:
    job_id = await start(client, approval_flow(timeout_s=0.1))
    resolved = await client.next_event("MANUAL_APPROVAL_RESOLVED")
    assert (resolved["decision"], resolved["decided_by"]) == ("REJECTED", "timeout")
    assert final(await collect(client, job_id))["result"]["data"]["result"] == "rejected"
    # The default decision is a setting.
    await client.request("save_settings", settings={"approval_default_decision": "APPROVED"})
    job_id = await start(client, approval_flow(timeout_s=0.1))
    assert (await client.next_event("MANUAL_APPROVAL_RESOLVED"))["decision"] == "APPROVED"
    assert final(await collect(client, job_id))["result"]["data"]["result"] == "approved"


async def test_pending_requests_and_running_jobs_are_resent_on_connect(engine: Engine, client: EngineClient,
                                                                       make_client) -> None:
    job_id = await start(client, approval_flow())
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    late = await make_client()
    await late.request("request_settings")  # the first signed frame authenticates the connection
    status = await late.next_event("workflow_status_update")
    assert status["job_id"] == job_id and status["status_data"]["status"] == "RUNNING"
    again = await late.next_event("MANUAL_APPROVAL_REQUESTED")
    assert again["approval_id"] == asked["approval_id"] and again["message"] == asked["message"]
    await late.request("manual_approval_response", approval_id=again["approval_id"], decision="APPROVED")
    assert final(await collect(client, job_id))["result"]["data"]["result"] == "approved"


async def test_stopping_the_job_withdraws_its_request(engine: Engine, client: EngineClient) -> None:
    job_id = await start(client, approval_flow())
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    await client.request("stop_workflow", job_id=job_id)
    resolved = await client.next_event("MANUAL_APPROVAL_RESOLVED")
    assert resolved["approval_id"] == asked["approval_id"] and resolved["decided_by"] == "cancelled"
    assert final(await collect(client, job_id))["status"] == "STOPPED"
    assert engine.approvals.pending() == []
    assert engine.approvals.resolve(asked["approval_id"], "APPROVED") is False


async def test_simulate_does_not_ask(engine: Engine, client: EngineClient) -> None:
    job_id = await start(client, approval_flow(), mode="SIMULATE")
    events = await collect(client, job_id)
    assert final(events)["result"]["data"]["result"] == "approved"
    assert not [e for e in events if e["type"].startswith("MANUAL_APPROVAL")]
    assert engine.approvals.pending() == []
