"""A job in flight when the engine process dies (SIGKILL: no cleanup at all) is shown as FAILED
("interrupted") after a restart on the same data folder, and its history stays readable; a
clean stop records running jobs as STOPPED."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.client import EngineClient
from tests.conftest import REPO_ROOT, Wallet
from tests.runtime_support import collect, edge, final, node, start, workflow

URL_RE = re.compile(r"ws://127\.0\.0\.1:\d+/\?engineId=[A-Za-z0-9_.:-]+")

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")


class EngineProcess:
    """`python -m engine` on an ephemeral port; the URL is read from its stdout."""

    def __init__(self, data_dir: Path, log_dir: Path, owner: Wallet) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWORK_")}
        cmd = [sys.executable, "-m", "engine", "--data-dir", str(data_dir), "--log-dir", str(log_dir),
               "--port", "0", "--engine-id", "restart-test", "--owner", owner.address]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env=env, cwd=REPO_ROOT)
        self.url: str | None = None
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                match = URL_RE.search(line)
                if match and self.url is None:
                    self.url = match.group(0)
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(60)
        if self.url is None:
            self.proc.kill()
            raise AssertionError("the engine process printed no URL")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture
def processes():
    started: list[EngineProcess] = []
    yield started
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=30)


SLOW = workflow([node("t", "manual_trigger"), node("s", "set_data", data={"step": 1}),
                 node("wait", "delay", seconds=3600), node("after", "log_message", message="never")],
                [edge("t", "s", edge_id="c1"), edge("s", "wait", edge_id="c2"), edge("wait", "after", edge_id="c3")])


async def _wait_for_history(client: EngineClient, job_id: str, connection_id: str) -> list[dict]:
    """History is written in batches; wait (bounded) until this crossing is on disk."""
    for _ in range(250):
        reply = await client.request("request_connection_history", job_id=job_id,
                                     connection_id=connection_id, check=False)
        if reply.get("history"):
            return reply["history"]
        await asyncio.sleep(0.02)
    raise AssertionError("the crossing was never recorded")


async def test_a_job_in_flight_survives_a_kill_as_failed_interrupted(tmp_path: Path, owner: Wallet, processes) -> None:
    data_dir, log_dir = tmp_path / "data", tmp_path / "logs"
    first = EngineProcess(data_dir, log_dir, owner)
    processes.append(first)
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_id = await start(client, SLOW, preset_name="Nightly")
        await client.next_event("NODE_EXECUTION_METRIC",
                                where=lambda e: e["node_id"] == "wait" and e["status"] == "RUNNING")
        before = await _wait_for_history(client, job_id, "c2")
        first.kill()
        await asyncio.wait_for(client.closed.wait(), 30)

    second = EngineProcess(data_dir, log_dir, owner)
    processes.append(second)
    async with await EngineClient.connect(second.url, owner.key) as client:
        status = await client.request("request_job_status", job_id=job_id)
        data = status["status_data"]
        assert data["status"] == "FAILED" and data["error"].startswith("interrupted")
        assert data["preset_name"] == "Nightly" and data["end_time"] >= data["start_time"]
        # A GUI that reconnects hears the job's final state without asking.
        told = await client.next_event("workflow_status_update", where=lambda e: e["job_id"] == job_id)
        assert told["status_data"]["status"] == "FAILED" and "interrupted" in told["status_data"]["error"]
        reply = await client.request("request_connection_history", job_id=job_id, connection_id="c2")
        assert reply["history"] == before and reply["history"][0]["payload"]["data"] == {"step": 1}
        # The engine works normally after the restart.
        new_job = await start(client, workflow([node("s", "set_data", data={"ok": True})], []))
        assert final(await collect(client, new_job))["status"] == "SUCCEEDED"
    assert second.terminate() == 0


async def test_a_job_acknowledged_just_before_a_kill_is_known_after_restart(tmp_path: Path, owner: Wallet,
                                                                           processes) -> None:
    """No waiting for a batch of history: the kill comes right after the acknowledgement."""
    data_dir, log_dir = tmp_path / "data", tmp_path / "logs"
    first = EngineProcess(data_dir, log_dir, owner)
    processes.append(first)
    async with await EngineClient.connect(first.url, owner.key) as client:
        job_ids = [await start(client, SLOW, preset_name=f"Burst {i}") for i in range(5)]
        first.kill()
    second = EngineProcess(data_dir, log_dir, owner)
    processes.append(second)
    async with await EngineClient.connect(second.url, owner.key) as client:
        for i, job_id in enumerate(job_ids):
            data = (await client.request("request_job_status", job_id=job_id))["status_data"]
            assert data["status"] == "FAILED" and data["error"].startswith("interrupted")
            assert data["preset_name"] == f"Burst {i}"


async def test_a_clean_stop_records_running_jobs_as_stopped(make_engine, owner: Wallet) -> None:
    engine = await make_engine()
    async with await EngineClient.connect(engine.url, owner.key) as client:
        job_id = await start(client, SLOW)
        await client.next_event("NODE_EXECUTION_METRIC",
                                where=lambda e: e["node_id"] == "wait" and e["status"] == "RUNNING")
    await engine.stop()
    again = await make_engine()
    async with await EngineClient.connect(again.url, owner.key) as client:
        data = (await client.request("request_job_status", job_id=job_id))["status_data"]
        assert data["status"] == "STOPPED" and "interrupted" in data["error"]
        assert len((await client.request("request_connection_history", job_id=job_id,
                                          connection_id="c2"))["history"]) == 1
        # Job ids stay used across restarts: history is never mixed up.
        reply = await client.request("execute_workflow", job_id=job_id, workflow_data=SLOW, check=False)
        assert reply["code"] == "conflict" and "cannot start a new run" in reply["error"]


async def test_a_stuck_sync_module_does_not_keep_the_engine_from_quitting(tmp_path: Path, owner: Wallet,
                                                                         processes) -> None:
    data_dir = tmp_path / "data"
    folder = data_dir / "components" / "modules" / "stuck"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text('{"name": "Stuck", "properties": [], "output_ports": [{"name": "output"}]}')
    (folder / "module.py").write_text("import time\n\ndef run(ctx, payload):\n    time.sleep(3600)  # ignores ctx.cancelled\n")
    engine = EngineProcess(data_dir, tmp_path / "logs", owner)
    processes.append(engine)
    async with await EngineClient.connect(engine.url, owner.key) as client:
        await start(client, workflow([node("s", "stuck")], []))
        await client.next_event("NODE_EXECUTION_METRIC", where=lambda e: e["status"] == "RUNNING")
        assert await asyncio.to_thread(engine.terminate) == 0  # an hour if the thread were joined
