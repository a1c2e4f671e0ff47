"""The engine process dies (SIGKILL: no cleanup at all) or is stopped, and starts again on the
same data folder. Durable jobs (issue 13): a job in flight is restored, not failed; a clean stop
suspends jobs instead of stopping them (`Runtime.stop(suspend=False)` keeps the old STOPPED);
the history written before stays readable; a job that cannot go on by itself is FAILED with a
text that says why. The detailed restore cases are in tests/durable/."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from engine.client import EngineClient
from tests.conftest import Wallet
from tests.durable.support import install_gate, run_count, sign_in, until, wait_for_history, wait_status
from tests.engine_process import EngineProcess, processes  # noqa: F401 - the fixture
from tests.runtime_support import collect, edge, final, node, start, workflow

pytestmark = pytest.mark.skipif(__import__("os").name != "posix", reason="SIGKILL is POSIX")

SLOW = workflow([node("t", "manual_trigger"), node("s", "set_data", data={"step": 1}),
                 node("wait", "delay", seconds=3600), node("after", "log_message", message="never")],
                [edge("t", "s", edge_id="c1"), edge("s", "wait", edge_id="c2"), edge("wait", "after", edge_id="c3")])


def running(node_id: str):
    return lambda e: e.get("node_id") == node_id and e.get("status") == "RUNNING"


async def test_a_job_in_flight_at_a_kill_is_restored_and_its_history_stays_readable(
        tmp_path: Path, owner: Wallet, processes) -> None:  # noqa: F811
    first = EngineProcess(tmp_path / "data", tmp_path / "logs", owner)
    processes.append(first)
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, SLOW, preset_name="Nightly")
        await client.next_event("NODE_EXECUTION_METRIC", where=running("wait"))
        before = await wait_for_history(client, job_id, "c2")
        first.kill()
        await asyncio.wait_for(client.closed.wait(), 30)

    second = first.restart()
    processes.append(second)
    async with await EngineClient.connect(second.url, owner.key) as client:
        await sign_in(client)
        # A GUI that reconnects hears that the job is going on, without asking.
        told = await client.next_event("workflow_status_update", where=lambda e: e["job_id"] == job_id)
        assert told["status_data"]["status"] == "RUNNING"
        data = (await client.request("request_job_status", job_id=job_id))["status_data"]
        assert data["status"] == "RUNNING" and data["preset_name"] == "Nightly" and "error" not in data
        reply = await client.request("request_connection_history", job_id=job_id, connection_id="c2")
        assert reply["history"] == before and reply["history"][0]["payload"]["data"] == {"step": 1}
        # The engine works normally after the restart, and the restored job can be stopped.
        new_job = await start(client, workflow([node("s", "set_data", data={"ok": True})], []))
        assert final(await collect(client, new_job))["status"] == "SUCCEEDED"
        await client.request("stop_workflow", job_id=job_id)
        assert (await wait_status(client, job_id))["status"] == "STOPPED"
    assert second.terminate() == 0


async def test_jobs_acknowledged_just_before_a_kill_are_restored(tmp_path: Path, owner: Wallet,
                                                                 processes) -> None:  # noqa: F811
    """No waiting for a batch of history: the kill comes right after the acknowledgements."""
    first = EngineProcess(tmp_path / "data", tmp_path / "logs", owner)
    processes.append(first)
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_ids = [await start(client, SLOW, preset_name=f"Burst {i}") for i in range(5)]
        first.kill()
    second = first.restart()
    processes.append(second)
    async with await EngineClient.connect(second.url, owner.key) as client:
        for i, job_id in enumerate(job_ids):
            data = (await client.request("request_job_status", job_id=job_id))["status_data"]
            assert data["status"] == "RUNNING", data
            assert data["preset_name"] == f"Burst {i}"
            # ... and really going on: each reaches its delay.
            await wait_for_history(client, job_id, "c2")


async def test_a_clean_stop_suspends_running_jobs_and_the_next_start_continues_them(
        make_engine, owner: Wallet) -> None:
    engine = await make_engine()
    async with await EngineClient.connect(engine.url, owner.key) as client:
        job_id = await start(client, SLOW)
        await client.next_event("NODE_EXECUTION_METRIC", where=running("wait"))
        await wait_for_history(client, job_id, "c2")
    await engine.stop()
    again = await make_engine()
    async with await EngineClient.connect(again.url, owner.key) as client:
        data = (await client.request("request_job_status", job_id=job_id))["status_data"]
        assert data["status"] == "RUNNING" and "error" not in data, data
        assert len((await client.request("request_connection_history", job_id=job_id,
                                          connection_id="c2"))["history"]) == 1
        # Job ids stay used across restarts: history is never mixed up.
        reply = await client.request("execute_workflow", job_id=job_id, workflow_data=SLOW, check=False)
        assert reply["code"] == "conflict"
        await client.request("stop_workflow", job_id=job_id)
        assert (await wait_status(client, job_id))["status"] == "STOPPED"


async def test_a_stop_without_suspending_records_running_jobs_as_stopped(make_engine, owner: Wallet) -> None:
    engine = await make_engine()
    async with await EngineClient.connect(engine.url, owner.key) as client:
        job_id = await start(client, SLOW)
        await client.next_event("NODE_EXECUTION_METRIC", where=running("wait"))
    await engine.runtime.stop(suspend=False)
    await engine.stop()
    again = await make_engine()
    async with await EngineClient.connect(again.url, owner.key) as client:
        data = (await client.request("request_job_status", job_id=job_id))["status_data"]
        assert data["status"] == "STOPPED" and "interrupted" in data["error"]
        reply = await client.request("execute_workflow", job_id=job_id, workflow_data=SLOW, check=False)
        assert reply["code"] == "conflict" and "cannot start a new run" in reply["error"]


async def test_a_stuck_sync_module_does_not_keep_the_engine_from_quitting(tmp_path: Path, owner: Wallet,
                                                                         processes) -> None:  # noqa: F811
    """Past the grace period the engine quits anyway; the node did not finish and is not safe to
    repeat, so after the restart its job is FAILED, says which node, and can be resumed."""
    data_dir = tmp_path / "data"
    folder = data_dir / "components" / "modules" / "stuck"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text('{"name": "Stuck", "properties": [], "output_ports": [{"name": "output"}]}')
    (folder / "module.py").write_text("import time\n\ndef run(ctx, payload):\n    time.sleep(3600)  # ignores ctx.cancelled\n")
    engine = EngineProcess(data_dir, tmp_path / "logs", owner, args=["--stop-grace-s", "1"])
    processes.append(engine)
    async with await EngineClient.connect(engine.url, owner.key) as client:
        job_id = await start(client, workflow([node("s", "stuck")], []))
        await client.next_event("NODE_EXECUTION_METRIC", where=lambda e: e["status"] == "RUNNING")
        assert await asyncio.to_thread(engine.terminate) == 0  # an hour if the thread were joined
    again = engine.restart()
    processes.append(again)
    async with await EngineClient.connect(again.url, owner.key) as client:
        await sign_in(client)
        # A GUI that reconnects hears the job's final state without asking.
        told = await client.next_event("workflow_status_update", where=lambda e: e["job_id"] == job_id)
        assert told["status_data"]["status"] == "FAILED"
        data = await wait_status(client, job_id)
        assert data["status"] == "FAILED" and "interrupted" in data["error"] and "'s'" in data["error"], data
        assert data["resumable"] is True
    assert again.terminate() == 0


async def test_a_job_whose_module_is_gone_after_the_restart_fails_with_a_clear_text(
        tmp_path: Path, owner: Wallet, processes) -> None:  # noqa: F811
    data_dir, release, runs = tmp_path / "data", tmp_path / "release", tmp_path / "runs"
    install_gate(data_dir, "gone_gate", idempotent=True)
    first = EngineProcess(data_dir, tmp_path / "logs", owner)
    processes.append(first)
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, workflow([node("s", "set_data", data={"a": 1}),
                                               node("g", "gone_gate", file=str(release), runs=str(runs))],
                                              [edge("s", "g")]))
        await client.next_event("NODE_EXECUTION_METRIC", where=running("g"))
        await until(lambda: run_count(runs) == 1, "the gate's first run")
        first.kill()
    shutil.rmtree(data_dir / "components" / "modules" / "gone_gate")  # uninstalled meanwhile
    second = first.restart()
    processes.append(second)
    async with await EngineClient.connect(second.url, owner.key) as client:
        data = await wait_status(client, job_id)
        assert data["status"] == "FAILED" and "gone_gate" in data["error"], data
    assert run_count(runs) == 1
