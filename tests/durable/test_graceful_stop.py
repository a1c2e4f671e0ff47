"""SIGTERM (a logout, an upgrade, `systemctl stop`) with 50 jobs in flight: the engine exits 0,
no job is recorded FAILED or STOPPED, and after the restart every one of them finishes. A node
running at the SIGTERM finishes within the grace period, no new node starts, and after the
restart the job goes on from there (that node is not run again)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from engine.client import EngineClient
from tests.conftest import Wallet
from tests.durable.support import (POSIX_ONLY, SlowServer, approval_flow, delay_flow, expect_event, running,
                                   query, sign_in, until, wait_status)
from tests.runtime_support import edge, node, start, workflow

pytestmark = POSIX_ONLY

APPROVALS, DELAYS, CHAINS = 20, 20, 10
CHAIN_STEPS = 8


def chain() -> dict:
    """Short delays one after another: at any moment one of them is running."""
    nodes = [node("t", "manual_trigger")] + [node(f"d{i}", "delay", seconds=0.3) for i in range(CHAIN_STEPS)]
    nodes.append(node("end", "set_data", data={"chain": "done"}))
    ids = [n["id"] for n in nodes]
    return workflow(nodes, [edge(a, b) for a, b in zip(ids, ids[1:])])


def recorded_statuses(db_path: Path, job_ids: list[str]) -> dict[str, str]:
    marks = ",".join("?" * len(job_ids))
    return dict(query(db_path, f"SELECT job_id, status FROM jobs WHERE job_id IN ({marks})", *job_ids))


def checkpoint_count(db_path: Path) -> int:
    return query(db_path, "SELECT count(*) FROM job_checkpoints")[0][0]


async def test_sigterm_suspends_50_running_jobs_and_all_finish_after_the_restart(
        start_engine, restart, owner: Wallet) -> None:
    # Waits longer than 1 s are released from memory: the stop finds some jobs in memory and
    # some only in the database. (Set by the environment variable here, by the option elsewhere.)
    first = start_engine(env={"FLOWORK_SUSPEND_AFTER_S": "1"})
    async with await EngineClient.connect(first.url, owner.key) as client:
        approvals = [await start(client, approval_flow(timeout_s=600)) for _ in range(APPROVALS)]
        delays = [await start(client, delay_flow(8)) for _ in range(DELAYS)]
        chains = [await start(client, chain()) for _ in range(CHAINS)]
        # Every job is in flight: each approval asked, each delay waiting, each chain past its
        # first step.
        asked: set[str] = set()
        waiting: set[str] = set()
        chained: set[str] = set()
        while len(asked) < APPROVALS or len(waiting) < DELAYS or len(chained) < CHAINS:
            event = await expect_event(client, None, what=f"({len(asked)} asked, {len(waiting)} waiting, "
                                                          f"{len(chained)} chains going)")
            if event.get("type") == "MANUAL_APPROVAL_REQUESTED":
                asked.add(event["job_id"])
            elif running("d")(event):
                waiting.add(event["job_id"])
            elif running("d1")(event):
                chained.add(event["job_id"])
        assert (asked, waiting, chained) == (set(approvals), set(delays), set(chains))
        rc = await asyncio.to_thread(first.terminate, 30)
    assert rc == 0, first.stderr()
    every = approvals + delays + chains
    statuses = recorded_statuses(first.db_path, every)
    assert sorted(statuses) == sorted(every)
    assert set(statuses.values()) <= {"RUNNING", "PAUSED"}, sorted(set(statuses.values()))
    assert checkpoint_count(first.db_path) == len(every)

    second = restart(first)
    async with await EngineClient.connect(second.url, owner.key) as client:
        await sign_in(client)
        answered: set[str] = set()
        while len(answered) < APPROVALS:
            again = await expect_event(client, "MANUAL_APPROVAL_REQUESTED", what="re-sent after the restart")
            if again["job_id"] in answered:
                continue
            await client.request("manual_approval_response", approval_id=again["approval_id"], decision="APPROVED")
            answered.add(again["job_id"])
        assert answered == set(approvals)
        for job_id in every:
            done = await wait_status(client, job_id, timeout=30)
            assert done["status"] == "SUCCEEDED", (job_id, done)
        for job_id in approvals + delays:
            data = (await client.request("request_job_status", job_id=job_id))["status_data"]["result"]["data"]
            assert data["before"] == 1 and data["after"] == 2
        for job_id in chains:
            data = (await client.request("request_job_status", job_id=job_id))["status_data"]["result"]["data"]
            assert data["chain"] == "done"
    assert await asyncio.to_thread(second.terminate, 30) == 0
    assert checkpoint_count(second.db_path) == 0  # removed when the jobs ended


def recorded_nodes(db_path: Path, job_id: str) -> list[tuple[str, str]]:
    return query(db_path, "SELECT node_id, status FROM node_runs WHERE job_id = ? ORDER BY run_seq", job_id)


async def test_a_node_running_at_sigterm_finishes_and_the_next_one_waits_for_the_restart(
        start_engine, restart, owner: Wallet, slow_server: SlowServer) -> None:
    wf = workflow([node("t", "manual_trigger"), node("s", "set_data", data={"before": 1}),
                   node("call", "http_request", url=slow_server.url("/slow"), timeout_s=60),
                   node("a", "set_data", data={"after": 2})],
                  [edge("t", "s"), edge("s", "call"), edge("call", "a")])
    first = start_engine(args=["--stop-grace-s", "20"])
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, wf)
        await until(lambda: len(slow_server.paths) == 1, "the request to reach the server")
        first.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)  # the stop is under way while the request is still open
        slow_server.release.set()  # the node ends well within the grace period
        rc = await asyncio.to_thread(first.proc.wait, 30)
    assert rc == 0, first.stderr()
    ran = recorded_nodes(first.db_path, job_id)
    # The running node finished; no new node started during the stop.
    assert ran == [("t", "SUCCESS"), ("s", "SUCCESS"), ("call", "SUCCESS")], ran
    assert recorded_statuses(first.db_path, [job_id]) == {job_id: "RUNNING"}

    second = restart(first)
    async with await EngineClient.connect(second.url, owner.key) as client:
        done = await wait_status(client, job_id)
        assert done["status"] == "SUCCEEDED", done
        data = done["result"]["data"]
        assert (data["before"], data["response"]["body"], data["after"]) == (1, {"served": 1}, 2)
    assert slow_server.paths == ["/slow"]  # its effect happened once
