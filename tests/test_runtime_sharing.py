"""What jobs share instead of keeping one each: the parsed graph of one workflow (the runtime's
GraphCache) and the light Latch that holds and pauses them."""

from __future__ import annotations

import asyncio

from engine.app import Engine
from engine.client import EngineClient
from engine.runtime.scheduler import Latch
from tests.runtime_support import collect, final, node, run, start, workflow


def _job(engine: Engine, wire_id: str):
    assert engine.runtime is not None
    return next(job for job in engine.runtime.jobs.values() if job.wire_id == wire_id)


async def test_jobs_of_one_workflow_share_its_parsed_graph(engine: Engine, client: EngineClient) -> None:
    waiting = workflow([node("wait", "delay", seconds=30), node("after", "set_data", data={"v": 1})],
                       [{"source": "wait", "target": "after"}])
    other = workflow([node("wait", "delay", seconds=30), node("after", "set_data", data={"v": 2})],
                     [{"source": "wait", "target": "after"}])
    first, second, third = (await start(client, waiting), await start(client, waiting),
                            await start(client, other))
    await asyncio.sleep(0.1)
    assert _job(engine, first).spec.graph is _job(engine, second).spec.graph
    assert _job(engine, third).spec.graph is not _job(engine, first).spec.graph
    for job_id in (first, second, third):
        await client.request("stop_workflow", job_id=job_id)
        assert final(await collect(client, job_id))["status"] == "STOPPED"


async def test_a_changed_workflow_runs_as_changed(client: EngineClient) -> None:
    """The cache is keyed by the whole workflow: a run after an edit sees the edit."""
    for value in (1, 2, 1):
        _, events = await run(client, workflow([node("a", "set_data", data={"v": value})], []))
        assert final(events)["result"]["data"]["v"] == value


async def test_a_bad_workflow_is_refused_every_time(client: EngineClient) -> None:
    bad = workflow([node("a", "set_data"), node("a", "set_data")], [])
    for _ in range(2):
        reply = await client.request("execute_workflow", job_id="bad", workflow_data=bad,
                                     initial_payload={}, preset_name="x", mode="EXECUTE",
                                     start_node_id=None, check=False)
        assert "repeats the node id" in str(reply)


async def test_a_latch_wakes_every_waiter_and_a_cancelled_one_alone() -> None:
    latch = Latch()
    waiters = [asyncio.ensure_future(latch.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    waiters[0].cancel()
    await asyncio.sleep(0)
    latch.set()
    await asyncio.wait_for(asyncio.gather(*waiters[1:]), 1)
    assert waiters[0].cancelled()
    latch.clear()
    again = asyncio.ensure_future(latch.wait())
    await asyncio.sleep(0.01)
    assert not again.done()
    latch.set()
    await asyncio.wait_for(again, 1)
