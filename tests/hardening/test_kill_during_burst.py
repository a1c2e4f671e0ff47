"""SIGKILL of a real engine process in the middle of a burst of writes and running jobs
(issue 7, "Faults"): after a restart on the same data folder every acknowledged write is there,
secrets still decrypt, the jobs that were waiting in an hour-long delay are back (restored from
their checkpoints, still waiting), and the database passes `PRAGMA integrity_check`."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from engine.client import EngineClient
from tests.conftest import Wallet
from tests.hardening.helpers import EngineProcess, db_rows, integrity_check
from tests.runtime_support import edge, node, start, workflow

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")]

WRITERS_PER_CONNECTION = 4
CONNECTIONS = 3
KILL_AFTER_ACKS = 150


def _preset(index: int) -> dict[str, Any]:
    return workflow([node("t", "manual_trigger"), node("s", "set_data", data={"index": index, "pad": "x" * 500})],
                    [edge("t", "s")])


SLOW = workflow([node("t", "manual_trigger"), node("wait", "delay", seconds=3600)], [edge("t", "wait")])


async def _writer(client: EngineClient, tag: str, acked: list[tuple[str, str, Any]],
                  stop: asyncio.Event) -> None:
    """Alternate save_preset and update_variable (plain and secret) until the engine dies."""
    index = 0
    while not stop.is_set():
        index += 1
        try:
            if index % 2:
                name = f"p-{tag}-{index}"
                wf = _preset(index)
                reply = await client.request("save_preset", name=name, workflow_data=wf,
                                             signature=client.signer.sign_workflow(wf), timeout=30)
                assert reply.get("version") == 1, reply
                acked.append(("preset", name, wf))
            else:
                name = f"V_{tag}_{index}".upper().replace("-", "_")
                value = f"value-{tag}-{index}"
                secret = index % 4 == 0
                await client.request("update_variable", name=name, timeout=30,
                                     data={"value": value, "is_secret": secret, "is_enabled": True,
                                           "mode": "single"})
                acked.append(("secret" if secret else "variable", name, value))
        except Exception as exc:  # after the kill: whatever a dead socket raises
            if stop.is_set():
                return
            raise AssertionError(f"a write failed before the kill: {exc!r}") from exc


async def test_sigkill_mid_burst_loses_nothing_acknowledged(tmp_path: Path, owner: Wallet) -> None:
    data_dir, log_dir = tmp_path / "data", tmp_path / "logs"
    first = EngineProcess(data_dir, log_dir, [owner.address])
    await first.start()
    acked: list[tuple[str, str, Any]] = []
    clients = [await EngineClient.connect(first.url, owner.key) for _ in range(CONNECTIONS)]
    try:
        jobs = [await start(clients[0], SLOW, preset_name=f"long-{i}") for i in range(3)]
        for job_id in jobs:
            await clients[0].next_event("NODE_EXECUTION_METRIC", timeout=30,
                                        where=lambda e, j=job_id: e.get("job_id") == j
                                        and e["node_id"] == "wait" and e["status"] == "RUNNING")
        stop = asyncio.Event()
        writers = [asyncio.create_task(_writer(c, f"c{ci}w{wi}", acked, stop))
                   for ci, c in enumerate(clients) for wi in range(WRITERS_PER_CONNECTION)]
        while len(acked) < KILL_AFTER_ACKS:
            await asyncio.sleep(0.005)
            for w in writers:
                if w.done():
                    w.result()  # surface a failure before the kill
        stop.set()  # from here on, a failed request is expected
        await first.kill()  # requests are in flight on every connection right now
        await asyncio.wait_for(asyncio.gather(*writers), 30)
    finally:
        for c in clients:
            await c.close()

    db = data_dir / "engine.sqlite3"
    assert integrity_check(db) == "ok"
    total_acked = len(acked)
    assert total_acked >= KILL_AFTER_ACKS

    second = EngineProcess(data_dir, log_dir, [owner.address])
    await second.start()
    try:
        async with await EngineClient.connect(second.url, owner.key) as client:
            # The reconnecting owner is told about each job as soon as it signs in: restored from
            # its checkpoint and still waiting in its delay (durable jobs).
            await client.request("request_settings")
            told: dict[str, dict[str, Any]] = {}
            while len(told) < len(jobs):
                event = await client.next_event("workflow_status_update", timeout=30)
                told[event["job_id"]] = event["status_data"]
            for job_id in jobs:
                assert told[job_id]["status"] == "RUNNING" and "error" not in told[job_id]
                status = (await client.request("request_job_status", job_id=job_id))["status_data"]
                assert status["status"] == "RUNNING"

            presets = {p["name"] for p in (await client.request("request_presets_list"))["presets"]}
            variables = {v["name"]: v for v in (await client.request("request_variables"))["variables"]}
            for kind, name, value in acked:
                if kind == "preset":
                    assert name in presets, f"acknowledged preset {name} lost"
                    loaded = await client.request("load_preset", name=name)
                    assert loaded["workflow_data"] == value
                else:
                    assert name in variables, f"acknowledged variable {name} lost"
                    shown = variables[name]["value"]
                    assert shown == ("********" if kind == "secret" else value)
            # Secrets are stored encrypted and still decrypt with the engine's key.
            key = (data_dir / "secrets.key").read_bytes().strip()
            blobs = dict(db_rows(db, "SELECT name, value FROM variables WHERE is_secret = 1"))
            secrets = [(n, v) for k, n, v in acked if k == "secret"]
            assert secrets
            for name, value in secrets:
                blob = bytes(blobs[name])
                assert value.encode() not in blob
                assert json.loads(Fernet(key).decrypt(blob)) == value
            # Still a working engine.
            assert "error" not in await client.request("save_settings", settings={"after": "restart"})
    finally:
        assert await second.stop() == 0
    assert integrity_check(db) == "ok"
    # Neither engine process wrote a secret value to its log file or stderr.
    log_text = second.log_text()
    assert "engine" in log_text and "listening" in log_text
    assert not [v for _n, v in secrets if v in log_text]
    print(f"\n{total_acked} writes acknowledged before SIGKILL; all present after restart")
