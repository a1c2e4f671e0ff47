"""A SIGKILL at any moment, again and again (also while the engine is restoring after the last
one), leaves a database that opens and passes SQLite's integrity check; every job, made only of
nodes that are safe to repeat, is restored each time and finishes with all of its data; the
checkpoints are gone once the jobs have ended."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from engine.client import EngineClient
from tests.conftest import Wallet
from tests.durable.support import POSIX_ONLY, query, wait_status
from tests.runtime_support import edge, node, start, workflow

pytestmark = POSIX_ONLY

JOBS, KILLS = 8, 4
# (steps, seconds per delay, engine options): short delays the jobs wait out in memory, and
# longer ones they are released from memory for (the kill finds them in the database only).
SHAPES = {"in memory": (25, 0.03, []), "released": (8, 0.35, ["--suspend-after-s", "0.2"])}


def chain(steps: int, delay_s: float) -> dict:
    """Set a key, wait a moment, set the next: a kill lands between or inside nodes."""
    nodes = [node("t", "manual_trigger")]
    for i in range(steps):
        nodes += [node(f"s{i}", "set_data", data={f"k{i}": i}), node(f"d{i}", "delay", seconds=delay_s)]
    ids = [n["id"] for n in nodes]
    return workflow(nodes, [edge(a, b) for a, b in zip(ids, ids[1:])])


def integrity(db_path: Path) -> str:
    return query(db_path, "PRAGMA integrity_check")[0][0]


def checkpoints_left(db_path: Path) -> int:
    return (query(db_path, "SELECT count(*) FROM job_checkpoints")[0][0]
            + query(db_path, "SELECT count(*) FROM job_tokens")[0][0])


@pytest.mark.parametrize("shape", SHAPES)
async def test_kills_at_random_moments_lose_no_job(start_engine, restart, owner: Wallet, shape: str) -> None:
    steps, delay_s, options = SHAPES[shape]
    window = steps * delay_s / 2
    chooser = random.Random(13)  # fixed seed: a failure can be run again the same way
    engine = start_engine(args=options)
    async with await EngineClient.connect(engine.url, owner.key) as client:
        job_ids = [await start(client, chain(steps, delay_s), preset_name=f"Chain {i}") for i in range(JOBS)]
        await asyncio.sleep(chooser.uniform(0.05, window))
        engine.kill()
    for _ in range(KILLS - 1):
        assert integrity(engine.db_path) == "ok"
        engine = restart(engine)  # the restore starts: kill it again in the middle of things
        await asyncio.sleep(chooser.uniform(0.0, window))
        engine.kill()
    assert integrity(engine.db_path) == "ok"
    engine = restart(engine)
    async with await EngineClient.connect(engine.url, owner.key) as client:
        for i, job_id in enumerate(job_ids):
            done = await wait_status(client, job_id, timeout=30)
            assert done["status"] == "SUCCEEDED", (job_id, done)
            assert done["preset_name"] == f"Chain {i}"
            assert done["result"]["data"] == {f"k{s}": s for s in range(steps)}
    assert await asyncio.to_thread(engine.terminate, 30) == 0
    assert integrity(engine.db_path) == "ok"
    assert checkpoints_left(engine.db_path) == 0
