"""Pause, resume and stop act on one job while others run, and only on the asker's jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.client import EngineClient, EngineReplyError
from tests.conftest import Wallet
from tests.runtime_support import collect, edge, final, metrics, node, ran, run, start, workflow
from tests.test_runtime_execution import install_components


@pytest.fixture
async def engine(make_engine, data_dir):
    install_components(data_dir)
    return await make_engine()


def running(node_id: str):
    return lambda e: e.get("node_id") == node_id and e.get("status") == "RUNNING"


async def test_pause_and_resume_one_job_while_another_runs(client: EngineClient, shared_dir: Path) -> None:
    release = shared_dir / "release"
    held = await start(client, workflow([node("t", "manual_trigger"), node("h", "hold", file=str(release)),
                                         node("after", "log_message", message="after")],
                                        [edge("t", "h"), edge("h", "after")]))
    before = await collect(client, held, until=("RUNNING",))
    await client.next_event("NODE_EXECUTION_METRIC", where=running("h"))
    reply = await client.request("pause_workflow", job_id=held)
    assert reply["job_ids"] == [held]
    paused = await collect(client, held, until=("PAUSED",))
    assert final(paused)["status"] == "PAUSED"
    # Another job runs to the end while the first is paused.
    other, events = await run(client, workflow([node("s", "set_data", data={"x": 1})], []))
    assert final(events)["status"] == "SUCCEEDED"
    # The running node finishes, but the next one does not start while paused.
    release.write_text("go")
    finished = await client.next_event("NODE_EXECUTION_METRIC", where=lambda e: e["node_id"] == "h" and e["status"] == "SUCCESS")
    assert finished["job_id"] == held
    await run(client, workflow([node("s", "set_data", data={})], []))  # give the loop time
    assert (await client.request("request_job_status", job_id=held))["status_data"]["status"] == "PAUSED"
    assert not [e for e in client.pending_events() if e.get("job_id") == held and e.get("node_id") == "after"]
    # Pausing twice is harmless; resuming continues.
    assert (await client.request("pause_workflow", job_id=held))["job_ids"] == []
    await client.request("resume_workflow", job_id=held)
    rest = await collect(client, held)
    statuses = [e["status_data"]["status"] for e in rest if e["type"] == "workflow_status_update"]
    assert statuses == ["RUNNING", "SUCCEEDED"]
    resumed_at = next(i for i, e in enumerate(rest) if e["type"] == "workflow_status_update")
    after_at = next(i for i, e in enumerate(rest) if e.get("node_id") == "after" and e.get("status") == "RUNNING")
    assert resumed_at < after_at
    assert before[0]["status_data"]["status"] == "RUNNING"


async def test_stop_one_job_while_another_keeps_running(client: EngineClient) -> None:
    slow = workflow([node("t", "manual_trigger"), node("d", "delay", seconds=3600), node("x", "log_message", message="x")],
                    [edge("t", "d"), edge("d", "x")])
    first = await start(client, slow)
    second = await start(client, slow)
    for job_id in (first, second):
        await client.next_event("NODE_EXECUTION_METRIC", where=lambda e, j=job_id: e["job_id"] == j and running("d")(e))
    reply = await client.request("stop_workflow", job_id=first)
    assert reply["job_ids"] == [first]
    events = await collect(client, first)
    assert final(events)["status"] == "STOPPED" and "error" not in final(events)
    assert "x" not in ran(events)
    assert (await client.request("request_job_status", job_id=second))["status_data"]["status"] == "RUNNING"
    # Stopping a paused job works too; without job_id, control acts on all of the asker's jobs.
    await client.request("pause_workflow")
    await collect(client, second, until=("PAUSED",))
    reply = await client.request("stop_workflow")
    assert reply["job_ids"] == [second]
    assert final(await collect(client, second))["status"] == "STOPPED"
    with pytest.raises(EngineReplyError) as caught:
        await client.request("stop_workflow", job_id=first)
    assert caught.value.code == "not_found"


async def test_another_owner_cannot_control_my_job(make_engine, owner: Wallet, stranger: Wallet) -> None:
    engine = await make_engine(owners=(owner.address, stranger.address))
    async with await EngineClient.connect(engine.url, owner.key) as mine, \
            await EngineClient.connect(engine.url, stranger.key) as theirs:
        job_id = await start(mine, workflow([node("d", "delay", seconds=3600)], []))
        for verb in ("pause_workflow", "resume_workflow", "stop_workflow"):
            with pytest.raises(EngineReplyError) as caught:
                await theirs.request(verb, job_id=job_id)
            assert caught.value.code == "not_found"
        assert (await theirs.request("stop_workflow"))["job_ids"] == []
        assert engine.runtime.running_job_count() == 1
        await mine.request("stop_workflow", job_id=job_id)
        assert final(await collect(mine, job_id))["status"] == "STOPPED"
        assert engine.runtime.running_job_count() == 0


async def test_a_stopped_sync_module_sees_cancellation(client: EngineClient, shared_dir: Path) -> None:
    job_id = await start(client, workflow([node("h", "hold", file=str(shared_dir / "never"))], []))
    await client.next_event("NODE_EXECUTION_METRIC", where=running("h"))
    await client.request("stop_workflow", job_id=job_id)
    events = await collect(client, job_id)
    assert final(events)["status"] == "STOPPED"
    assert not metrics(events, "SUCCESS")


async def test_pausing_a_job_pauses_its_sub_workflow(client: EngineClient, shared_dir: Path) -> None:
    release = shared_dir / "release-child"
    child = workflow([node("h", "hold", file=str(release)), node("after", "set_data", data={"child": "done"})],
                     [edge("h", "after")])
    await client.request("save_preset", name="child", workflow_data=child,
                         signature=client.signer.sign_workflow(child))
    job_id = await start(client, workflow([node("sub", "sub_workflow", preset_name="child")], []))
    await client.next_event("NODE_EXECUTION_METRIC", where=lambda e: e["job_id"] == f"{job_id}/sub/1" and running("h")(e))
    await client.request("pause_workflow", job_id=job_id)
    release.write_text("go")
    await client.next_event("NODE_EXECUTION_METRIC", where=lambda e: e["node_id"] == "h" and e["status"] == "SUCCESS")
    await run(client, workflow([node("s", "set_data", data={})], []))  # give the loop time
    assert not [e for e in client.pending_events() if e.get("node_id") == "after"]
    await client.request("resume_workflow", job_id=job_id)
    done = final(await collect(client, job_id))
    assert done["status"] == "SUCCEEDED" and done["result"]["data"] == {"held": True, "child": "done"}


async def test_a_start_pipelined_with_its_stop_ends_stopped_after_its_acknowledgement(
        client: EngineClient) -> None:
    """The job waits for its acknowledgement (sent once its record is committed) before it
    begins; a stop that arrives meanwhile still ends it STOPPED, and nothing of it runs."""
    wf = workflow([node("s", "set_data", data={"x": 1}), node("d", "delay", seconds=3600)],
                  [edge("s", "d")])
    await client.send({"type": "execute_workflow", "request_id": "go", "job_id": "pipelined",
                       "workflow_data": wf, "initial_payload": {}, "preset_name": "p", "mode": "EXECUTE"})
    stopped = await client.request("stop_workflow", job_id="pipelined")
    assert stopped["job_ids"] == ["pipelined"]
    events = await collect(client, "pipelined")
    assert final(events)["status"] == "STOPPED"
    assert not [e for e in events if e.get("type") == "NODE_EXECUTION_METRIC"]  # nothing ran
    acks = [e for e in events + client.pending_events() if e.get("request_id") == "go"]
    if not acks:
        acks = [await client.next_event(where=lambda e: e.get("request_id") == "go")]
    assert len(acks) == 1 and acks[0]["type"] == "status_response" and acks[0]["job_id"] == "pipelined"
    status = await client.request("request_job_status", job_id="pipelined")
    assert status["status_data"]["status"] == "STOPPED"


async def test_the_acknowledgement_comes_before_the_jobs_first_event(client: EngineClient) -> None:
    for index in range(5):
        job_id = f"ordered-{index}"
        await client.send({"type": "execute_workflow", "job_id": job_id, "workflow_data":
                           workflow([node("s", "set_data", data={})], []), "initial_payload": {},
                           "preset_name": "p", "mode": "EXECUTE", "request_id": job_id})
    seen: list[tuple[str, str]] = []
    while len([s for s in seen if s[1] == "SUCCEEDED"]) < 5:
        event = await client.next_event()
        if event.get("type") == "status_response" and event.get("request_type") == "execute_workflow":
            seen.append((event["job_id"], "ack"))
        elif event.get("type") == "workflow_status_update":
            seen.append((event["job_id"], event["status_data"]["status"]))
    for index in range(5):
        mine = [what for job, what in seen if job == f"ordered-{index}"]
        assert mine == ["ack", "RUNNING", "SUCCEEDED"], seen
