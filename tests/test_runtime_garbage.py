"""A finished run is freed by reference counting: it leaves no cyclic garbage behind.

Why: the desktop app runs the engine on the Qt loop, and the cyclic collector's passes over a
heap that grows with every run's leftovers stalled the window for 100-230 ms at a few hundred
runs a second (bench/bench_window.py). With the collector saving what it finds
(gc.DEBUG_SAVEALL), runs of a real engine over a real socket, succeeding and failing, must leave
nothing of the engine's in `gc.garbage`: no job, runner, scheduler, future, or exception whose
traceback keeps the engine's frames alive.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import types
from pathlib import Path
from typing import Any

from engine.client import EngineClient
from tests.runtime_support import collect, edge, node, run, start, workflow

ENGINE_DIR = str(Path(__file__).resolve().parent.parent / "engine")

WORKFLOWS = {
    "succeeds": (workflow([node("a", "set_data", data={"greeting": "hello"}),
                           node("b", "log_message", message="hello")], [edge("a", "b")]), "SUCCEEDED"),
    "stop_and_error": (workflow([node("a", "set_data", data={"greeting": "hello"}),
                                 node("b", "stop_and_error", message="no")], [edge("a", "b")]), "FAILED"),
    # a sync module that raises, in a module thread
    "module_raises": (workflow([node("a", "set_data", data={"greeting": "hello"}),
                                node("b", "read_file", path="missing.txt")], [edge("a", "b")]), "FAILED"),
}


def ours(obj: Any) -> str | None:
    """A name for an object of the engine's (or a frame running its code), else None."""
    if isinstance(obj, types.FrameType):
        code = obj.f_code
        return f"frame of {code.co_name}" if code.co_filename.startswith(ENGINE_DIR) else None
    kind = type(obj)
    return kind.__qualname__ if kind.__module__.startswith("engine.") else None


async def settled(engine: Any) -> None:
    """Until the engine has let go of its finished jobs (their tasks end after the final
    status is published)."""
    while engine.runtime.running_job_count():
        await asyncio.sleep(0.01)
    for _ in range(5):
        await asyncio.sleep(0)


async def cyclic_garbage_of(work: Any) -> collections.Counter[str]:
    """The engine's objects that `work()` (awaited) left to the cyclic collector, by kind:
    the collector saves what it finds (DEBUG_SAVEALL) instead of freeing it."""
    gc.collect()
    flags = gc.get_debug()
    gc.set_debug(flags | gc.DEBUG_SAVEALL)
    try:
        await work()
        gc.collect()
        return collections.Counter(filter(None, map(ours, gc.garbage)))
    finally:
        gc.set_debug(flags)
        gc.garbage.clear()


async def test_finished_runs_leave_no_cyclic_garbage(engine: Any, client: EngineClient) -> None:
    for wf, expected in WORKFLOWS.values():  # warm: modules loaded, caches filled
        _, events = await run(client, wf)
        assert events[-1]["status_data"]["status"] == expected
    await settled(engine)

    async def runs() -> None:
        for name, (wf, expected) in WORKFLOWS.items():
            for _ in range(3):
                _, events = await run(client, wf)
                assert events[-1]["status_data"]["status"] == expected, (name, events[-1])
        await settled(engine)
    left = await cyclic_garbage_of(runs)
    assert not left, f"finished runs left cyclic garbage: {dict(left.most_common(12))}"


async def test_jobs_released_while_they_wait_leave_no_cyclic_garbage(make_engine: Any, owner: Any) -> None:
    """A job released from memory while it waits for an approval ends its task by
    cancellation; the CancelledError's traceback holds the job's frames, and the job held the
    task: each released job was a cycle of about 75 objects, left to the collector (and, with
    its passes spaced out, 4 KiB more per waiting job before they came)."""
    engine = await make_engine(suspend_after_s=0.2)
    asking = workflow([node("ask", "manual_approval", message="go?", timeout_s=600),
                       node("after", "set_data", data={"ok": 1})], [edge("ask", "after")])
    async with await EngineClient.connect(engine.url, owner.key) as client:
        async def release(count: int) -> None:
            for _ in range(count):
                await client.request("execute_workflow", job_id=f"ask-{count}-{_}", workflow_data=asking,
                                     initial_payload={}, preset_name="ask", mode="EXECUTE")
            while engine.runtime.released_job_count() < count or engine.runtime.jobs:
                await asyncio.sleep(0.05)
            for _ in range(5):
                await asyncio.sleep(0)
        await release(1)  # warm: the release path's modules and caches
        left = await cyclic_garbage_of(lambda: release(4))
    assert not left, f"released jobs left cyclic garbage: {dict(left.most_common(12))}"


async def test_stopped_and_timed_out_runs_leave_no_cyclic_garbage(engine: Any, client: EngineClient) -> None:
    """Runs that end by cancellation (a stop, the workflow's timeout) as well."""
    waiting = workflow([node("wait", "delay", seconds=30), node("after", "set_data", data={"ok": 1})],
                       [edge("wait", "after")])
    timed = workflow([node("wait", "delay", seconds=30)], [], timeout_s=0.1)

    async def stopped_and_timed_out() -> None:
        for _ in range(3):
            job_id = await start(client, waiting)
            await client.next_event("NODE_EXECUTION_METRIC", timeout=10,
                                    where=lambda e, j=job_id: e.get("job_id") == j and e["status"] == "RUNNING")
            await client.request("stop_workflow", job_id=job_id)
            events = await collect(client, job_id)
            assert events[-1]["status_data"]["status"] == "STOPPED"
            _, events = await run(client, timed)
            assert events[-1]["status_data"]["status"] == "FAILED", events[-1]
        await settled(engine)
    await stopped_and_timed_out()  # warm
    left = await cyclic_garbage_of(stopped_and_timed_out)
    assert not left, f"stopped or timed-out runs left cyclic garbage: {dict(left.most_common(12))}"
