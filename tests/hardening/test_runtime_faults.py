"""Faults inside and around running jobs (issue 7, "Faults" and "Load").

Misbehaving modules are real component folders dropped into the engine's data folder
(`components/modules/<id>/manifest.json` + `module.py`, the layout users install): one that
raises, ones that hang (in a thread, ignoring cancellation; on the loop, forever), one that burns
CPU, ones that return what JSON cannot hold. Each job must end with a clear reason while the
engine keeps answering. Then: a client that disconnects mid-job, and 50 jobs at once while
clients come and go.
"""

from __future__ import annotations

import asyncio
import json
import random
import textwrap
from pathlib import Path
from typing import Any

import pytest

from engine.client import EngineClient
from tests.conftest import Wallet
from tests.hardening.helpers import catch_logs
from tests.runtime_support import TERMINAL, collect, edge, final, node, start, workflow

MODULES = {
    "raises": """
        def run(ctx, payload):
            raise RuntimeError("boom from a broken module")
    """,
    "hangs_in_thread": """
        import time
        def run(ctx, payload):
            time.sleep(8)  # a blocking call that ignores cancellation (bounded, so the test ends)
            return payload
    """,
    "hangs_on_loop": """
        import asyncio
        async def run(ctx, payload):
            await asyncio.Event().wait()
    """,
    "burns_cpu": """
        import time
        def run(ctx, payload):
            end = time.monotonic() + 4
            n = 0
            while time.monotonic() < end:
                n += sum(i * i for i in range(1000))
            payload["data"]["n"] = n
            return payload
    """,
    "not_json": """
        import datetime, decimal
        class Thing:
            def __repr__(self):
                return "<Thing>"
        def run(ctx, payload):
            payload["data"].update({"thing": Thing(), "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
                                    "tags": {1, 2}, "raw": b"\\x00\\xff", "money": decimal.Decimal("1.10")})
            return payload
    """,
    "circular": """
        def run(ctx, payload):
            loop = {}
            loop["self"] = loop
            payload["data"]["loop"] = loop
            return payload
    """,
    "not_finite": """
        def run(ctx, payload):
            payload["data"].update({"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")})
            return payload
    """,
}


def install_modules(data_dir: Path) -> None:
    for module_id, source in MODULES.items():
        folder = data_dir / "components" / "modules" / module_id
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({
            "id": module_id, "name": module_id.replace("_", " ").title(), "version": "1.0.0",
            "entry_point": "module.py",
            "properties": [{"id": "timeout_s", "type": "number", "default": 0}],
            "output_ports": [{"name": "output"}]}))
        (folder / "module.py").write_text(textwrap.dedent(source))


def strict_json(text: str) -> Any:
    """Parse as a browser does: NaN and Infinity are not JSON."""
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not valid JSON")
    return json.loads(text, parse_constant=refuse)


def one(module_id: str, **config: Any) -> dict[str, Any]:
    return workflow([node("t", "manual_trigger"), node("m", module_id, **config),
                     node("after", "set_data", data={"after": True})],
                    [edge("t", "m", edge_id="e1"), edge("m", "after", edge_id="e2")])


async def responsive(client: EngineClient) -> None:
    """The engine answers a request, and runs a small job to the end, right now."""
    assert (await client.request("request_settings", timeout=10))["type"] == "settings_response"
    quick = workflow([node("s", "set_data", data={"quick": 1})], [])
    assert final(await collect(client, await start(client, quick), timeout=10))["status"] == "SUCCEEDED"


@pytest.fixture
async def fault_engine(make_engine: Any, data_dir: Path) -> Any:
    install_modules(data_dir)
    return await make_engine()


