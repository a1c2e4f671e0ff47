"""request_jobs_list pages through an owner's top-level jobs newest first (status filter,
limit, `before` cursor), and another owner's job id is answered exactly like an unknown one by
resume_job and request_job_status."""

from __future__ import annotations

from typing import Any

import pytest

from engine.client import EngineClient
from tests.conftest import Wallet
from tests.durable.support import assert_like_unknown, delay_flow, expect_event, running
from tests.runtime_support import collect, final, node, run, start, workflow

QUICK = workflow([node("s", "set_data", data={"ok": True})], [])
BROKEN = workflow([node("x", "stop_and_error", message="broken on purpose")], [])
CHILD = workflow([node("c", "set_data", data={"child": True})], [])
PARENT = workflow([node("sub", "sub_workflow", preset_name="child")], [])


@pytest.fixture
async def engine(make_engine, owner: Wallet, stranger: Wallet):
    return await make_engine(owners=(owner.address, stranger.address))


async def pages(client: EngineClient, **query: Any) -> list[list[dict[str, Any]]]:
    """Every page of request_jobs_list, following next_before to the end."""
    found: list[list[dict[str, Any]]] = []
    before = None
    while True:
        fields = dict(query, **({"before": before} if before is not None else {}))
        reply = await client.request("request_jobs_list", **fields)
        assert reply["type"] == "jobs_list_response"
        found.append(reply["jobs"])
        before = reply["next_before"]
        if before is None:
            return found
        last = reply["jobs"][-1]
        assert before == [last["start_time"], last["job_id"]]
        assert len(found) < 50, "the pages never end"


async def test_jobs_list_pages_by_status_limit_and_cursor(make_client, owner: Wallet, stranger: Wallet) -> None:
    mine = await make_client(owner)
    theirs = await make_client(stranger)
    await mine.request("save_preset", name="child", workflow_data=CHILD, signature=mine.signer.sign_workflow(CHILD))
    order: list[str] = []  # the owner's top-level jobs, oldest first
    for _ in range(4):
        job_id, events = await run(mine, QUICK)
        assert final(events)["status"] == "SUCCEEDED"
        order.append(job_id)
    failed, events = await run(mine, BROKEN)
    assert final(events)["status"] == "FAILED"
    order.append(failed)
    parent, events = await run(mine, PARENT)  # its child job is not a top-level job
    assert final(events)["status"] == "SUCCEEDED"
    order.append(parent)
    waiting = []
    for _ in range(2):
        job_id = await start(mine, delay_flow(3600))
        await expect_event(mine, "NODE_EXECUTION_METRIC", where=running("d", job_id))
        waiting.append(job_id)
        order.append(job_id)
    strangers = [(await run(theirs, QUICK))[0] for _ in range(2)]
    newest_first = list(reversed(order))

    everything = await mine.request("request_jobs_list")
    assert [j["job_id"] for j in everything["jobs"]] == newest_first and everything["next_before"] is None
    by_three = await pages(mine, limit=3)
    assert [len(p) for p in by_three] == [3, 3, 2]
    assert [j["job_id"] for p in by_three for j in p] == newest_first
    assert {j["job_id"]: j["status"] for j in everything["jobs"]}[failed] == "FAILED"

    running_now = await mine.request("request_jobs_list", status="RUNNING")
    assert [j["job_id"] for j in running_now["jobs"]] == list(reversed(waiting))
    assert all(j["status"] == "RUNNING" for j in running_now["jobs"])
    two_kinds = await pages(mine, status=["FAILED", "RUNNING"], limit=2)
    assert [j["job_id"] for p in two_kinds for j in p] == [waiting[1], waiting[0], failed]
    succeeded = await pages(mine, status="SUCCEEDED", limit=4)
    assert [j["job_id"] for p in succeeded for j in p] == [parent, *reversed(order[:4])]

    # Top-level jobs of the asking owner only.
    assert [j["job_id"] for j in (await theirs.request("request_jobs_list"))["jobs"]] == list(reversed(strangers))
    for bad in (0, 501):
        reply = await mine.request("request_jobs_list", limit=bad, check=False)
        assert reply["code"] == "invalid_field", reply
    for job_id in waiting:
        await mine.request("stop_workflow", job_id=job_id)
        await collect(mine, job_id)


async def test_another_owners_job_is_answered_like_an_unknown_one(make_client, owner: Wallet,
                                                                   stranger: Wallet) -> None:
    mine = await make_client(owner)
    theirs = await make_client(stranger)
    finished, _ = await run(mine, QUICK)
    waiting = await start(mine, delay_flow(3600))
    await expect_event(mine, "NODE_EXECUTION_METRIC", where=running("d", waiting))
    await theirs.request("request_settings")
    for job_id in (finished, waiting):
        await assert_like_unknown(theirs, "request_job_status", job_id)
        await assert_like_unknown(theirs, "resume_job", job_id)
        assert [j["job_id"] for j in (await theirs.request("request_jobs_list"))["jobs"]] == []
    # The owner is told why: still running, or finished without a checkpoint.
    for job_id in (finished, waiting):
        reply = await mine.request("resume_job", job_id=job_id, check=False)
        assert reply["code"] == "conflict", reply
    assert (await mine.request("resume_job", job_id="never-used", check=False))["code"] == "not_found"
    await mine.request("stop_workflow", job_id=waiting)
    assert final(await collect(mine, waiting))["status"] == "STOPPED"
