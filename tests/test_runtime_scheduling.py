"""A chain of `async def` nodes with nothing to wait for runs in one task, back to back (no
scheduler hop per node)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.client import EngineClient
from tests.runtime_support import edge, final, node, run, workflow

WHERE = '''
import asyncio

async def run(ctx, payload):
    payload["data"].setdefault("tasks", []).append(id(asyncio.current_task()))
    return payload
'''


@pytest.fixture
async def engine(make_engine, data_dir: Path):
    folder = data_dir / "components" / "modules" / "where"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text('{"name": "where", "properties": [], "output_ports": [{"name": "output"}]}')
    (folder / "module.py").write_text(WHERE)
    return await make_engine()


async def test_a_chain_of_plain_async_nodes_runs_in_one_task(client: EngineClient) -> None:
    nodes = [node(f"n{i}", "where") for i in range(200)]
    edges = [edge(f"n{i}", f"n{i + 1}") for i in range(199)]
    _, events = await run(client, workflow(nodes, edges))
    tasks = final(events)["result"]["data"]["tasks"]
    assert len(tasks) == 200 and len(set(tasks)) == 1