async def test_misbehaving_modules_end_their_jobs_with_a_clear_reason(fault_engine: Any, owner: Wallet) -> None:
    with catch_logs() as logs:
        client = await EngineClient.connect(fault_engine.url, owner.key, keep_texts=True)
        try:
            listed = {c["id"] for c in (await client.request("request_components_list",
                                                             component_type="modules"))["components"]}
            assert set(MODULES) <= listed

            status = final(await collect(client, await start(client, one("raises"))))
            assert status["status"] == "FAILED"
            assert "RuntimeError: boom from a broken module" in status["error"] and "'m'" in status["error"]
            await responsive(client)

            # Blocks its thread for 8 s and ignores cancellation: the node timeout ends the job,
            # and the engine answers while the thread is still stuck.
            hung = await start(client, one("hangs_in_thread", timeout_s=1))
            await responsive(client)
            status = final(await collect(client, hung))
            assert status["status"] == "FAILED" and "timed out after 1 s" in status["error"]
            await responsive(client)

            # Waits on the loop forever, no timeout: the user stops it.
            forever = await start(client, one("hangs_on_loop"))
            await client.next_event("NODE_EXECUTION_METRIC",
                                    where=lambda e: e.get("job_id") == forever and e["node_id"] == "m")
            await responsive(client)
            assert (await client.request("stop_workflow", job_id=forever))["job_ids"] == [forever]
            assert final(await collect(client, forever))["status"] == "STOPPED"

            # Burns CPU in its thread for 4 s: the engine keeps answering, the job finishes.
            burner = await start(client, one("burns_cpu"))
            await client.next_event("NODE_EXECUTION_METRIC",
                                    where=lambda e: e.get("job_id") == burner and e["node_id"] == "m")
            await responsive(client)
            status = final(await collect(client, burner, timeout=60))
            assert status["status"] == "SUCCEEDED" and status["result"]["data"]["n"] > 0

            # Values JSON cannot hold: the job ends (stringified values or a clear failure),
            # and whatever the engine sends stays valid JSON for a browser.
            for module_id in ("not_json", "not_finite"):
                job_id = await start(client, one(module_id))
                status = final(await collect(client, job_id))
                assert status["status"] in ("SUCCEEDED", "FAILED"), (module_id, status)
                if status["status"] == "FAILED":
                    assert "JSON" in status["error"] or "circular" in status["error"].lower(), (module_id, status)
                else:
                    assert status["result"]["data"].get("after") is True
                await responsive(client)
            for text in client.texts:
                strict_json(text)
        finally:
            await client.close()
    assert not logs.problems(), logs.problems()


async def test_a_module_returning_a_circular_value_fails_its_job_clearly(fault_engine: Any, owner: Wallet) -> None:
    with catch_logs() as logs:
        async with await EngineClient.connect(fault_engine.url, owner.key, keep_texts=True) as client:
            events = await collect(client, await start(client, one("circular")))
            status = final(events)
            assert status["status"] == "FAILED", status
            assert "Node 'm' (circular) failed" in status["error"] and "cannot be represented as JSON" in status["error"]
            assert [e["status"] for e in events if e["type"] == "NODE_EXECUTION_METRIC" and e["node_id"] == "m"] \
                == ["RUNNING", "ERROR"]
            await responsive(client)
            for text in client.texts:
                strict_json(text)
    # The module's fault, not the engine's: no traceback, no "failed unexpectedly".
    assert not logs.problems(), logs.problems()


async def test_client_disconnects_mid_job_and_the_owner_sees_the_end(make_engine: Any, owner: Wallet) -> None:
    engine = await make_engine()
    wf = workflow([node("t", "manual_trigger"), node("wait", "delay", seconds=1.5),
                   node("set", "set_data", data={"done": "yes"})],
                  [edge("t", "wait", edge_id="w1"), edge("wait", "set", edge_id="w2")])
    first = await EngineClient.connect(engine.url, owner.key)
    job_id = await start(first, wf, preset_name="left-behind")
    await first.next_event("NODE_EXECUTION_METRIC", where=lambda e: e.get("job_id") == job_id
                           and e["node_id"] == "wait" and e["status"] == "RUNNING")
    first.ws.transport.abort()  # gone without a close handshake
    await asyncio.wait_for(first.closed.wait(), 10)
    await first.close()

    async with await EngineClient.connect(engine.url, owner.key) as second:
        await second.request("request_settings")  # signs in: the running job is announced
        running = await second.next_event("workflow_status_update", where=lambda e: e["job_id"] == job_id)
        assert running["status_data"]["status"] == "RUNNING"
        done = await second.next_event("workflow_status_update", timeout=20,
                                       where=lambda e: e["job_id"] == job_id
                                       and e["status_data"]["status"] in TERMINAL)
        assert done["status_data"]["status"] == "SUCCEEDED"
        assert done["status_data"]["result"]["data"]["done"] == "yes"
        status = (await second.request("request_job_status", job_id=job_id))["status_data"]
        assert status["status"] == "SUCCEEDED" and status["preset_name"] == "left-behind"
        history = (await second.request("request_connection_history", job_id=job_id,
                                         connection_id="w2"))["history"]
        assert len(history) == 1 and history[0]["connection_id"] == "w2"

    # A reconnect after the end sees the same final state and history.
    async with await EngineClient.connect(engine.url, owner.key) as third:
        status = (await third.request("request_job_status", job_id=job_id))["status_data"]
        assert status["status"] == "SUCCEEDED"
        assert len((await third.request("request_connection_history", job_id=job_id,
                                         connection_id="w1"))["history"]) == 1


