"""request_jobs_list and resume_job over a real socket with signed frames: paging newest first,
filters, the live status of active jobs, every field checked with a clear error, and another
owner's job answered exactly like an unknown one."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from engine.app import Engine
from engine.client import EngineClient, EngineReplyError
from tests.conftest import ClientFactory, Wallet
from tests.runtime_support import collect, edge, final, node, run, start, workflow
from tests.engine_process import EngineProcess, processes  # noqa: F401 - a fixture

QUICK = workflow([node("s", "set_data", data={"a": 1})], [])
FAILING = workflow([node("f", "stop_and_error", message="on purpose")], [])
ASKING = workflow([node("ask", "manual_approval", message="go?"), node("after", "set_data", data={"ok": 1})],
                  [edge("ask", "after", "APPROVED")])


async def _list(client: EngineClient, **fields: Any) -> dict[str, Any]:
    reply = await client.request("request_jobs_list", **fields)
    assert reply["type"] == "jobs_list_response"
    return reply


async def _refused(client: EngineClient, msg_type: str, **fields: Any) -> dict[str, Any]:
    with pytest.raises(EngineReplyError) as caught:
        await client.request(msg_type, **fields)
    return caught.value.frame


async def test_pages_newest_first_until_next_before_is_null(client: EngineClient) -> None:
    done = [(await run(client, QUICK))[0] for _ in range(7)]
    seen: list[dict[str, Any]] = []
    before = None
    for _ in range(5):
        page = await _list(client, limit=3, **({"before": before} if before else {}))
        seen += page["jobs"]
        before = page["next_before"]
        if before is None:
            break
        assert before == [page["jobs"][-1]["start_time"], page["jobs"][-1]["job_id"]]
    assert [j["job_id"] for j in seen] == list(reversed(done))  # each once, newest first
    first = seen[0]
    assert first["status"] == "SUCCEEDED" and first["preset_name"] == "unsaved-workflow"
    assert first["mode"] == "EXECUTE" and first["end_time"] >= first["start_time"]
    assert first["nodes_done"] == 1 and "result" not in first
    # The default page holds them all, and says nothing follows.
    whole = await _list(client)
    assert len(whole["jobs"]) == 7 and whole["next_before"] is None


async def test_status_filter_one_or_several(client: EngineClient) -> None:
    ok, _ = await run(client, QUICK)
    bad, events = await run(client, FAILING)
    assert final(events)["status"] == "FAILED"
    failed = await _list(client, status="FAILED")
    assert [j["job_id"] for j in failed["jobs"]] == [bad]
    assert "on purpose" in failed["jobs"][0]["error"]
    both = await _list(client, status=["SUCCEEDED", "FAILED", "SUCCEEDED"])
    assert [j["job_id"] for j in both["jobs"]] == [bad, ok]
    assert (await _list(client, status="PAUSED"))["jobs"] == []


async def test_an_active_job_shows_its_live_status(engine: Engine, client: EngineClient) -> None:
    job_id = await start(client, ASKING)
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    listed = (await _list(client, status="RUNNING"))["jobs"]
    assert [j["job_id"] for j in listed] == [job_id] and listed[0]["status"] == "RUNNING"
    await client.request("pause_workflow", job_id=job_id)
    await client.next_event("workflow_status_update", where=lambda e: e["status_data"]["status"] == "PAUSED")
    paused = (await _list(client, status=["PAUSED"]))["jobs"]
    assert [(j["job_id"], j["status"]) for j in paused] == [(job_id, "PAUSED")]
    await client.request("resume_workflow", job_id=job_id)
    assert engine.approvals.resolve(asked["approval_id"], "APPROVED")
    assert final(await collect(client, job_id))["status"] == "SUCCEEDED"
    assert [j["status"] for j in (await _list(client))["jobs"]] == ["SUCCEEDED"]


async def test_only_the_askers_jobs_are_listed(make_engine, owner: Wallet, stranger: Wallet) -> None:
    engine = await make_engine(owners=(owner.address, stranger.address))
    async with await EngineClient.connect(engine.url, owner.key) as mine, \
            await EngineClient.connect(engine.url, stranger.key) as theirs:
        my_job, _ = await run(mine, QUICK)
        their_job, _ = await run(theirs, QUICK)
        assert [j["job_id"] for j in (await _list(mine))["jobs"]] == [my_job]
        assert [j["job_id"] for j in (await _list(theirs, status="SUCCEEDED"))["jobs"]] == [their_job]
        # A cursor naming the other owner's job reveals nothing either: it is only a position.
        page = await _list(mine, before=[1e12, their_job])
        assert [j["job_id"] for j in page["jobs"]] == [my_job]


BAD_LISTS = [
    ({"status": "DONE"}, "status", "must be one of 'RUNNING', 'PAUSED', 'SUCCEEDED', 'FAILED', 'STOPPED'"),
    ({"status": "running"}, "status", "not 'running'"),
    ({"status": []}, "status", "at least one status"),
    ({"status": ["FAILED", 3]}, "status", "not 3"),
    ({"status": 5}, "status", "must be a string or an array"),
    ({"status": ["FAILED"] * 17}, "status", "too many statuses"),
    ({"limit": 0}, "limit", "at least 1"),
    ({"limit": 501}, "limit", "at most 500"),
    ({"limit": "10"}, "limit", "whole number"),
    ({"limit": True}, "limit", "not a boolean"),
    ({"limit": 2.5}, "limit", "whole number"),
    ({"before": "abc"}, "before", "must be an array"),
    ({"before": [1.5]}, "before", "[start_time, job_id]"),
    ({"before": [1.5, "a", "b"]}, "before", "[start_time, job_id]"),
    ({"before": ["x", "job"]}, "before", "start with a number"),
    ({"before": [True, "job"]}, "before", "start with a number"),
    ({"before": [1.5, ""]}, "before", "end with a job id"),
    ({"before": [1.5, 7]}, "before", "end with a job id"),
    ({"before": [1.5, "j" * 129]}, "before", "end with a job id"),
]


@pytest.mark.parametrize("fields, field, words", BAD_LISTS)
async def test_every_list_field_is_checked(client: EngineClient, fields: dict[str, Any], field: str,
                                           words: str) -> None:
    reply = await _refused(client, "request_jobs_list", **fields)
    assert reply["type"] == "jobs_list_response" and reply["code"] == "invalid_field"
    assert reply["field"] == field and f"'{field}'" in reply["error"]
    assert words in reply["error"], reply["error"]
    assert "jobs" not in reply
    await client.request("request_settings")  # the connection goes on


async def test_null_fields_mean_the_defaults(client: EngineClient) -> None:
    job_id, _ = await run(client, QUICK)
    page = await _list(client, status=None, limit=None, before=None)
    assert [j["job_id"] for j in page["jobs"]] == [job_id] and page["next_before"] is None


# -- resume_job --------------------------------------------------------------------------------

@pytest.mark.parametrize("job_id, words", [("", "must not be empty"), ("a b", "may only hold"),
                                           ("j" * 129, "too long")])
async def test_resume_job_checks_its_job_id(client: EngineClient, job_id: str, words: str) -> None:
    reply = await _refused(client, "resume_job", job_id=job_id)
    assert reply["type"] == "resume_job_response" and reply["code"] == "invalid_field"
    assert reply["field"] == "job_id" and words in reply["error"]
    missing = await _refused(client, "resume_job")
    assert missing["code"] == "invalid_field" and "is required" in missing["error"]


async def test_resume_job_of_a_finished_or_running_job_is_a_conflict(engine: Engine,
                                                                     client: EngineClient) -> None:
    done, _ = await run(client, QUICK)
    reply = await _refused(client, "resume_job", job_id=done)
    assert reply["type"] == "resume_job_response" and reply["code"] == "conflict"
    assert reply["job_id"] == done
    waiting = await start(client, ASKING)
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    assert (await _refused(client, "resume_job", job_id=waiting))["code"] == "conflict"
    assert engine.approvals.resolve(asked["approval_id"], "APPROVED")
    assert final(await collect(client, waiting))["status"] == "SUCCEEDED"


async def test_another_owners_job_is_answered_like_an_unknown_one(make_engine, owner: Wallet,
                                                                  stranger: Wallet) -> None:
    engine = await make_engine(owners=(owner.address, stranger.address))
    async with await EngineClient.connect(engine.url, owner.key) as mine, \
            await EngineClient.connect(engine.url, stranger.key) as theirs:
        finished, _ = await run(theirs, QUICK)
        running = await start(theirs, ASKING)
        asked = await theirs.next_event("MANUAL_APPROVAL_REQUESTED")
        unknown = "no-such-job"
        replies = {job_id: await _refused(mine, "resume_job", job_id=job_id)
                   for job_id in (unknown, finished, running)}

        def shape(reply: dict[str, Any], job_id: str) -> dict[str, Any]:
            return {k: (v.replace(job_id, "<id>") if isinstance(v, str) else v)
                    for k, v in reply.items() if k != "request_id"}
        expected = shape(replies[unknown], unknown)
        assert expected["code"] == "not_found" and expected["type"] == "resume_job_response"
        for job_id in (finished, running):
            assert shape(replies[job_id], job_id) == expected
        # Nothing happened to their job; it finishes as its owner says.
        assert engine.approvals.resolve(asked["approval_id"], "APPROVED")
        assert final(await collect(theirs, running))["status"] == "SUCCEEDED"
        await asyncio.sleep(0)


# -- resume_job of a job a crash interrupted (real process, real SIGKILL) ----------------------

HOLD = '''
import os

def run(ctx, payload):
    """Not safe to repeat (no "idempotent" in its manifest): waits for a file, in a thread."""
    while not os.path.exists(ctx.config["file"]):
        if ctx.cancelled.wait(0.02):
            return payload
    payload["data"]["held"] = True
    return payload
'''


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
async def test_a_job_killed_mid_node_is_resumed_by_resume_job(tmp_path, owner: Wallet, processes) -> None:
    data_dir, log_dir, release = tmp_path / "data", tmp_path / "logs", tmp_path / "release"
    folder = data_dir / "components" / "modules" / "hold"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text('{"name": "hold", "properties": [], "output_ports": [{"name": "output"}]}')
    (folder / "module.py").write_text(HOLD)
    wf = workflow([node("before", "set_data", data={"step": 1}), node("h", "hold", "Hold", file=str(release)),
                   node("after", "set_data", data={"step": 2})], [edge("before", "h"), edge("h", "after")])
    first = EngineProcess(data_dir, log_dir, owner)
    processes.append(first)
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, wf, preset_name="Import")
        await client.next_event("NODE_EXECUTION_METRIC", where=lambda e: e["node_id"] == "h" and e["status"] == "RUNNING")
        first.kill()

    second = EngineProcess(data_dir, log_dir, owner)
    processes.append(second)
    async with await EngineClient.connect(second.url, owner.key) as client:
        data = (await client.request("request_job_status", job_id=job_id))["status_data"]
        assert data["status"] == "FAILED" and data["resumable"] is True and "interrupted" in data["error"]
        assert "'Hold'" in data["error"] or "'h'" in data["error"]  # names the node
        (item,) = (await _list(client, status="FAILED"))["jobs"]
        assert item["job_id"] == job_id and item["resumable"] is True and "result" not in item
        assert item["mode"] == "EXECUTE" and item["preset_name"] == "Import" and item["nodes_done"] >= 1
        release.write_text("go")
        client.pending_events()  # what sign-in told (the FAILED status) is not news
        reply = await client.request("resume_job", job_id=job_id)
        assert reply["type"] == "resume_job_response" and reply == {**reply, "job_id": job_id, "status": "RUNNING"}
        events = await collect(client, job_id)
        resumed = [e for e in events if e["type"] == "workflow_status_update"
                   and e["status_data"]["status"] == "RUNNING"]
        assert resumed and resumed[0]["status_data"].get("resumed") is True
        done = final(events)
        assert done["status"] == "SUCCEEDED" and done["result"]["data"] == {"step": 2, "held": True}
        assert (await _refused(client, "resume_job", job_id=job_id))["code"] == "conflict"
        assert [j["status"] for j in (await _list(client))["jobs"]] == ["SUCCEEDED"]
    assert second.terminate() == 0
