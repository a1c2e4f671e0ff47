"""A kill in the middle of a node: a node whose manifest says it is safe to repeat
(`"idempotent": true`) runs again after the restart and the job succeeds; any other node is
not run again on its own: the job ends FAILED naming the node and `resumable`, and `resume_job`
finishes it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.client import EngineClient
from tests.conftest import Wallet
from tests.durable.support import (POSIX_ONLY, SlowServer, assert_like_unknown, expect_event, install_gate, run_count,
                                   query, running, sign_in, until, wait_for_history, wait_status)
from tests.runtime_support import collect, edge, final, node, start, workflow

pytestmark = POSIX_ONLY


async def test_an_idempotent_node_killed_midway_runs_again_and_the_job_succeeds(
        start_engine, restart, owner: Wallet, data_dir: Path, tmp_path: Path) -> None:
    install_gate(data_dir, "pure_gate", idempotent=True)
    release, runs = tmp_path / "release", tmp_path / "runs"
    wf = workflow([node("t", "manual_trigger"), node("s", "set_data", data={"before": 1}),
                   node("g", "pure_gate", file=str(release), runs=str(runs)),
                   node("a", "set_data", data={"after": 2})],
                  [edge("t", "s", edge_id="c1"), edge("s", "g", edge_id="c2"), edge("g", "a", edge_id="c3")])
    first = start_engine()
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, wf)
        await expect_event(client, "NODE_EXECUTION_METRIC", where=running("g"), what="for the gate")
        await wait_for_history(client, job_id, "c2")
        await until(lambda: run_count(runs) == 1, "the gate's first run")
        first.kill()
    second = restart(first)
    async with await EngineClient.connect(second.url, owner.key) as client:
        await sign_in(client)
        await until(lambda: run_count(runs) == 2, "the idempotent node to run again after the restart")
        release.write_text("go")
        done = await wait_status(client, job_id)
        assert done["status"] == "SUCCEEDED", done
        # Its input came from the checkpoint before it; its first, unfinished run left nothing.
        assert done["result"]["data"] == {"before": 1, "gate": 1, "after": 2}
    assert run_count(runs) == 2


async def test_a_non_idempotent_node_killed_midway_fails_the_job_and_resume_job_finishes_it(
        start_engine, restart, owner: Wallet, stranger: Wallet, slow_server: SlowServer) -> None:
    wf = workflow([node("t", "manual_trigger"), node("s", "set_data", data={"before": 1}),
                   node("call", "http_request", "Call the API", url=slow_server.url("/slow"), timeout_s=60),
                   node("a", "set_data", data={"after": 2})],
                  [edge("t", "s", edge_id="c1"), edge("s", "call", edge_id="c2"), edge("call", "a", edge_id="c3")])
    first = start_engine(owners=[owner, stranger])
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, wf, preset_name="Sync")
        await expect_event(client, "NODE_EXECUTION_METRIC", where=running("call"), what="for the request")
        await until(lambda: len(slow_server.paths) == 1, "the request to reach the server")
        first.kill()  # the request is in flight: whether it took effect is unknown
    slow_server.release.set()  # from now on the server answers at once

    second = restart(first)
    async with await EngineClient.connect(second.url, owner.key) as client:
        failed = await wait_status(client, job_id)
        assert failed["status"] == "FAILED", failed
        assert "interrupted" in failed["error"] and ("'call'" in failed["error"] or "'Call the API'" in failed["error"]), failed
        assert failed["resumable"] is True
        assert slow_server.paths == ["/slow"]  # not sent again on its own
        assert checkpoint_rows(second.db_path, job_id) == 1  # kept for resume_job
        async with await EngineClient.connect(second.url, stranger.key) as other:
            await sign_in(other)
            await assert_like_unknown(other, "resume_job", job_id)
            await assert_like_unknown(other, "request_job_status", job_id)

        client.pending_events()  # what sign-in re-sent (the FAILED status) is not news
        reply = await client.request("resume_job", job_id=job_id)
        assert (reply["job_id"], reply["status"]) == (job_id, "RUNNING")
        events = await collect(client, job_id)
        updates = [e["status_data"] for e in events if e["type"] == "workflow_status_update"]
        assert updates[0]["status"] == "RUNNING" and updates[0].get("resumed") is True, updates
        assert final(events)["status"] == "SUCCEEDED", final(events)
        data = final(events)["result"]["data"]
        assert data["before"] == 1 and data["after"] == 2 and data["response"]["body"] == {"served": 2}, data
        ran = [e["node_id"] for e in events if e["type"] == "NODE_EXECUTION_METRIC" and e["status"] == "SUCCESS"]
        assert ran == ["call", "a"]  # from the last checkpoint: s is not run again
        assert slow_server.paths == ["/slow", "/slow"]
        # Finished: nothing left to resume.
        again = await client.request("resume_job", job_id=job_id, check=False)
        assert again.get("code") == "conflict", again
        done = await client.request("request_job_status", job_id=job_id)
        assert done["status_data"]["status"] == "SUCCEEDED"
    assert await asyncio.to_thread(second.terminate, 30) == 0
    assert checkpoint_rows(second.db_path, job_id) == 0  # removed once the job ended


def checkpoint_rows(db_path: Path, job_id: str) -> int:
    return query(db_path, "SELECT count(*) FROM job_checkpoints WHERE job_id = ?", job_id)[0][0]