@pytest.mark.slow
async def test_50_jobs_at_once_while_clients_come_and_go(make_engine: Any, owner: Wallet, stranger: Wallet) -> None:
    engine = await make_engine(owners=(owner.address, stranger.address))
    rng = random.Random(7)
    expected: dict[str, tuple[str, int]] = {}
    with catch_logs() as logs:
        driver = await EngineClient.connect(engine.url, owner.key)
        churn_done = asyncio.Event()

        async def churn() -> int:
            rounds = 0
            while not churn_done.is_set():
                wallet = owner if rounds % 2 else stranger
                c = await EngineClient.connect(engine.url, wallet.key)
                await c.request("request_settings")
                if rounds % 3 == 0:  # a short job of its own, left behind on disconnect
                    await start(c, workflow([node("s", "set_data", data={"churn": rounds})], []))
                if rounds % 4 == 0:
                    c.ws.transport.abort()  # gone without a close handshake
                await c.close()
                rounds += 1
                await asyncio.sleep(0.02)
            return rounds

        churner = asyncio.create_task(churn())
        try:
            for i in range(50):
                kind = i % 5
                if kind == 0:
                    wf = workflow([node("t", "manual_trigger"), node("x", "stop_and_error", message=f"fail-{i}")],
                                  [edge("t", "x")])
                    expected[await start(driver, wf)] = ("FAILED", i)
                elif kind == 1:
                    wf = workflow([node("t", "manual_trigger"), node("w", "delay", seconds=30),
                                   node("s", "set_data", data={"i": i})], [edge("t", "w"), edge("w", "s")])
                    expected[await start(driver, wf)] = ("STOPPED", i)
                else:
                    wf = workflow([node("t", "manual_trigger"),
                                   node("w", "delay", seconds=round(rng.uniform(0.1, 1.5), 2)),
                                   node("s", "set_data", data={"i": i})], [edge("t", "w"), edge("w", "s")])
                    expected[await start(driver, wf)] = ("SUCCEEDED", i)
            assert engine.runtime.running_job_count() >= 20
            for job_id, (want, _i) in expected.items():
                if want == "STOPPED":
                    await driver.request("stop_workflow", job_id=job_id)
            finals: dict[str, dict[str, Any]] = {}
            while len(finals) < len(expected):
                event = await driver.next_event("workflow_status_update", timeout=30,
                                                where=lambda e: e["job_id"] in expected
                                                and e["status_data"]["status"] in TERMINAL)
                finals[event["job_id"]] = event["status_data"]
        finally:
            churn_done.set()
            rounds = await churner
            await driver.close()
        assert rounds >= 5
        for job_id, (want, i) in expected.items():
            got = finals[job_id]
            assert got["status"] == want, (i, got)
            if want == "SUCCEEDED":
                assert got["result"]["data"]["i"] == i
            if want == "FAILED":
                assert f"fail-{i}" in got["error"]
        # A fresh connection reads the same outcomes from the record.
        async with await EngineClient.connect(engine.url, owner.key) as check:
            for job_id, (want, _i) in expected.items():
                assert (await check.request("request_job_status", job_id=job_id))["status_data"]["status"] == want
    assert not logs.problems(), logs.problems()
