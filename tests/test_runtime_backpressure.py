"""Starts slow down to what the disk takes. A caller that does not wait for a run's record (an
automation, a webhook answered with the run's outcome) must not queue history without bound:
while the writer is behind by HIGH_WATER writes, a new job waits for a commit before it starts."""

from __future__ import annotations

import asyncio

from engine.app import DB_FILE
from engine.runtime.history import HIGH_WATER
from tests.durable.support import query
from tests.runtime_support import database_held, edge, node, workflow

CHAIN = workflow([node("a", "set_data", data={"a": 1}), node("b", "set_data", data={"b": 2})],
                 [edge("a", "b")])


async def test_new_jobs_wait_while_the_history_writer_is_behind(engine, owner) -> None:
    runtime = engine.runtime
    warm = await runtime.execute(owner.address, "warm", CHAIN)  # settings and modules read once
    await warm.task
    jobs = []
    waiting = None
    async with database_held(engine):
        # Each run queues a dozen writes or so: well before HIGH_WATER runs, a start must wait.
        for n in range(HIGH_WATER):
            start = asyncio.ensure_future(runtime.execute(owner.address, f"burst-{n}", CHAIN))
            done, _ = await asyncio.wait({start}, timeout=0.5)
            if not done:
                waiting = start
                break
            job = start.result()
            await job.ended.wait()
            jobs.append(job)
        assert waiting is not None, "every start went ahead while nothing could be written"
        assert 10 < len(jobs) < HIGH_WATER
        assert all(job.status == "SUCCEEDED" for job in jobs)
    last = await asyncio.wait_for(waiting, 10)  # it starts once the backlog is written
    await asyncio.wait_for(last.task, 10)
    assert last.status == "SUCCEEDED"
    await runtime.recorder.flush()
    db_path = engine.config.data_dir / DB_FILE
    [(recorded,)] = query(db_path, "SELECT count(*) FROM jobs WHERE status = 'SUCCEEDED'")
    [(crossings,)] = query(db_path, "SELECT count(*) FROM connection_history")
    assert recorded == len(jobs) + 2
    assert crossings == recorded  # one crossing (a -> b) per run: none dropped


async def test_waiting_for_the_commit_takes_no_task_and_a_cancelled_wait_stops_nothing(engine, owner) -> None:
    """Every job waits for the commit of its final status: with `flushed()` that wait is a
    plain future, not a task per job, and a waiter that gives up leaves the commit and the
    other waiters alone."""
    recorder = engine.runtime.recorder
    warm = await engine.runtime.execute(owner.address, "warm", CHAIN)
    await warm.task
    async with database_held(engine):
        jobs = [await engine.runtime.execute(owner.address, f"held-{n}", CHAIN) for n in range(3)]
        for job in jobs:
            await job.ended.wait()  # each one's outcome is known, its record is not committed
        tasks_before = len(asyncio.all_tasks())
        waits = [recorder.flushed() for _ in range(50)]
        assert len(asyncio.all_tasks()) == tasks_before
        await asyncio.sleep(0.05)
        assert not any(wait.done() for wait in waits)
        assert all(not job.task.done() for job in jobs)  # their final status waits for the commit
        waits[0].cancel()
    await asyncio.wait_for(asyncio.gather(*waits[1:]), 10)
    for job in jobs:
        await asyncio.wait_for(job.task, 10)
    db_path = engine.config.data_dir / DB_FILE
    assert query(db_path, "SELECT job_id, status FROM jobs WHERE job_id LIKE 'held-%' ORDER BY job_id") == [
        (f"held-{n}", "SUCCEEDED") for n in range(3)]
